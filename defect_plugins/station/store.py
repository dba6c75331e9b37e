"""The station's records: one row per inspected image, one row per operator decision (SQLite or PostgreSQL).

Why it is written this way:

* WAL journal mode: the page's history reads never wait for an inspection being written, and a
  writer never blocks readers; ``synchronous=FULL`` so that a decision the page confirmed survives
  a power cut of the line PC.
* Every write is one transaction (SQLite: ``BEGIN IMMEDIATE`` ... ``COMMIT``): an inspection (or a decision)
  is in the file whole or not at all, and concurrent uploads from several browsers serialise on
  SQLite's write lock (``busy_timeout``) instead of failing.
* A connection per operation, from SQLAlchemy's pool: the ASGI server runs requests on a pool of
  threads, and a connection is used by one thread at a time. On SQLite the store keeps one more
  connection of its own (outside the pool) open for its whole life, with a read done on it: SQLite
  checkpoints the log into the file and deletes it when the last connection that has the WAL
  open closes (https://www.sqlite.org/wal.html, "Persistence of WAL mode"), which would
  otherwise happen after every write. A connection that never read the database does not hold
  the WAL open: 200 inserts with ``synchronous=FULL`` took 2.8-3.3 ms each without that read and 0.9-1.3 ms
  with it on a 2-core CPU (``python experiments/station/bench_station_store.py``; ``tests/unit/station/test_records.py``
  checks that the WAL file stays).
* Decisions are appended, never replaced: the history shows the current grade (the newest
  decision's) and every decision in order; the CSV has one row per decision. Each decision's
  entry in the audit trail (:mod:`.audit`) is written in the decision's own transaction; other
  modules do the same through :meth:`Store.transaction` and :func:`.audit.append`.
* An inspection keeps the SHA-256 of the view token its page received; a decision must present
  the token, so only a client that was shown the inspection can decide it (not a page that
  guesses ids).

Tables (:mod:`.db.schema`; Alembic migrations in ``db/migrations``; a schema-3 file of the raw-``sqlite3``
releases is adopted as revision 1, version-1 and version-2 files are first upgraded in place as before):
``inspections`` (time, source, the part's identity (part id, lot) when the trigger gave one, image SHA-256,
size, the models with their versions, per-model results and scores as JSON, the station's grade and class, the
view token's hash); ``decisions`` (inspection, time, operator, accept / reject / regrade, the grade the
operator saw, the final grade, the thresholds in force, the comment); ``outbox`` (the messages a verdict owes
the line, written in the inspection's transaction and marked when a broker acknowledged them: see
:mod:`.line`); ``users`` and ``sessions`` (local accounts with their role and slow password hash, logged-in
sessions by token hash); ``audit`` (the append-only, hash-chained trail of decisions and configuration
changes). The view ``history`` joins each inspection with its newest decision and counts them.

SQLite or PostgreSQL (``--db``: a file path or ``sqlite:///path``, or ``postgresql://user@host/name`` for
several stations sharing one database; :mod:`.db.engine`):

* Queries are SQLAlchemy Core (``text()`` or expressions on :mod:`.db.schema`); :meth:`Store.connect` and
  :meth:`Store.transaction` give a SQLAlchemy ``Connection``. Every database error leaves the store as
  :class:`StoreError` naming the database (never its password) and what failed.
* Every record the store writes is tagged with its ``line`` and ``station`` (default: the host name).
* A PostgreSQL server that restarts: the engine pings connections before use, and a write that meets a
  lost connection is retried with backoff for up to ``retry_s`` seconds (then :class:`StoreUnavailable`).
  An inspection and a decision carry a key made before the first try (``write_key``, unique): a retry whose
  first try did commit (a commit lost in flight is ambiguous) finds that row instead of writing a second.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

from .db import migrate
from .db.engine import make_engine, parse, shown
from .db.schema import decisions as decisions_table
from .db.schema import inspections as inspections_table
from .db.schema import outbox as outbox_table
from .db.sqlite_schema3 import SCHEMA_VERSION, upgrade_to_3

log = logging.getLogger(__name__)
T = TypeVar("T")
DECISIONS = ("accept", "reject", "regrade")
VERDICTS = ("OK", "NG", "ERROR")  # what the line is told of a part
MAX_COMMENT = 2000
MAX_OPERATOR = 100
MAX_PART_ID = 200  # part ids and lots from a PLC, an MQTT request or a file name
MAX_ID = 2 ** 63 - 1  # SQLite's INTEGER range
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Spreadsheet formula triggers (OWASP "CSV Injection"): a cell starting with one of these is shown as text
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RETRY_S = 30.0  # how long a write waits for a database that went away
LOG_EVERY_S = 5.0  # how often a waiting write says so
INSPECTION_FIELDS = ["id", "created_at", "source", "part_id", "lot", "verdict", "image_sha256", "width", "height",
                     "class_name", "grade", "score", "current_grade", "decision_count"]
DECISION_FIELDS = ["decision_id", "decided_at", "operator", "decision", "system_grade", "final_grade", "comment",
                   "thresholds"]
CSV_FIELDS = INSPECTION_FIELDS + DECISION_FIELDS + ["models", "results"]


class StoreError(ValueError):
    """A bad request to the store (unknown inspection, bad decision, bad filter), an unusable database, or a
    database error (the message names the database and what failed)."""


class StoreUnavailable(StoreError):
    """The database could not be reached (a server down or restarting) for longer than the store waits."""


def now() -> str:
    """Local time with its offset (operators filter by their own dates), milliseconds."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def token_hash(token: str) -> str:
    """What the store keeps of a view token: its SHA-256 (the token itself only travels to the page)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def db_value(value: str) -> Path | str:
    """A ``--db`` argument: a database URL as given (``postgresql://...``, ``sqlite:///...``), else a file path."""
    return value if "://" in value else Path(value)


def _verdict(value: str | None) -> str | None:
    if value not in (None, *VERDICTS):
        raise StoreError(f"verdict must be one of {VERDICTS}, got {value!r}")
    return value


def check_id(value: Any, what: str = "inspection id") -> int:
    """A positive integer within SQLite's range, from an int or a string of ASCII digits."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise StoreError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,19}", value):
        raise StoreError(f"{what} must be an integer (ASCII digits), got {value!r}")
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise StoreError(f"{what} must be within 1 and {MAX_ID}, got {value!r}")
    return number


def check_text(value: str, what: str, *, limit: int) -> str:
    """Text a record can hold: valid Unicode (no lone surrogates), no NUL, at most ``limit`` characters."""
    if not isinstance(value, str):
        raise StoreError(f"'{what}' must be text, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise StoreError(f"'{what}' is not valid Unicode text ({error.reason} at character {error.start})") from None
    if "\x00" in value:
        raise StoreError(f"'{what}' contains a NUL character")
    if len(value) > limit:
        raise StoreError(f"'{what}' is {len(value)} characters; at most {limit}")
    return value


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP's advice: prefix a quote)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value




def _disconnected(error: BaseException, dialect: str) -> bool:
    """Whether ``error`` is a lost or refused connection to a server (worth waiting for), not a bad statement.

    SQLite has no connection to lose: its errors (a locked file included) are never retried here.
    """
    if dialect == "sqlite" or not isinstance(error, SQLAlchemyError):
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (OperationalError, InterfaceError))


class Store:
    """The station's records at ``path`` (an SQLite file, created when missing, or a database URL).

    ``line`` / ``station``: the tags of every record this store writes (station default: the host
    name). ``retry_s``: how long a write waits for a server that went away before
    :class:`StoreUnavailable`.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000, line: str | None = None,
                 station: str | None = None, retry_s: float = RETRY_S) -> None:
        try:
            self.url, sqlite_path = parse(path)
        except ValueError as error:
            raise StoreError(str(error)) from None
        self.name = shown(self.url)  # what messages call the database: the file, or the URL without password
        # ``path``: the SQLite file (callers open it, name it in messages); a server's URL without password
        self.path: Any = sqlite_path if sqlite_path is not None else self.name
        self.line = line
        self.station = station if station is not None else socket.gethostname()
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.retry_s = float(retry_s)
        self._keeper: sqlite3.Connection | None = None
        if sqlite_path is not None:
            if not sqlite_path.parent.is_dir():
                raise StoreError(f"{sqlite_path}: the folder {sqlite_path.parent} does not exist")
            if sqlite_path.is_dir():
                raise StoreError(f"{sqlite_path}: is a folder, expected an SQLite file")
        self.engine = make_engine(self.url, busy_timeout_ms=lambda: self.busy_timeout_ms)
        self.dialect = self.engine.dialect.name
        try:
            if sqlite_path is not None:
                self._open_sqlite(sqlite_path)
            self._retrying("bringing the schema up to date", lambda: migrate.upgrade(self.engine))
        except sqlite3.DatabaseError as error:  # "file is not a database", a locked or read-only file
            self.engine.dispose()
            raise StoreError(f"{self.name}: cannot be used as the station's SQLite database ({error})") from None
        except migrate.MigrationRefused as error:
            self.engine.dispose()
            raise StoreError(f"{self.name}: {error}") from None
        except StoreError:
            self.engine.dispose()
            raise
        if sqlite_path is not None:
            # The keeper (see the module docstring): it holds the WAL open only once it has read the database.
            self._keeper = sqlite3.connect(str(sqlite_path), check_same_thread=False)
            self._keeper.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()

    def _open_sqlite(self, path: Path) -> None:
        """WAL mode, and a file of the raw-``sqlite3`` releases older than schema 3 upgraded in place first."""
        with contextlib.closing(sqlite3.connect(str(path), timeout=self.busy_timeout_ms / 1000,
                                                isolation_level=None)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version not in (0, 1, 2, SCHEMA_VERSION) or (version == 0 and tables - {"sqlite_sequence"}):
                raise StoreError(f"{path}: not a defect-station database (schema version {version}, "
                                 f"tables {sorted(tables)}); expected version {SCHEMA_VERSION}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{path}: SQLite refused WAL mode (journal_mode is {mode})")
            if version in (1, 2):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # read again under the write lock: another station may have upgraded the file meanwhile
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version in (1, 2):
                        upgrade_to_3(conn, version)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close the pooled connections and the keeper (SQLite then checkpoints the log into the file)."""
        self.engine.dispose()
        if self._keeper is not None:
            self._keeper.close()

    # ------------------------------------------------------------------ connections and errors

    def error(self, what: str, error: BaseException) -> StoreError:
        """The :class:`StoreError` (or :class:`StoreUnavailable`) of a database error while doing ``what``."""
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error) else repr(error)
        kind = StoreUnavailable if _disconnected(error, self.dialect) else StoreError
        return kind(f"{self.name}: {what} failed: {reason}")

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()``, tried again with backoff while the server cannot be reached, for up to ``retry_s``."""
        started = time.monotonic()
        logged = started - LOG_EVERY_S
        delay = 0.05
        while True:
            try:
                return attempt()
            except SQLAlchemyError as error:
                waited = time.monotonic() - started
                if not _disconnected(error, self.dialect) or waited >= self.retry_s:
                    raise self.error(what, error) from error
                if time.monotonic() - logged >= LOG_EVERY_S:
                    logged = time.monotonic()
                    log.warning("database unavailable, retrying (%.0f s so far): %s", waited,
                                self.error(what, error))
                time.sleep(min(delay, max(0.0, self.retry_s - waited)))
                delay = min(delay * 2, 1.0)

    def connect(self) -> Connection:
        """A SQLAlchemy connection from the pool; the caller closes it (``with`` or :func:`contextlib.closing`).

        Reads on it see the newest committed state (SQLite: one snapshot per transaction, which
        SQLAlchemy begins at the first statement); writes go through :meth:`transaction`.
        """
        return self._retrying("connecting", self.engine.connect)

    def _begun(self, durable: bool) -> Connection:
        def attempt() -> Connection:
            conn = self.engine.connect().execution_options(
                station_write=True, station_durable=durable, station_name=self.station)
            try:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SELECT 1")  # a dead server shows here, where a retry is still safe
                else:
                    conn.begin()
            except BaseException:
                conn.close()
                raise
            return conn
        return self._retrying("starting a write", attempt)

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        """One write transaction: all of it is committed, or none of it; a SQLAlchemy ``Connection``.

        SQLite: ``BEGIN IMMEDIATE`` takes the write lock first, so what the block reads (the newest
        audit hash, say) cannot change before it commits (:mod:`.db.engine`). ``durable=False`` commits
        with ``synchronous=NORMAL`` (no sync of the log at this commit): in WAL mode the transaction stays
        atomic and the file consistent, but a power cut may undo it
        (https://www.sqlite.org/pragma.html#pragma_synchronous). Only for what may be redone safely.
        A lost server connection is waited for before the block runs (``retry_s``), not inside it:
        the block is the caller's and runs once. Database errors leave as :class:`StoreError`.
        """
        conn = self._begun(durable)
        try:
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(SQLAlchemyError):
                    conn.rollback()
                raise
            conn.commit()
        except SQLAlchemyError as error:
            raise self.error("a write", error) from error
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def _write(self, what: str, work: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run ``work(conn)`` in one write transaction, all of it again after a lost connection.

        Only for work that finds its own earlier, committed try (a ``write_key``) or may be repeated.
        """
        def attempt() -> T:
            with self.engine.connect().execution_options(station_write=True, station_durable=durable,
                                                         station_name=self.station) as conn:
                with conn.begin():
                    return work(conn)
        return self._retrying(what, attempt)

    def read(self, what: str, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` on a read connection, tried again after a lost connection; errors as :class:`StoreError`.

        ``what`` names the read in the error's message ("reading the users").
        """
        def attempt() -> T:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":  # one snapshot for every statement of ``work``, as on SQLite
                    conn.execution_options(isolation_level="REPEATABLE READ")
                return work(conn)
        return self._retrying(what, attempt)

    # the names the store's own methods (and older callers) use
    _connect = connect
    _transaction = transaction

    # ------------------------------------------------------------------ writes

    def add_inspection(self, *, source: str, image_sha256: str, width: int, height: int, models: list[dict],
                       results: list[dict], grade: str, class_name: str, score: float | None,
                       view_token: str | None = None, part_id: str | None = None, lot: str | None = None,
                       verdict: str | None = None,
                       messages: Callable[[int, str], list[tuple[str, str, str]]] | None = None,
                       write_key: str | None = None) -> int:
        """Insert one inspection; its id. ``view_token``: the token its page gets (only its hash is kept).

        ``messages(inspection_id, created_at)`` gives the outbox rows ``(channel, topic, payload)`` the
        verdict owes the line; they are written in the same transaction as the inspection, so a
        verdict is never recorded without its messages, nor a message queued for an unrecorded verdict.

        ``write_key``: the identity of the trigger that asked for this inspection (a line request id), for
        triggers a line may deliver twice (an MQTT request recorded but not yet acknowledged when the station
        died comes again after its restart). An inspection already recorded under that key is not written
        again: its id is returned, nothing is written and ``messages`` is not called (its outbox messages
        were written with it). :meth:`recorded_inspection` gives what was recorded under a key. Without one,
        each call records an inspection (the key is made here, unique, and only guards this call's retries).
        """
        created = now()
        given = write_key is not None
        # made once: every retry of this write carries it
        key = check_text(write_key, "write_key", limit=MAX_PART_ID * 3) if given else uuid.uuid4().hex
        row = dict(created_at=created, source=source, image_sha256=image_sha256, width=int(width), height=int(height),
                   models=json.dumps(models), results=json.dumps(results), grade=grade, class_name=class_name,
                   score=None if score is None else float(score),
                   view_token_sha256=None if view_token is None else token_hash(view_token),
                   part_id=None if part_id is None else check_text(part_id, "part_id", limit=MAX_PART_ID),
                   lot=None if lot is None else check_text(lot, "lot", limit=MAX_PART_ID), verdict=_verdict(verdict),
                   line=self.line, station=self.station, write_key=key)

        def work(conn: Connection) -> int:
            done = conn.execute(select(inspections_table.c.id).where(inspections_table.c.write_key == key)).scalar()
            if done is not None:  # an earlier try committed, and its answer was lost with the connection
                return int(done)
            inspection_id = int(conn.execute(insert(inspections_table).values(**row)).inserted_primary_key[0])
            outbox = [dict(inspection_id=inspection_id, channel=channel, topic=topic, payload=payload,
                           created_at=created)
                      for channel, topic, payload in (messages(inspection_id, created) if messages else [])]
            if outbox:
                conn.execute(insert(outbox_table), outbox)
            return inspection_id
        try:
            return self._write("recording an inspection", work)
        except StoreError as error:
            # the same trigger recorded at the same time by another thread or process: its record stands
            if not given or not isinstance(error.__cause__, IntegrityError):
                raise
            done = self.recorded_inspection(key)
            if done is None:
                raise
            return int(done["id"])

    def recorded_inspection(self, write_key: str) -> dict[str, Any] | None:
        """The inspection recorded under ``write_key`` (see :meth:`add_inspection`), or ``None``.

        ``{"id", "created_at", "part_id", "lot", "verdict", "grade", "class_name", "line", "station"}``: what a
        trigger delivered again must be answered with, so the line hears the recorded verdict, not a new one.
        """
        def work(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(text(
                "SELECT id, created_at, part_id, lot, verdict, grade, class_name, line, station FROM inspections "
                "WHERE write_key = :key"), {"key": write_key}).mappings().first()
            return None if row is None else dict(row)
        return self.read("reading an inspection by its key", work)

    # ------------------------------------------------------------------ outbox

    def _own_outbox(self) -> tuple[str, str]:
        """The ``FROM`` and the extra ``WHERE`` of this station's outbox rows, with ``:station`` bound.

        On a server several stations share the outbox table: each publishes the messages of its own
        inspections (and those of no station), else every station would send every verdict of the plant,
        each on the other lines' topics. An SQLite file is one station's: all of it.
        """
        if self.dialect != "postgresql":
            return "outbox o", ""
        return ("outbox o LEFT JOIN inspections i ON i.id = o.inspection_id",
                " AND (i.station IS NULL OR i.station = :station)")

    def outbox_pending(self, channel: str, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest unpublished messages of ``channel`` (this station's, see :meth:`_own_outbox`), in the order
        they were written."""
        source, own = self._own_outbox()
        return self.read("reading the outbox", lambda conn: [dict(row) for row in conn.execute(text(
            f"SELECT o.id, o.inspection_id, o.topic, o.payload, o.attempts FROM {source} "
            f"WHERE o.channel = :channel AND o.published_at IS NULL{own} ORDER BY o.id LIMIT :limit"),
            {"channel": channel, "limit": int(limit), "station": self.station}).mappings()])

    def outbox_attempted(self, message_id: int) -> None:
        """Count one more attempt to publish ``message_id`` (what the page shows of a broker that is down)."""
        self._write("counting a publishing attempt", lambda conn: conn.execute(
            text("UPDATE outbox SET attempts = attempts + 1 WHERE id = :id"), {"id": int(message_id)}))

    def outbox_published(self, message_id: int) -> None:
        """Mark ``message_id`` published (the broker acknowledged it); it is never sent again.

        Not synced at its commit (``durable=False``): a mark lost to a power cut only sends the message once
        more, which consumers drop by its inspection id (QoS 1 allows that repeat anyway), while a synced mark
        per verdict competes with the next verdict's record for the write lock and the disk on a busy line.
        """
        self._write("marking an outbox message published", lambda conn: conn.execute(
            text("UPDATE outbox SET published_at = :at WHERE id = :id AND published_at IS NULL"),
            {"at": now(), "id": int(message_id)}), durable=False)

    def outbox_counts(self, channel: str) -> dict[str, int]:
        """``{"pending": n, "published": m}`` for ``channel`` (this station's messages, as :meth:`outbox_pending`)."""
        source, own = self._own_outbox()
        pending, published = self.read("counting the outbox", lambda conn: conn.execute(text(
            "SELECT COALESCE(SUM(CASE WHEN o.published_at IS NULL THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN o.published_at IS NULL THEN 0 ELSE 1 END), 0) FROM {source} "
            f"WHERE o.channel = :channel{own}"), {"channel": channel, "station": self.station}).one())
        return {"pending": int(pending), "published": int(published)}

    def add_decision(self, inspection_id: int, *, decision: str, operator: str, system_grade: str,
                     final_grade: str, thresholds: dict[str, float | None], comment: str = "") -> dict[str, Any]:
        """Append an operator decision for an existing inspection; the stored row.

        Its audit entry (``decision``, actor ``operator``) is written in the same transaction: a
        decision is never recorded without its entry in the trail, nor the other way round.
        """
        from .audit import append  # here: the audit module imports this one
        inspection_id = check_id(inspection_id)
        if decision not in DECISIONS:
            raise StoreError(f"decision must be one of {DECISIONS}, got {decision!r}")
        operator = check_text(operator, "operator", limit=MAX_OPERATOR).strip()
        if not operator:
            raise StoreError("'operator' is required: the name of who decides")
        comment = check_text(comment, "comment", limit=MAX_COMMENT)
        key = uuid.uuid4().hex
        columns = "id, inspection_id, decided_at, decision, system_grade, final_grade, thresholds, comment, operator"

        def work(conn: Connection) -> dict[str, Any]:
            done = conn.execute(text(f"SELECT {columns} FROM decisions WHERE write_key = :key"),
                                {"key": key}).mappings().first()
            if done is not None:  # an earlier try committed (its entry in the trail with it)
                return dict(done)
            if conn.execute(text("SELECT 1 FROM inspections WHERE id = :id"), {"id": inspection_id}).first() is None:
                raise StoreError(f"inspection {inspection_id} does not exist")
            decision_id = conn.execute(insert(decisions_table).values(
                inspection_id=inspection_id, decided_at=now(), decision=decision, system_grade=system_grade,
                final_grade=final_grade, thresholds=json.dumps(thresholds), comment=comment, operator=operator,
                station=self.station, write_key=key)).inserted_primary_key[0]
            row = dict(conn.execute(text(f"SELECT {columns} FROM decisions WHERE id = :id"),
                                    {"id": decision_id}).mappings().one())
            append(conn, operator, "decision", {
                "inspection_id": inspection_id, "decision_id": row["id"], "decision": decision,
                "system_grade": system_grade, "final_grade": final_grade, "thresholds": thresholds,
                "comment": comment})
            return row
        return self._write("recording a decision", work)

    # ------------------------------------------------------------------ reads

    def inspection(self, inspection_id: int) -> dict[str, Any] | None:
        """The history row of one inspection, with ``view_token_sha256``; None when there is none."""
        inspection_id = check_id(inspection_id)
        row = self.read("reading an inspection", lambda conn: conn.execute(text(
            "SELECT h.*, i.view_token_sha256 FROM history AS h JOIN inspections AS i ON i.id = h.id "
            "WHERE h.id = :id"), {"id": inspection_id}).mappings().first())
        return dict(row) if row else None

    def _where(self, grade: str | None, class_name: str | None, decision: str | None, date_from: str | None,
               date_to: str | None) -> tuple[str, dict[str, Any]]:
        where, args = [], {}
        if grade:
            where.append("current_grade = :grade")
            args["grade"] = grade
        if class_name:
            where.append("class_name = :class_name")
            args["class_name"] = class_name
        if decision:
            if decision == "none":
                where.append("decision IS NULL")
            elif decision in DECISIONS:
                where.append("decision = :decision")
                args["decision"] = decision
            else:
                raise StoreError(f"decision filter must be one of {('none', *DECISIONS)}, got {decision!r}")
        for value, operator, name in ((date_from, ">=", "from"), (date_to, "<=", "to")):
            if value:
                if not DATE.match(value):
                    raise StoreError(f"date {name} must be YYYY-MM-DD, got {value!r}")
                where.append(f"substr(created_at, 1, 10) {operator} :date_{name}")
                args[f"date_{name}"] = value
        return ((" WHERE " + " AND ".join(where) if where else ""),
                {key: check_text(value, "filter", limit=200) for key, value in args.items()})

    def history(self, *, grade: str | None = None, class_name: str | None = None, decision: str | None = None,
                date_from: str | None = None, date_to: str | None = None, limit: int | None = 500) -> list[dict]:
        """Inspections, newest first, each with ``decisions`` (all of them, oldest first).

        Filtered by current grade, class, newest decision (``none``: undecided) and local date.
        """
        where, args = self._where(grade, class_name, decision, date_from, date_to)
        sql = "SELECT * FROM history" + where + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"

        def work(conn: Connection) -> tuple[list[dict], dict[int, list[dict]]]:
            # one transaction for both reads (SQLite: one snapshot)
            rows = [dict(row) for row in conn.execute(text(sql), args).mappings()]
            decided: dict[int, list[dict]] = {}
            if rows:
                for row in conn.execute(text(
                        "SELECT id AS decision_id, inspection_id, decided_at, operator, decision, system_grade, "
                        "final_grade, comment, thresholds FROM decisions WHERE inspection_id BETWEEN :first AND :last "
                        "ORDER BY id"), {"first": rows[-1]["id"], "last": rows[0]["id"]}).mappings():
                    decided.setdefault(row["inspection_id"], []).append(dict(row))
            return rows, decided
        rows, decided = self.read("reading the history", work)
        for row in rows:
            row["decisions"] = decided.get(row["id"], [])
        return rows

    def classes(self) -> list[str]:
        """Every class name recorded so far (for the history filter)."""
        return self.read("reading the classes", lambda conn: [row[0] for row in conn.execute(
            text("SELECT DISTINCT class_name FROM inspections ORDER BY 1"))])

    def history_csv(self, **filters: Any) -> str:
        """The filtered history as CSV text: one row per decision, oldest first within an inspection.

        An undecided inspection has one row with empty decision columns. Text cells that a
        spreadsheet would run as a formula are prefixed with ``'`` (:func:`spreadsheet_safe`).
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.history(**filters, limit=None):
            for decision in row["decisions"] or [{}]:
                writer.writerow({key: spreadsheet_safe(value) for key, value in {**row, **decision}.items()})
        return buffer.getvalue()
