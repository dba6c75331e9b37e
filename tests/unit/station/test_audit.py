"""The audit trail: one entry per change in the caller's transaction, a hash chain that names the first bad entry."""
from __future__ import annotations

import csv
import json
import sqlite3
import threading

import pytest

from sqlalchemy import text

from defect_plugins.station.audit import AuditError, append, entry_hash, export_csv, verify
from defect_plugins.station.store import Store, StoreError


def _store(tmp_path, entries: int = 5, *, db: str | None = None) -> Store:
    store = Store(db or tmp_path / "station.sqlite")
    for index in range(entries):
        with store.transaction() as conn:
            append(conn, "station", "model_loaded", {"index": index, "name": f"model {index}", "threshold": 0.5})
    return store


def _tamper(store: Store, *statements: str) -> None:
    """What someone with the sqlite3 shell can do: drop the append-only triggers, then change rows."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def test_an_intact_chain_passes_and_decisions_are_audited_in_their_transaction(tmp_path):
    store = _store(tmp_path, 2)
    inspection = store.add_inspection(source="upload:a.png", image_sha256="a" * 64, width=8, height=8, models=[],
                                      results=[], grade="minor", class_name="crazing", score=0.7)
    decision = store.add_decision(inspection, decision="regrade", operator="Ana", system_grade="minor",
                                  final_grade="major", thresholds={"ad": 0.4}, comment="deep")
    # a decision that fails leaves no audit entry either
    with pytest.raises(StoreError, match="inspection 99 does not exist"):
        store.add_decision(99, decision="accept", operator="Ana", system_grade="ok", final_grade="ok", thresholds={})
    report = verify(store)
    assert report.ok and report.entries == 3 and report.message == "audit trail intact: 3 entries"
    with sqlite3.connect(store.path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM audit ORDER BY id").fetchall()
    assert [row["id"] for row in rows] == [1, 2, 3] and rows[0]["prev_hash"] == ""
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in (1, 2))
    assert report.last_id == 3 and report.last_hash == rows[2]["hash"]
    last = rows[2]
    assert last["actor"] == "Ana" and last["action"] == "decision"
    assert json.loads(last["detail"]) == {"inspection_id": inspection, "decision_id": decision["id"],
                                          "decision": "regrade", "system_grade": "minor", "final_grade": "major",
                                          "thresholds": {"ad": 0.4}, "comment": "deep"}
    assert last["hash"] == entry_hash(3, last["at"], "Ana", "decision", json.loads(last["detail"]), rows[1]["hash"])
    store.close()


def test_append_needs_the_callers_transaction_and_rolls_back_with_it(tmp_path, station_db):
    store = _store(tmp_path, 1, db=station_db)
    conn = store.connect()
    with pytest.raises(AuditError, match="inside the caller's write transaction"):
        append(conn, "station", "rules_loaded", {})
    conn.close()
    with pytest.raises(RuntimeError, match="the caller failed"), store.transaction() as conn:
        append(conn, "Ana", "threshold_moved", {"threshold": 0.2})
        raise RuntimeError("the caller failed after appending")
    for actor, action, detail, message in (("station", "Rules Loaded", {}, "lower-case word"),
                                           ("", "login", {}, "actor"),
                                           ("station", "login", [1, 2], "JSON object"),
                                           ("station", "login", {"x": float("nan")}, "finite numbers"),
                                           ("station", "login", {"x": object()}, "not JSON")):
        with pytest.raises(AuditError, match=message), store.transaction() as conn:
            append(conn, actor, action, detail)
    assert verify(store).entries == 1
    store.close()


def test_the_table_refuses_updates_and_deletes(tmp_path):
    store = _store(tmp_path, 2)
    for statement in ("UPDATE audit SET actor = 'Eve' WHERE id = 1", "DELETE FROM audit WHERE id = 2"):
        with pytest.raises(StoreError, match="append-only"), store.transaction() as conn:
            conn.execute(text(statement))
    assert verify(store).ok
    store.close()


def test_an_edited_entry_is_named(tmp_path):
    store = _store(tmp_path)
    _tamper(store, """UPDATE audit SET detail = '{"index":2,"name":"model 2","threshold":0.9}' WHERE id = 3""")
    report = verify(store)
    assert not report.ok and report.bad_id == 3 and "edited" in report.reason and report.entries == 2
    assert report.message.startswith("audit trail broken at entry 3: ")
    store.close()


def test_an_entry_edited_and_re_hashed_is_named_by_the_next_link(tmp_path):
    store = _store(tmp_path)
    with sqlite3.connect(store.path) as conn:
        at, prev_hash = conn.execute("SELECT at, prev_hash FROM audit WHERE id = 2").fetchone()
    detail = {"index": 1, "name": "model 1", "threshold": 0.9}
    forged = entry_hash(2, at, "station", "model_loaded", detail, prev_hash)
    _tamper(store, f"UPDATE audit SET detail = '{json.dumps(detail)}', hash = '{forged}' WHERE id = 2")
    report = verify(store)
    assert report.bad_id == 2 and "re-hashed" in report.reason
    store.close()


@pytest.mark.parametrize("deleted, bad_id, words", [
    ("id = 3", 3, "entry 3 missing (deleted): entry 4 follows entry 2"),
    ("id IN (2, 3)", 2, "entry 2 to 3 missing (deleted)"),
    ("id = 1", 1, "entry 1 missing (deleted): the trail starts at 2"),
    ("id = 5", 5, "entry 5 missing (deleted): ids up to 5 were written (sqlite_sequence)"),
    ("id >= 4", 4, "entry 4 to 5 missing"),
    ("1", 1, "entry 1 to 5 missing"),
])
def test_a_deleted_entry_is_named(tmp_path, deleted, bad_id, words):
    store = _store(tmp_path)
    _tamper(store, f"DELETE FROM audit WHERE {deleted}")
    report = verify(store)
    assert not report.ok and report.bad_id == bad_id and words in report.reason, report
    store.close()


def test_a_deleted_tail_with_sqlite_sequence_edited_too_is_what_a_chain_cannot_find(tmp_path):
    # documented in defect_plugins/station/audit.py: compare the newest hash with one written down earlier
    store = _store(tmp_path)
    newest = verify(store).last_hash
    _tamper(store, "DELETE FROM audit WHERE id = 5", "UPDATE sqlite_sequence SET seq = 4 WHERE name = 'audit'")
    report = verify(store)
    assert report.ok and report.entries == 4 and report.last_hash != newest
    store.close()


def test_appends_from_threads_make_one_chain(tmp_path, station_db):
    store = _store(tmp_path, 0, db=station_db)

    def writer(actor: str) -> None:
        for index in range(15):
            with store.transaction() as conn:
                append(conn, actor, "threshold_moved", {"index": index})

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("Ana", "Ben", "Cy")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify(store)
    assert report.ok and report.entries == 45 and report.last_id == 45
    store.close()


def test_the_csv_export_has_every_column_and_the_chain(tmp_path, station_db):
    store = _store(tmp_path, 3, db=station_db)
    with store.transaction() as conn:
        append(conn, "=HYPERLINK(\"http://evil.example\")", "login_failed", {"reason": "unknown user name"})
    out = tmp_path / "audit.csv"
    assert export_csv(store, out) == 4
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "at", "actor", "action", "detail", "prev_hash", "hash"]
    assert [row["id"] for row in rows] == ["1", "2", "3", "4"] and rows[0]["prev_hash"] == ""
    for previous, row in zip(rows, rows[1:]):
        assert row["prev_hash"] == previous["hash"]
    for row in rows[:3]:  # the CSV alone is enough to check these entries
        assert row["hash"] == entry_hash(int(row["id"]), row["at"], row["actor"], row["action"],
                                         json.loads(row["detail"]), row["prev_hash"])
    assert rows[3]["actor"] == "'=HYPERLINK(\"http://evil.example\")"  # shown as text, never run
    with pytest.raises(AuditError, match="does not exist"):
        export_csv(store, tmp_path / "missing" / "audit.csv")
    store.close()
