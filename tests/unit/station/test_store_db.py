"""The store behind SQLAlchemy: a schema-3 file adopted, the same records on SQLite and PostgreSQL, line and
station tags, the audit on PostgreSQL (append-only trigger, concurrent stations), a server restart mid-writes."""
from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from defect_plugins.station.accounts import Accounts, ScryptCost
from defect_plugins.station.admin import main as admin_main
from defect_plugins.station.audit import append, entries, verify
from defect_plugins.station.db.engine import parse
from defect_plugins.station.store import Store, StoreError, StoreUnavailable

DATA = Path(__file__).resolve().parents[2] / "data" / "station_schema3.sqlite"
FAST = ScryptCost(n=2 ** 14, r=8, p=1)  # the setting tests/data/make_station_schema3.py used
PASSWORD = "correct horse"


def _inspect(store: Store, index: int, **fields) -> int:
    return store.add_inspection(source=f"upload:{index}.png", image_sha256=f"{index:064x}", width=8, height=8,
                                models=[{"name": "rd"}], results=[{"model": "rd"}], grade="minor",
                                class_name="crazing", score=0.5, **fields)


def _count(url: str, table: str) -> int:
    engine = create_engine(parse(url)[0])
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar())
    finally:
        engine.dispose()


def test_a_schema_3_file_of_the_raw_sqlite3_release_is_adopted_with_every_row(tmp_path):
    path = tmp_path / "station.sqlite"
    shutil.copy(DATA, path)
    with sqlite3.connect(path) as conn:
        before = {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                  for table in ("inspections", "decisions", "outbox", "users", "sessions", "audit")}
    store = Store(path, station="s9")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0002"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        for table, rows in before.items():  # every row, every value; the new columns come after, empty
            assert [row[:len(rows[0])] for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")] == rows, table
    assert {table: len(rows) for table, rows in before.items()} == {
        "inspections": 3, "decisions": 2, "outbox": 2, "users": 2, "sessions": 1, "audit": 5}
    second = store.inspection(2)
    assert (second["part_id"], second["lot"], second["verdict"], second["current_grade"], second["operator"]) == (
        "P-002", "L-7", "NG", "major", "Ben")
    assert store.outbox_counts("mqtt") == {"pending": 1, "published": 1}
    report = verify(store)
    assert report.ok and report.entries == 5
    accounts = Accounts(store, cost=FAST)
    token, session = accounts.login("Ben", PASSWORD, client="test")
    assert accounts.session(token).user.name == "Ben" and session.user.role == "operator"
    # new records carry the tags, the chain goes on from the old entries
    new = _inspect(store, 9, part_id="P-9", verdict="OK")
    store.add_decision(new, decision="accept", operator="Ana", system_grade="minor", final_grade="minor",
                       thresholds={})
    assert verify(store).entries == 7
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT line, station FROM inspections WHERE id = ?", (new,)).fetchone() == (None, "s9")
        assert conn.execute("SELECT station FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0] == "s9"
    Store(path).close()  # opening it again changes nothing


def test_records_accounts_and_audit_on_both_databases(station_db):
    store = Store(station_db, line="L1", station="s1")
    first = _inspect(store, 1, part_id="P-1", lot="A", verdict="NG",
                     messages=lambda i, at: [("mqtt", "v", f'{{"id": {i}}}')])
    second = _inspect(store, 2)
    row = store.add_decision(first, decision="regrade", operator="Ana", system_grade="minor", final_grade="major",
                             thresholds={"rd": 0.4}, comment="deep")
    assert row["inspection_id"] == first and row["final_grade"] == "major"
    assert [r["id"] for r in store.history()] == [second, first]
    assert store.history(grade="major")[0]["decisions"][0]["comment"] == "deep"
    assert store.inspection(first)["decision_count"] == 1 and store.classes() == ["crazing"]
    [message] = store.outbox_pending("mqtt")
    store.outbox_attempted(message["id"])
    store.outbox_published(message["id"])
    assert store.outbox_counts("mqtt") == {"pending": 0, "published": 1}
    with pytest.raises(StoreError, match="inspection 99 does not exist"):
        store.add_decision(99, decision="accept", operator="Ana", system_grade="ok", final_grade="ok", thresholds={})
    accounts = Accounts(store, cost=FAST)
    accounts.add_user("Ana", "engineer", PASSWORD)
    token, _ = accounts.login("Ana", PASSWORD)
    assert accounts.session(token).user.name == "Ana" and accounts.has_engineer()
    accounts.disable("Ana")
    assert accounts.session(token) is None
    for statement in ("UPDATE audit SET actor = 'Eve' WHERE id = 1", "DELETE FROM audit WHERE id = 1"):
        with pytest.raises(StoreError, match="append-only"), store.transaction() as conn:
            conn.execute(text(statement))
    report = verify(store)
    assert report.ok and report.entries == 4, report  # the decision, user_added, login, user_disabled
    assert [entry["action"] for entry in entries(store)] == ["user_disabled", "login", "user_added", "decision"]
    with store.connect() as conn:
        assert conn.execute(text("SELECT line, station FROM inspections WHERE id = :id"), {"id": first}).one() == (
            "L1", "s1")
        assert {row[0] for row in conn.execute(text("SELECT station FROM decisions"))} == {"s1"}
        assert {row[0] for row in conn.execute(text("SELECT station FROM audit"))} == {"s1"}
    store.close()


def test_errors_name_the_database_without_its_password(postgres):
    url = postgres.url.replace("postgres@", "postgres:secret@")
    store = Store(url, retry_s=0)
    with store.transaction() as conn:
        append(conn, "station", "rules_loaded", {})
    with pytest.raises(StoreError, match="append-only") as caught, store.transaction() as conn:
        conn.execute(text("DELETE FROM audit"))
    assert postgres.server.url(postgres.name).replace("postgres@", "postgres:***@") in str(caught.value)
    assert "secret" not in str(caught.value)
    store.close()
    with pytest.raises(StoreError, match="unsupported database"):
        Store("mysql://x@localhost/db")
    foreign = postgres.server.url(postgres.server.create_database())
    engine = create_engine(parse(foreign)[0])
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE inspections (id INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not a defect-station database"):
        Store(foreign)


def test_audit_verify_names_an_entry_edited_on_postgresql(postgres):
    store = Store(postgres.url)
    for index in range(4):
        with store.transaction() as conn:
            append(conn, "station", "model_loaded", {"index": index})
    assert admin_main(["audit", "verify", "--db", postgres.url]) == 0
    engine = create_engine(parse(postgres.url)[0])  # the superuser, as someone with psql could
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit DISABLE TRIGGER audit_no_update"))
        conn.execute(text("UPDATE audit SET detail = :detail WHERE id = 3"), {"detail": '{"index":9}'})
        conn.execute(text("ALTER TABLE audit ENABLE TRIGGER audit_no_update"))
    engine.dispose()
    report = verify(store)
    assert not report.ok and report.bad_id == 3 and "edited" in report.reason and report.entries == 2
    assert admin_main(["audit", "verify", "--db", postgres.url]) == 1
    store.close()


def _station_writes(url: str, station: str, count: int) -> None:
    store = Store(url, station=station, line="L1")
    for index in range(count):
        inspection = _inspect(store, index, part_id=f"{station}-{index}")
        store.add_decision(inspection, decision="accept", operator=station, system_grade="minor",
                           final_grade="minor", thresholds={})
    store.close()


def test_four_stations_write_to_one_postgresql_database_at_once(postgres):
    Store(postgres.url).close()  # the schema first; each station's Store finds it up to date
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_station_writes, args=(postgres.url, f"s{n}", 200)) for n in range(1, 5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    store = Store(postgres.url)
    with store.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT id), COUNT(DISTINCT part_id) FROM inspections")
                            ).one() == (800, 800, 800)
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT inspection_id) FROM decisions")).one() == (800, 800)
        per_station = dict(conn.execute(text("SELECT station, COUNT(*) FROM inspections GROUP BY station")).all())
        assert per_station == {"s1": 200, "s2": 200, "s3": 200, "s4": 200}
        assert conn.execute(text("SELECT COUNT(*) FROM decisions AS d JOIN inspections AS i ON i.id = d.inspection_id "
                                 "WHERE d.station IS DISTINCT FROM i.station")).scalar() == 0
    report = verify(store)
    assert report.ok and report.entries == 800, report
    store.close()


def test_writes_wait_for_a_restarted_postgresql_and_none_is_doubled(postgres, caplog):
    store = Store(postgres.url, station="s1", retry_s=30)
    done: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for index in range(60):
                inspection = _inspect(store, index, part_id=f"P-{index}")
                store.add_decision(inspection, decision="accept", operator="Ana", system_grade="minor",
                                   final_grade="minor", thresholds={})
                done.append(inspection)
        except BaseException as error:  # noqa: BLE001  (the test reports it)
            failures.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    while len(done) < 10 and thread.is_alive():
        threading.Event().wait(0.01)
    postgres.stop()  # clients are disconnected, writes in flight fail
    threading.Event().wait(2.0)  # the writes wait meanwhile
    postgres.start()
    thread.join(60)
    assert not failures and len(done) == 60
    assert "database unavailable, retrying" in caplog.text
    assert _count(postgres.url, "inspections") == 60 and _count(postgres.url, "decisions") == 60
    with store.connect() as conn:
        assert conn.execute(text("SELECT COUNT(DISTINCT part_id) FROM inspections")).scalar() == 60
    assert verify(store).entries == 60
    store.close()


def test_a_server_that_stays_away_is_store_unavailable_after_retry_s(postgres):
    store = Store(postgres.url, retry_s=1.0)
    postgres.stop()
    try:
        with pytest.raises(StoreUnavailable, match="recording an inspection failed"):
            _inspect(store, 1)
    finally:
        postgres.start()
    store.close()


def test_a_commit_lost_in_flight_is_not_written_twice_on_retry(postgres, monkeypatch):
    import psycopg

    store = Store(postgres.url, retry_s=10)
    dialect = store.engine.dialect
    real_commit = dialect.do_commit
    lost = []

    def commit_then_lose_the_answer(dbapi_connection):
        real_commit(dbapi_connection)  # the server has it...
        if not lost:
            lost.append(True)  # ...but the client never hears so, once
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", commit_then_lose_the_answer)
    inspection = _inspect(store, 1, part_id="P-1")
    decision = store.add_decision(inspection, decision="accept", operator="Ana", system_grade="minor",
                                  final_grade="minor", thresholds={})
    assert lost and decision["inspection_id"] == inspection
    assert _count(postgres.url, "inspections") == 1 and _count(postgres.url, "decisions") == 1
    assert verify(store).entries == 1
    store.close()


def test_an_inspection_with_a_write_key_is_recorded_once_and_its_first_id_answers_a_repeat(station_db):
    store = Store(station_db, line="L1", station="S1")
    try:
        messages = []

        def outbox(inspection_id: int, created_at: str) -> list[tuple[str, str, str]]:
            messages.append(inspection_id)
            return [("mqtt", "plant/L1/verdict", f'{{"inspection_id": {inspection_id}}}')]

        first = _inspect(store, 1, part_id="P-1", verdict="NG", messages=outbox, write_key="mqtt:plant/L1:r1")
        again = store.add_inspection(source="mqtt:other.png", image_sha256="0" * 64, width=4, height=4, models=[],
                                     results=[], grade="none", class_name="none", score=0.1, part_id="P-1",
                                     verdict="OK", messages=outbox, write_key="mqtt:plant/L1:r1")
        assert again == first and messages == [first]  # nothing written, no second message
        assert _count(station_db, "inspections") == 1 and _count(station_db, "outbox") == 1
        recorded = store.recorded_inspection("mqtt:plant/L1:r1")
        assert (recorded["id"], recorded["verdict"], recorded["grade"], recorded["class_name"]) == (
            first, "NG", "minor", "crazing")
        assert (recorded["line"], recorded["station"], recorded["part_id"]) == ("L1", "S1", "P-1")
        assert store.recorded_inspection("mqtt:plant/L1:r2") is None
        # without a key every call is an inspection of its own, as before
        assert _inspect(store, 2) != _inspect(store, 2) and _count(station_db, "inspections") == 3
    finally:
        store.close()


def test_the_same_write_key_from_two_threads_at_once_records_one_inspection(station_db):
    store = Store(station_db, line="L1", station="S1")
    try:
        ids: list[int] = []
        start = threading.Barrier(4)

        def add() -> None:
            start.wait()
            ids.append(_inspect(store, 1, part_id="P-1", write_key="mqtt:plant/L1:same"))
        threads = [threading.Thread(target=add) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ids) == 4 and len(set(ids)) == 1 and _count(station_db, "inspections") == 1
    finally:
        store.close()


def test_on_a_shared_server_each_station_publishes_only_its_own_outbox(postgres):
    def outbox(topic: str):
        return lambda inspection_id, created_at: [("mqtt", topic, f'{{"inspection_id": {inspection_id}}}')]
    one, two = Store(postgres.url, line="L1", station="S1"), Store(postgres.url, line="L2", station="S2")
    try:
        mine = _inspect(one, 1, messages=outbox("plant/L1/verdict"))
        _inspect(two, 2, messages=outbox("plant/L2/verdict"))
        _inspect(two, 3, messages=outbox("plant/L2/verdict"))
        assert [row["inspection_id"] for row in one.outbox_pending("mqtt")] == [mine]
        assert {row["topic"] for row in two.outbox_pending("mqtt")} == {"plant/L2/verdict"}
        assert one.outbox_counts("mqtt") == {"pending": 1, "published": 0}
        assert two.outbox_counts("mqtt") == {"pending": 2, "published": 0}
    finally:
        one.close()
        two.close()
