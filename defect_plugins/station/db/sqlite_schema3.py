"""Schema version 3 on SQLite, as the raw-``sqlite3`` releases wrote it (``PRAGMA user_version`` 1 to 3).

Kept as text for two users: migration revision 1 (``0001_schema_3``) writes exactly this into a new
SQLite file, so a file of the schema-3 release and a new one are the same; and the store upgrades
version-1 and version-2 files in place with the same steps those releases used before stamping them
(:func:`upgrade_to_3`).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator

SCHEMA_VERSION = 3

_TABLES = """
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
    score REAL,                           -- the highest anomaly score, NULL without an anomaly model
    view_token_sha256 TEXT,               -- SHA-256 of the token the page got (NULL: made before version 2)
    part_id TEXT,                         -- the part's identity from the trigger (NULL: upload, or before version 3)
    lot TEXT,
    verdict TEXT                          -- OK / NG / ERROR, what the line was told (NULL: before version 3)
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id INTEGER NOT NULL REFERENCES inspections(id),
    decided_at TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'regrade')),
    system_grade TEXT NOT NULL,           -- what the page showed (after any threshold change)
    final_grade TEXT NOT NULL,            -- the system's grade, or the operator's for a regrade
    thresholds TEXT NOT NULL,             -- JSON {model name: threshold in force}
    comment TEXT NOT NULL DEFAULT '',
    operator TEXT NOT NULL DEFAULT ''     -- who decided ('' only for decisions made before version 2)
);
"""
# Version 3: the part's identity, the outbox, accounts and the audit trail
_TABLES_3 = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- publishing order
    inspection_id INTEGER REFERENCES inspections(id),
    channel TEXT NOT NULL,                -- 'mqtt' (the only one so far)
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,                -- JSON text, published as is
    created_at TEXT NOT NULL,
    published_at TEXT,                    -- NULL until the broker acknowledged it (QoS 1 PUBACK)
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(channel, published_at, id);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'engineer')),
    password_hash TEXT NOT NULL,          -- scrypt with its parameters and salt (see .accounts)
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,        -- the cookie's token itself only travels to the browser
    user_name TEXT NOT NULL REFERENCES users(name),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,                  -- the user, or 'station' / 'cli' for what no user did
    action TEXT NOT NULL,                 -- decision, model_activated, threshold_moved, rules_loaded, user_added, ...
    detail TEXT NOT NULL,                 -- JSON object
    prev_hash TEXT NOT NULL,              -- the previous entry's hash ('' before the first)
    hash TEXT NOT NULL                    -- SHA-256 over prev_hash and this entry (see .audit)
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_name);
-- append-only: the station never changes an entry; someone who drops these is found by audit.verify
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: its entries are never changed'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: its entries are never deleted'); END;
"""
_UPGRADE_2 = """
ALTER TABLE inspections ADD COLUMN part_id TEXT;
ALTER TABLE inspections ADD COLUMN lot TEXT;
ALTER TABLE inspections ADD COLUMN verdict TEXT;
DROP VIEW IF EXISTS history;
"""
_VIEW = """
CREATE INDEX IF NOT EXISTS inspections_created ON inspections(created_at);
CREATE INDEX IF NOT EXISTS decisions_inspection ON decisions(inspection_id);
CREATE VIEW IF NOT EXISTS history AS
SELECT i.id, i.created_at, i.source, i.part_id, i.lot, i.verdict, i.image_sha256, i.width, i.height, i.models,
       i.results, i.grade, i.class_name, i.score, d.decision, d.decided_at, d.system_grade, d.final_grade,
       d.thresholds, d.comment, d.operator, COALESCE(d.final_grade, i.grade) AS current_grade,
       (SELECT COUNT(*) FROM decisions WHERE inspection_id = i.id) AS decision_count
FROM inspections AS i
LEFT JOIN decisions AS d ON d.id = (SELECT MAX(id) FROM decisions WHERE inspection_id = i.id);
"""
SCHEMA = _TABLES + _TABLES_3 + _VIEW
# Version 1 -> 2: the view token, the operator, and the view with the decision count
_UPGRADE_1 = """
ALTER TABLE inspections ADD COLUMN view_token_sha256 TEXT;
ALTER TABLE decisions ADD COLUMN operator TEXT NOT NULL DEFAULT '';
DROP VIEW IF EXISTS history;
"""


def statements(script: str) -> Iterator[str]:
    """The SQL statements of ``script``, whole (a trigger's body has semicolons of its own)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            if statement.strip():
                yield statement
            statement = ""
    if statement.strip() and not all(part.strip().startswith("--") or not part.strip()
                                     for part in statement.splitlines()):
        raise ValueError(f"incomplete SQL statement in the store's schema: {statement.strip()[:80]!r}")


def upgrade_to_3(conn: sqlite3.Connection, version: int) -> None:
    """Bring a version-0 (empty), 1 or 2 file to version 3 in ``conn``'s open ``BEGIN IMMEDIATE`` transaction."""
    script = _TABLES if version == 0 else ""
    script += _UPGRADE_1 if version == 1 else ""
    script += _UPGRADE_2 if version in (1, 2) else ""
    for statement in statements(script + _TABLES_3 + _VIEW):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
