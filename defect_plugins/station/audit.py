"""The station's audit trail: an append-only, hash-chained list of who did what, in the station's database.

What a quality engineer asks of it: every decision, every login and failed login, every account
change and every configuration the station ran with (rules, models, thresholds), with the time and
the actor; and a way to show that nobody edited or removed an entry afterwards.

How:

* :func:`append` writes one entry *inside the caller's transaction* (``with store.transaction() as
  conn: ...; append(conn, ...)``): a decision and its entry commit together or not at all. On SQLite
  the store's transactions are ``BEGIN IMMEDIATE``, so the previous entry's hash is read under the
  write lock; on PostgreSQL (several stations, one database) :func:`append` first takes a
  transaction-level advisory lock (``pg_advisory_xact_lock``, held to the commit), so two writers can
  never chain to the same entry nor take the same id (the primary key refuses a duplicate anyway).
* Each entry's ``hash`` is the SHA-256 of a canonical JSON text (sorted keys, no spaces, UTF-8) of
  its ``id``, ``at``, ``actor``, ``action``, ``detail`` and ``prev_hash``; ``prev_hash`` is the
  previous entry's ``hash`` ('' for the first). The chain's order is the id order.
* Triggers in the schema refuse ``UPDATE`` and ``DELETE`` on the table (SQLite ``RAISE(ABORT)``,
  a PostgreSQL plpgsql function that raises), so the station and a careless SQL session cannot
  change an entry; someone who drops the triggers can, and then
  :func:`verify` finds it.

What :func:`verify` finds, naming the first bad entry: an edited entry (its hash no longer matches
its content), an entry edited *and* re-hashed (the next entry's ``prev_hash`` no longer matches), a
deleted entry in the middle or at the start (a gap in the ids, which AUTOINCREMENT never reuses).
What a chain alone cannot find: deleting the newest entries, or editing and re-hashing the newest
one, leaves a shorter chain that is valid. Against the first, :func:`verify` also compares the
newest id with ``sqlite_sequence`` (SQLite's AUTOINCREMENT keeps the largest id ever used there), so
a deleted tail is found unless ``sqlite_sequence`` was edited too (SQLite only: PostgreSQL keeps no such
record of the audit's ids). Against both, write down (or send
elsewhere) the newest entry's hash from time to time: ``defect-station audit verify`` prints it, and
a chain that no longer contains a hash written down earlier was changed.

The hashed text is the same whichever database holds the trail; ``station`` (which station wrote the
entry) is a column outside the hashed fields, so entries written before it existed verify unchanged.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from .store import Store, now, spreadsheet_safe

# The actions the station writes; other modules may add their own (lower-case words joined by '_')
ACTIONS = ("decision", "user_added", "user_disabled", "password_set", "login", "login_failed", "logout",
           "threshold_moved", "rules_loaded", "model_loaded")
ACTION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ACTOR = 200
LOCK = 0x4155_4454  # the PostgreSQL advisory lock key that serialises appends ("AUDT")
CSV_COLUMNS = ["id", "at", "actor", "action", "detail", "prev_hash", "hash"]


class AuditError(ValueError):
    """A bad entry to append (action, actor, detail) or an append outside a transaction."""


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify` found: ``bad_id`` and ``reason`` name the first bad entry; both None when intact."""

    entries: int
    bad_id: int | None = None
    reason: str | None = None
    last_id: int | None = None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_id is None

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.entries} entries"
        return f"audit trail broken at entry {self.bad_id}: {self.reason}"


def canonical_json(value: Any) -> str:
    """The one text of a JSON value that hashing uses: sorted keys, no spaces, UTF-8 characters, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(entry_id: int, at: str, actor: str, action: str, detail: Any, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of one entry's fields (``detail`` as the parsed object)."""
    text = canonical_json({"id": entry_id, "at": at, "actor": actor, "action": action, "detail": detail,
                           "prev_hash": prev_hash})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(conn: Connection, actor: str, action: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Append one entry to the trail in ``conn``'s open write transaction; the entry as stored.

    ``conn``: a connection of :meth:`.store.Store.transaction` (SQLite: ``BEGIN IMMEDIATE`` already run);
    the entry commits or rolls back with the caller's other writes. ``actor``: the user name, or
    ``station`` / ``cli`` for what no logged-in user did. ``action``: one of :data:`ACTIONS`, or a
    new lower-case word such as ``model_activated``. ``detail``: a JSON object (finite numbers only)
    of what happened, e.g. ``{"inspection_id": 12, "decision": "reject"}``.
    """
    if not conn.get_execution_options().get("station_write"):
        raise AuditError(f"audit entry {action!r} must be appended inside the caller's write transaction "
                         f"(with store.transaction() as conn: ...)")
    if not isinstance(action, str) or not ACTION.match(action):
        raise AuditError(f"audit action must be a lower-case word like 'model_activated', got {action!r}")
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR or "\x00" in actor:
        raise AuditError(f"audit actor must be a name of 1 to {MAX_ACTOR} characters, got {actor!r}")
    detail = {} if detail is None else detail
    if not isinstance(detail, dict):
        raise AuditError(f"audit detail of {action!r} must be a JSON object (dict), got {type(detail).__name__}")
    try:
        detail_text = canonical_json(detail)
    except (TypeError, ValueError) as error:
        raise AuditError(f"audit detail of {action!r} is not JSON with finite numbers: {error}") from None
    detail = json.loads(detail_text)  # what verify will parse back (tuples become lists, keys become text)
    # The next id: one above the largest ever used (AUTOINCREMENT's rule), so the id is known before the
    # insert and goes into the hash; the write lock is held, so no other writer takes it meanwhile.
    if conn.dialect.name == "postgresql":  # one writer at a time, to its commit: the newest hash cannot move
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
    last = conn.execute(text("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")).first()
    used = _sequence(conn)
    entry_id = max(last[0] if last else 0, used or 0) + 1
    prev_hash = last[1] if last else ""
    at = now()
    digest = entry_hash(entry_id, at, actor, action, detail, prev_hash)
    conn.execute(text("INSERT INTO audit (id, at, actor, action, detail, prev_hash, hash, station) "
                      "VALUES (:id, :at, :actor, :action, :detail, :prev_hash, :hash, :station)"),
                 {"id": entry_id, "at": at, "actor": actor, "action": action, "detail": detail_text,
                  "prev_hash": prev_hash, "hash": digest, "station": conn.get_execution_options().get("station_name")})
    return {"id": entry_id, "at": at, "actor": actor, "action": action, "detail": detail, "prev_hash": prev_hash,
            "hash": digest}


def _sequence(conn: Connection) -> int | None:
    """The largest audit id SQLite's AUTOINCREMENT ever handed out (``sqlite_sequence``); None elsewhere."""
    if conn.dialect.name != "sqlite":
        return None
    used = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")).first()
    return used[0] if used else 0


def _bad(entries: int, bad_id: int, reason: str) -> AuditReport:
    return AuditReport(entries=entries, bad_id=bad_id, reason=reason)


def verify(store: Store) -> AuditReport:
    """Walk the whole chain in id order; the report names the first bad entry (see the module docstring)."""
    try:
        with store.connect() as conn:  # one transaction (SQLite: one snapshot) for the rows and sqlite_sequence
            return _walk(conn)
    except SQLAlchemyError as error:
        raise store.error("verifying the audit trail", error) from error


def _walk(conn: Connection) -> AuditReport:
    count, previous = 0, None  # previous: (id, hash) of the last good entry
    for row in conn.execute(text("SELECT id, at, actor, action, detail, prev_hash, hash FROM audit ORDER BY id")):
        entry_id, at, actor, action, detail_text, prev_hash, stored_hash = tuple(row)
        expected_id = previous[0] + 1 if previous else 1
        if entry_id != expected_id:
            missing = f"{expected_id}" if entry_id == expected_id + 1 else f"{expected_id} to {entry_id - 1}"
            after = f"entry {entry_id} follows entry {previous[0]}" if previous else f"the trail starts at {entry_id}"
            return _bad(count, expected_id, f"entry {missing} missing (deleted): {after}")
        try:
            digest = entry_hash(entry_id, at, actor, action, json.loads(detail_text), prev_hash)
        except (TypeError, ValueError):
            return _bad(count, entry_id, f"its detail is not JSON (edited): {str(detail_text)[:80]!r}")
        if digest != stored_hash:
            return _bad(count, entry_id, "its content does not match its hash (edited after it was written)")
        if prev_hash != (previous[1] if previous else ""):
            if previous is None:
                return _bad(count, entry_id, "the first entry chains to an earlier one that is not there")
            return _bad(count, previous[0], f"the next entry, {entry_id}, chained to another hash than this "
                                            f"entry's: this entry was edited and re-hashed (or entry {entry_id} "
                                            f"was rewritten)")
        count += 1
        previous = (entry_id, stored_hash)
    used = _sequence(conn)
    newest = previous[0] if previous else 0
    used_id = newest if used is None else used
    if used_id > newest:
        missing = f"{newest + 1}" if used_id == newest + 1 else f"{newest + 1} to {used_id}"
        return _bad(count, newest + 1, f"entry {missing} missing (deleted): ids up to {used_id} were written "
                                       f"(sqlite_sequence), the newest entry left is {newest or 'none'}")
    if used_id < newest:
        return _bad(count, newest, f"sqlite_sequence says the largest id written is {used_id}, below the newest "
                                   f"entry {newest} (sqlite_sequence was edited)")
    return AuditReport(entries=count, last_id=previous[0] if previous else None,
                       last_hash=previous[1] if previous else None)


def export_csv(store: Store, path: str | Path) -> int:
    """Write every entry, oldest first, with all columns (hashes too) to a CSV file; the number of entries.

    Text cells a spreadsheet would run as a formula get a leading ``'`` (:func:`.store.spreadsheet_safe`):
    such a cell (an actor named ``=x``) shows its original text, but is no longer the hashed bytes.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise AuditError(f"{path}: the folder {path.parent} does not exist")
    count = 0
    try:
        with store.connect() as conn, path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for row in conn.execute(text(f"SELECT {', '.join(CSV_COLUMNS)} FROM audit ORDER BY id")):
                writer.writerow([spreadsheet_safe(value) for value in tuple(row)])
                count += 1
    except SQLAlchemyError as error:
        raise store.error("exporting the audit trail", error) from error
    return count


def entries(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` entries, newest first, ``detail`` parsed."""
    try:
        with store.connect() as conn:
            rows = [dict(row) for row in conn.execute(text(
                "SELECT id, at, actor, action, detail, prev_hash, hash FROM audit ORDER BY id DESC LIMIT :limit"),
                {"limit": int(limit)}).mappings()]
    except SQLAlchemyError as error:
        raise store.error("reading the audit trail", error) from error
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows
