"""The station's SQLite file: one row per inspected image, one row per operator decision.

Why it is written this way:

* WAL journal mode: the page's history reads never wait for an inspection being written, and a
  writer never blocks readers; ``synchronous=FULL`` so that a decision the page confirmed survives
  a power cut of the line PC.
* Every write is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction: an inspection (or a decision)
  is in the file whole or not at all, and concurrent uploads from several browsers serialise on
  SQLite's write lock (``busy_timeout``) instead of failing.
* A connection per operation: the ASGI server runs requests on a pool of threads, and an SQLite
  connection must not be shared between threads; opening one costs well under a millisecond.
  The store keeps one more connection open for its whole life: when the last connection to a WAL
  database closes, SQLite checkpoints the log into the file (several fsyncs, about 10 ms here),
  which would otherwise happen after every write.

Tables (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`): ``inspections`` (time, source, image
SHA-256, size, the models with their versions, per-model results and scores as JSON, the
station's grade and class) and ``decisions`` (inspection, time, accept / reject / regrade, the
grade the system showed, the final grade, the thresholds in force, the comment). The view
``history`` joins each inspection with its latest decision.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DECISIONS = ("accept", "reject", "regrade")
MAX_COMMENT = 2000
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS inspections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,             -- local time with its UTC offset, ISO 8601
    source TEXT NOT NULL,                 -- upload:<file name> or watch:<file name>
    image_sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    models TEXT NOT NULL,                 -- JSON [{name, family, version, weights, precision}]
    results TEXT NOT NULL,                -- JSON [{model, class, confidence, score, threshold, totals, grade, ...}]
    grade TEXT NOT NULL,                  -- the station's grade: the worst of the models'
    class_name TEXT NOT NULL,
    score REAL                            -- the highest anomaly score, NULL without an anomaly model
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id INTEGER NOT NULL REFERENCES inspections(id),
    decided_at TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'regrade')),
    system_grade TEXT NOT NULL,           -- what the page showed (after any threshold change)
    final_grade TEXT NOT NULL,            -- the system's grade, or the operator's for a regrade
    thresholds TEXT NOT NULL,             -- JSON {model name: threshold in force}
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS inspections_created ON inspections(created_at);
CREATE INDEX IF NOT EXISTS decisions_inspection ON decisions(inspection_id);
CREATE VIEW IF NOT EXISTS history AS
SELECT i.id, i.created_at, i.source, i.image_sha256, i.width, i.height, i.models, i.results, i.grade,
       i.class_name, i.score, d.decision, d.decided_at, d.system_grade, d.final_grade, d.thresholds, d.comment,
       COALESCE(d.final_grade, i.grade) AS current_grade
FROM inspections AS i
LEFT JOIN decisions AS d ON d.id = (SELECT MAX(id) FROM decisions WHERE inspection_id = i.id);
"""

CSV_FIELDS = ["id", "created_at", "source", "image_sha256", "width", "height", "class_name", "grade", "score",
              "decision", "final_grade", "system_grade", "comment", "decided_at", "thresholds", "models", "results"]


class StoreError(ValueError):
    """A bad request to the store (unknown inspection, bad decision, bad filter)."""


def now() -> str:
    """Local time with its offset (operators filter by their own dates), milliseconds."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class Store:
    """The SQLite file at ``path`` (created with its schema when missing)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30000) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise StoreError(f"{self.path}: the folder {self.path.parent} does not exist")
        self.busy_timeout_ms = int(busy_timeout_ms)
        with contextlib.closing(self._connect()) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version not in (0, SCHEMA_VERSION) or (version == 0 and tables - {"sqlite_sequence"}):
                raise StoreError(f"{self.path}: not a defect-station database (schema version {version}, "
                                 f"tables {sorted(tables)}); expected version {SCHEMA_VERSION}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (journal_mode is {mode})")
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        self._keeper = sqlite3.connect(str(self.path), check_same_thread=False)  # see the module docstring

    def close(self) -> None:
        """Close the long-lived connection (SQLite then checkpoints the log into the file)."""
        self._keeper.close()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are the explicit BEGIN IMMEDIATE / COMMIT below
        conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        with contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def add_inspection(self, *, source: str, image_sha256: str, width: int, height: int, models: list[dict],
                       results: list[dict], grade: str, class_name: str, score: float | None) -> int:
        """Insert one inspection; its id."""
        row = (now(), source, image_sha256, int(width), int(height), json.dumps(models), json.dumps(results),
               grade, class_name, None if score is None else float(score))
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO inspections (created_at, source, image_sha256, width, height, models, results, grade, "
                "class_name, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cursor.lastrowid)

    def add_decision(self, inspection_id: int, *, decision: str, system_grade: str, final_grade: str,
                     thresholds: dict[str, float | None], comment: str = "") -> dict[str, Any]:
        """Insert an operator decision for an existing inspection; the stored row."""
        if decision not in DECISIONS:
            raise StoreError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if len(comment) > MAX_COMMENT:
            raise StoreError(f"comment is {len(comment)} characters; at most {MAX_COMMENT}")
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM inspections WHERE id = ?", (int(inspection_id),)).fetchone() is None:
                raise StoreError(f"inspection {inspection_id} does not exist")
            cursor = conn.execute(
                "INSERT INTO decisions (inspection_id, decided_at, decision, system_grade, final_grade, thresholds, "
                "comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(inspection_id), now(), decision, system_grade, final_grade, json.dumps(thresholds), comment))
            row = conn.execute("SELECT * FROM decisions WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return dict(row)

    # ------------------------------------------------------------------ reads

    def inspection(self, inspection_id: int) -> dict[str, Any] | None:
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM history WHERE id = ?", (int(inspection_id),)).fetchone()
        return dict(row) if row else None

    def history(self, *, grade: str | None = None, class_name: str | None = None, decision: str | None = None,
                date_from: str | None = None, date_to: str | None = None, limit: int | None = 500) -> list[dict]:
        """Inspections, newest first, filtered by current grade, class, decision (``none``: undecided) and local date."""
        where, args = [], []
        if grade:
            where.append("current_grade = ?")
            args.append(grade)
        if class_name:
            where.append("class_name = ?")
            args.append(class_name)
        if decision:
            if decision == "none":
                where.append("decision IS NULL")
            elif decision in DECISIONS:
                where.append("decision = ?")
                args.append(decision)
            else:
                raise StoreError(f"decision filter must be one of {('none', *DECISIONS)}, got {decision!r}")
        for value, operator, name in ((date_from, ">=", "from"), (date_to, "<=", "to")):
            if value:
                if not DATE.match(value):
                    raise StoreError(f"date {name} must be YYYY-MM-DD, got {value!r}")
                where.append(f"substr(created_at, 1, 10) {operator} ?")
                args.append(value)
        sql = "SELECT * FROM history" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with contextlib.closing(self._connect()) as conn:
            return [dict(row) for row in conn.execute(sql, args)]

    def classes(self) -> list[str]:
        """Every class name recorded so far (for the history filter)."""
        with contextlib.closing(self._connect()) as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT class_name FROM inspections ORDER BY 1")]

    def history_csv(self, **filters: Any) -> str:
        """The filtered history as CSV text (every inspection, no row limit)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history(**filters, limit=None))
        return buffer.getvalue()
