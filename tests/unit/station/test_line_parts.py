"""Line triggers without the links: a part's verdict is recorded with its identity and its outbox message,
never OK without a record, ERROR (recorded and told) for every image the station cannot judge, and the
folder watcher names parts by the file-name pattern."""
from __future__ import annotations

import json
import os
import sqlite3

import cv2
import pytest

from defect_plugins.deploy.grading import load_rules
from defect_plugins.station.engine import Station
from defect_plugins.station.line.folder import FolderTrigger, compile_pattern, parse_name
from defect_plugins.station.line.links import mqtt_messages
from defect_plugins.station.line.parts import ImageRoots, PartError, PartInspector
from defect_plugins.station.store import Store
from defect_plugins.station.watch import WatchFolder
from tests.fixtures.station import steel_image


@pytest.fixture
def line(station_irs, tmp_path):
    images = tmp_path / "camera"
    images.mkdir()
    store = Store(tmp_path / "station.sqlite")
    station = Station([station_irs["anomaly"]], load_rules(), store)
    told = []
    inspector = PartInspector(station, ImageRoots([images]),
                              messages=mqtt_messages("line1/verdict"))
    inspector.add_listener(told.append)
    yield {"images": images, "store": store, "station": station, "inspector": inspector, "told": told}
    store.close()


def _image(folder, name, seed=1):
    path = folder / name
    cv2.imwrite(str(path), steel_image(seed))
    return path


def test_a_part_is_recorded_with_its_identity_and_its_message(line):
    _image(line["images"], "p1.png")
    verdict = line["inspector"].inspect_part("SN-0001", "LOT7", "p1.png", origin="opcua")
    assert verdict["verdict"] in ("OK", "NG") and verdict["inspection_id"] and verdict["error"] is None
    row = line["store"].inspection(verdict["inspection_id"])
    assert (row["part_id"], row["lot"], row["source"]) == ("SN-0001", "LOT7", "opcua:p1.png")
    pending = line["store"].outbox_pending("mqtt")
    assert len(pending) == 1 and pending[0]["inspection_id"] == verdict["inspection_id"]
    message = json.loads(pending[0]["payload"])
    assert message["part_id"] == "SN-0001" and message["verdict"] == verdict["verdict"]
    assert message["inspection_id"] == verdict["inspection_id"] and message["timestamp"] == row["created_at"]
    assert line["told"] == [verdict]
    # OK means the least severe grade, and the page can show and decide the part (its token comes with it)
    assert (verdict["verdict"] == "OK") == (verdict["grade"] == line["station"].rules.grades[0])
    payload = line["station"].payload(verdict["inspection_id"])
    decided = line["station"].decide(verdict["inspection_id"], "accept", operator="Ana", token=payload["token"])
    assert decided["operator"] == "Ana"


@pytest.mark.parametrize("path, reason", [
    ("missing.png", "no such image file"),
    ("../outside.png", "outside the line's image folders"),
    ("broken.png", "malformed"),
])
def test_an_image_the_station_cannot_judge_is_an_error_verdict_recorded_and_told(line, path, reason):
    (line["images"].parent / "outside.png").write_bytes(cv2.imencode(".png", steel_image(1))[1].tobytes())
    (line["images"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    verdict = line["inspector"].inspect_part("SN-2", None, path, origin="mqtt")
    assert verdict["verdict"] == "ERROR" and reason in verdict["error"].lower(), verdict
    row = line["store"].inspection(verdict["inspection_id"])
    assert row["part_id"] == "SN-2" and row["class_name"] == "error"
    assert json.loads(line["store"].outbox_pending("mqtt")[0]["payload"])["verdict"] == "ERROR"
    assert line["inspector"].state()["errors"] == 1


def test_a_trigger_without_a_part_id_is_refused(line):
    for bad in ("", "   ", None, 12):
        with pytest.raises(PartError, match="part_id"):
            line["inspector"].inspect_part(bad, None, "p.png", origin="opcua")
    with pytest.raises(PartError, match="at most 200"):
        line["inspector"].inspect_part("x" * 201, None, "p.png", origin="opcua")


def test_a_verdict_that_cannot_be_recorded_is_an_error_never_ok(line):
    _image(line["images"], "p1.png")
    blocker = sqlite3.connect(str(line["store"].path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the store's timeout
    line["store"].busy_timeout_ms = 100
    try:
        verdict = line["inspector"].inspect_part("SN-3", None, "p1.png", origin="opcua")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert verdict["verdict"] == "ERROR" and verdict["inspection_id"] is None
    assert "could not be recorded" in verdict["error"] and "not published as OK" in verdict["error"]
    assert line["inspector"].state()["last_store_error"] and line["told"][-1]["verdict"] == "ERROR"
    assert line["store"].outbox_pending("mqtt") == []  # nothing queued for a part without a record


def test_file_name_pattern():
    pattern = compile_pattern(r"(?P<lot>[A-Z0-9]+)_(?P<part_id>\d+)\.png")
    assert parse_name(pattern, "L42_000017.png") == ("000017", "L42")
    assert parse_name(pattern, "L42_000017.png.tmp") is None and parse_name(pattern, "x.png") is None
    for bad, message in (("(", "not a regular expression"), ("(?P<lot>.*)", "part_id"),
                         ("(?P<part_id>.*)(?P<serial>.)", "unknown named groups")):
        with pytest.raises(ValueError, match=message):
            compile_pattern(bad)


def test_folder_trigger_takes_each_new_settled_image_once(line):
    _image(line["images"], "L1_000001.png")  # there before the start: taken as handled
    trigger = FolderTrigger(WatchFolder(line["images"]), compile_pattern(r"(?P<lot>L\d+)_(?P<part_id>\d+)\.png"),
                            line["inspector"])
    second = _image(line["images"], "L1_000002.png")
    os.utime(second, (1, 1))
    third = _image(line["images"], "L1_000003.png", seed=2)
    os.utime(third, (2, 2))
    _image(line["images"], "garbage.png")
    assert trigger.poll() == []  # first sight: sizes noted, not settled yet
    verdicts = trigger.poll()
    assert [v["part_id"] for v in verdicts] == ["000002", "000003", "unmatched:garbage.png"]
    assert [v["verdict"] for v in verdicts][2] == "ERROR" and "does not match" in verdicts[2]["error"]
    assert all(v["inspection_id"] for v in verdicts) and verdicts[0]["lot"] == "L1"
    assert trigger.poll() == []  # once each


def test_a_full_disk_gives_an_error_verdict_never_an_ok_and_nothing_queued(line):
    from sqlalchemy import event

    store, inspector = line["store"], line["inspector"]
    _image(line["images"], "p.png")
    assert inspector.inspect_part("SN-0", None, "p.png", origin="opcua")["verdict"] in ("OK", "NG")

    @event.listens_for(store.engine, "connect")
    def no_room(dbapi_connection, record) -> None:  # SQLite's own "disk full" (SQLITE_FULL) at the next page
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()  # every connection from now on has no room to grow
    queued = len(store.outbox_pending("mqtt"))
    verdicts = [inspector.inspect_part(f"SN-{n}", "L" * 200, "p.png", origin="opcua") for n in range(1, 40)]
    failed = [v for v in verdicts if v["verdict"] == "ERROR"]
    assert failed, "the file never filled up"
    assert all(v["inspection_id"] is None and "not published as OK" in v["error"] for v in failed)
    assert "database or disk is full" in failed[0]["error"]
    assert "database or disk is full" in inspector.state()["last_store_error"]
    recorded = [v for v in verdicts if v["inspection_id"] is not None]
    assert len(store.outbox_pending("mqtt")) == queued + len(recorded)  # nothing queued for an unrecorded verdict
    assert line["told"][-1]["verdict"] == "ERROR"  # the PLC's variables say ERROR, never the last OK


def test_a_request_delivered_again_is_answered_with_its_recorded_verdict_and_written_once(line, monkeypatch):
    _image(line["images"], "p1.png")
    first = line["inspector"].inspect_part("SN-1", "LOT", "p1.png", origin="mqtt", request_key="mqtt:l1:r1")
    assert first["verdict"] in ("OK", "NG") and first["inspection_id"]
    # a redelivery after a crash: the models are not run again, the answer is what was recorded
    monkeypatch.setattr(line["station"], "run_models", lambda *args: pytest.fail("inspected again"))
    again = line["inspector"].inspect_part("SN-1", "LOT", "p1.png", origin="mqtt", request_key="mqtt:l1:r1")
    assert again["repeated"] and again["inspection_id"] == first["inspection_id"]
    assert (again["verdict"], again["grade"], again["class"]) == (first["verdict"], first["grade"], first["class"])
    with sqlite3.connect(line["store"].path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    assert len(line["told"]) == 1  # the listeners (OPC UA counters) heard the part once


def test_a_request_recorded_meanwhile_by_another_thread_answers_with_that_record(line, monkeypatch):
    _image(line["images"], "p1.png")
    store = line["store"]
    # the look-up before the models misses; the record is made by "another thread" in between
    monkeypatch.setattr(store, "recorded_inspection", lambda key, real=store.recorded_inspection: (
        None if not hasattr(store, "_raced") else real(key)))
    real_add = store.add_inspection

    def racing_add(**fields):
        store._raced = True
        real_add(**{**fields, "verdict": "NG", "grade": "major", "class_name": "scratch", "messages": None})
        return real_add(**fields)
    monkeypatch.setattr(store, "add_inspection", racing_add)
    verdict = line["inspector"].inspect_part("SN-1", None, "p1.png", origin="mqtt", request_key="mqtt:l1:r9")
    assert (verdict["verdict"], verdict["grade"], verdict["class"], verdict["repeated"]) == ("NG", "major", "scratch",
                                                                                            True)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0] == 1
