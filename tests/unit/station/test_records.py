"""The station's records: an upgraded version-1 file, the WAL kept open, files that are not a station database."""
from __future__ import annotations

import csv
import io
import sqlite3

import pytest

from defect_plugins.station.store import Store, StoreError, check_id, spreadsheet_safe

# The schema the first release wrote (PRAGMA user_version = 1), as it was
SCHEMA_V1 = """
CREATE TABLE inspections (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, source TEXT NOT NULL,
    image_sha256 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, models TEXT NOT NULL,
    results TEXT NOT NULL, grade TEXT NOT NULL, class_name TEXT NOT NULL, score REAL);
CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, inspection_id INTEGER NOT NULL REFERENCES inspections(id),
    decided_at TEXT NOT NULL, decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'regrade')),
    system_grade TEXT NOT NULL, final_grade TEXT NOT NULL, thresholds TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '');
CREATE INDEX inspections_created ON inspections(created_at);
CREATE INDEX decisions_inspection ON decisions(inspection_id);
CREATE VIEW history AS
SELECT i.id, i.created_at, i.source, i.image_sha256, i.width, i.height, i.models, i.results, i.grade,
       i.class_name, i.score, d.decision, d.decided_at, d.system_grade, d.final_grade, d.thresholds, d.comment,
       COALESCE(d.final_grade, i.grade) AS current_grade
FROM inspections AS i
LEFT JOIN decisions AS d ON d.id = (SELECT MAX(id) FROM decisions WHERE inspection_id = i.id);
INSERT INTO inspections VALUES (1, '2026-11-02T10:00:00.000+01:00', 'upload:a.png', 'aa', 200, 200, '[]', '[]',
    'minor', 'crazing', NULL);
INSERT INTO decisions VALUES (1, 1, '2026-11-02T10:01:00.000+01:00', 'reject', 'minor', 'minor', '{}', 'old one');
PRAGMA user_version = 1;
"""


def test_a_version_1_file_is_upgraded_in_place_and_keeps_its_records(tmp_path):
    path = tmp_path / "station.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_V1)
    store = Store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    [row] = store.history()
    assert row["decision"] == "reject" and row["comment"] == "old one" and row["operator"] == ""
    assert [d["decision"] for d in row["decisions"]] == ["reject"]
    # an old inspection has no view token: nobody can decide it through the page any more
    assert store.inspection(1)["view_token_sha256"] is None
    store.add_decision(1, decision="accept", operator="Ana", system_grade="minor", final_grade="minor", thresholds={})
    assert [d["operator"] for d in store.history()[0]["decisions"]] == ["", "Ana"]
    store.close()
    Store(path).close()  # opening an upgraded file again changes nothing


def test_the_keeper_connection_keeps_the_wal_file(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    for index in range(3):
        store.add_inspection(source=f"upload:{index}.png", image_sha256="0" * 64, width=1, height=1, models=[],
                             results=[], grade="ok", class_name="x", score=None)
    assert (tmp_path / "station.sqlite-wal").exists()  # no checkpoint-and-delete after each write
    store.close()


@pytest.mark.parametrize("content, message", [(b"name,grade\nx,ok\n" * 100, "cannot be used as the station's SQLite"),
                                              (None, "is a folder")])
def test_a_db_that_is_no_sqlite_file_is_a_one_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "notes.csv"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        Store(path)

    from defect_plugins.station.cli import main

    assert main(["--model", "missing.xml", "--db", str(path), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("defect-station: error: ") and len(err.splitlines()) == 1 and message in err


def test_decisions_are_appended_signed_and_checked(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    first = store.add_inspection(source="upload:=cmd|' /C calc'!A0.png", image_sha256="a" * 64, width=1, height=1,
                                 models=[], results=[], grade="minor", class_name="+crazing", score=None,
                                 view_token="secret")
    assert store.inspection(first)["view_token_sha256"] != "secret"  # only the hash is kept
    for operator, message in (("", "required"), ("   ", "required"), ("a\x00b", "NUL"),
                              ("\udc80", "not valid Unicode")):
        with pytest.raises(StoreError, match=message):
            store.add_decision(first, decision="accept", operator=operator, system_grade="minor", final_grade="minor",
                               thresholds={})
    store.add_decision(first, decision="reject", operator="Ana", system_grade="minor", final_grade="minor",
                       thresholds={}, comment="-2+3")
    store.add_decision(first, decision="regrade", operator="@Ben", system_grade="minor", final_grade="major",
                       thresholds={}, comment="\tx")
    rows = list(csv.DictReader(io.StringIO(store.history_csv())))
    assert [(r["decision"], r["operator"], r["comment"]) for r in rows] == [
        ("reject", "Ana", "'-2+3"), ("regrade", "'@Ben", "'\tx")]
    assert rows[0]["source"].startswith("upload:=cmd") and rows[0]["class_name"] == "'+crazing"
    assert rows[0]["current_grade"] == "major" and rows[0]["decision_count"] == "2"
    store.close()


def test_ids_and_cells():
    assert check_id(7) == 7 and check_id("12") == 12 and check_id(2 ** 63 - 1) == 2 ** 63 - 1
    for bad in (0, -3, 2 ** 63, "²", "９", " 1", "1.0", 1.0, True, None, "9" * 20):
        with pytest.raises(StoreError, match="inspection id"):
            check_id(bad)
    assert [spreadsheet_safe(v) for v in ("=1+1", "+1", "-1", "@a", "ok", 1.5, None)] == [
        "'=1+1", "'+1", "'-1", "'@a", "ok", 1.5, None]
