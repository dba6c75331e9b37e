"""Model versions at a station: shadow, activate, rollback, the automatic rollback, and the comparison report.

Two anomaly bundles of tiny opset IRs (tests/fixtures/station.py :func:`version_shelf`): ``live`` calls the
grey test image OK, ``strict`` calls it NG, so the shadow's verdict always differs from the active one's.
"""
from __future__ import annotations


import csv
import io
import json
import threading

import cv2
import pytest
from sqlalchemy import text

from defect_plugins.deploy.grading import load_rules
from defect_plugins.station.audit import verify
from defect_plugins.station.engine import Station, StationError
from defect_plugins.station.line.parts import ImageRoots, PartInspector
from defect_plugins.station.store import Store
from tests.fixtures.station import png_bytes, version_image, version_shelf


@pytest.fixture
def station(tmp_path):
    paths = version_shelf(tmp_path)
    store = Store(tmp_path / "station.sqlite")
    station = Station([paths["live"]], load_rules(), store, bundles=paths["shelf"])
    camera = tmp_path / "camera"
    camera.mkdir()
    cv2.imwrite(str(camera / "grey.png"), version_image())
    station.camera = camera
    yield station
    store.close()


def _line(station):
    """A PartInspector whose line messages are collected (what MQTT would publish)."""
    published = []

    def messages(verdict):
        published.append(verdict)
        return []

    return PartInspector(station, ImageRoots([station.camera]), messages=messages), published


def _audit(store):
    with store.transaction() as conn:
        rows = conn.execute(text("SELECT actor, action, detail FROM audit ORDER BY id")).fetchall()
    return [(actor, action, json.loads(detail)) for actor, action, detail in rows]


def test_shadow_then_activate_then_rollback_each_audited_and_the_shadow_never_decides(station):
    line, published = _line(station)
    store = station.store
    assert line.inspect_part("P1", None, "grey.png", origin="test")["verdict"] == "OK"

    station.slots.shadow(0, "strict", actor="erin")
    answer = line.inspect_part("P2", "L1", "grey.png", origin="test")
    assert answer["verdict"] == "OK" and list(answer["models"]) == ["live"] and list(answer["scores"]) == ["live"]
    assert published[-1]["verdict"] == "OK" and list(published[-1]["models"]) == ["live"]
    row = store.inspection(answer["inspection_id"])
    results, models = json.loads(row["results"]), json.loads(row["models"])
    assert [(r["model"], r.get("role", "active"), r["model_verdict"]) for r in results] == [
        ("live", "active", "OK"), ("strict", "shadow", "NG")]
    assert models[1]["role"] == "shadow" and models[1]["slot"] == 0
    assert row["verdict"] == "OK" and row["grade"] == "ok" and row["score"] == pytest.approx(results[0]["score"])
    page = station.inspect(png_bytes(version_image()), "up.png")  # the page shows the active model only
    assert page["grade"] == "ok" and [m["name"] for m in page["models"]] == ["live"]
    assert [s["name"] for s in station.status()["shadows"]] == ["strict"]
    # the history CSV's verdict, grade and score columns are the active model's; its results cell tags the shadow
    exported = {int(r["id"]): r for r in csv.DictReader(io.StringIO(store.history_csv()))}[answer["inspection_id"]]
    assert exported["verdict"] == "OK" and exported["grade"] == "ok"
    assert float(exported["score"]) == pytest.approx(results[0]["score"])
    assert [r.get("role", "active") for r in json.loads(exported["results"])] == ["active", "shadow"]

    station.slots.activate(0, actor="erin")
    assert [m.name for m in station.models] == ["strict"]
    assert line.inspect_part("P3", None, "grey.png", origin="test")["verdict"] == "NG"
    assert published[-1]["verdict"] == "NG" and list(published[-1]["models"]) == ["strict"]
    slot = station.slots.snapshot()[0]
    assert slot.previous.name == "live" and slot.shadow is None

    station.slots.rollback(0, actor="erin")
    assert line.inspect_part("P4", None, "grey.png", origin="test")["verdict"] == "OK"

    trail = [(actor, action, detail) for actor, action, detail in _audit(store) if action.startswith("model_")]
    assert [action for _, action, _ in trail] == ["model_shadow_started", "model_activated", "model_rolled_back"]
    assert all(actor == "erin" and detail["slot"] == 0 for actor, _, detail in trail)
    versions = {m.name: m.version for m in (slot.active, slot.previous)}
    assert trail[1][2]["from"] == {"name": "live", "version": versions["live"]}
    assert trail[1][2]["to"] == {"name": "strict", "version": versions["strict"]}
    assert trail[2][2]["to"]["name"] == "live" and trail[2][2]["from"]["name"] == "strict"
    assert verify(store).ok


def test_a_candidate_of_another_family_or_a_missing_name_or_slot_is_refused(station):
    with pytest.raises(StationError, match="cls is a classifier model; slot 0 holds anomaly models") as error:
        station.slots.shadow(0, "cls", actor="erin")
    assert error.value.status == 400
    with pytest.raises(StationError, match="no bundle or IR called 'nope'.*there are: cls, strict"):
        station.slots.shadow(0, "nope", actor="erin")
    with pytest.raises(StationError, match="slot 3 does not exist"):
        station.slots.shadow(3, "strict", actor="erin")
    with pytest.raises(StationError, match="no previous model"):
        station.slots.rollback(0, actor="erin")
    with pytest.raises(StationError, match="runs no shadow"):
        station.slots.activate(0, actor="erin")
    assert not [a for _, a, _ in _audit(station.store) if a.startswith("model_")]


class _BrokenPostprocessing:
    """A family whose post-processing raises: the inferencer turns that into an error result."""

    def __init__(self, family):
        self._family = family

    def __getattr__(self, name):
        return getattr(self._family, name)

    @staticmethod
    def postprocess(*args, **kwargs):
        raise RuntimeError("post-processing broke")


def test_a_switched_in_model_failing_on_a_live_part_rolls_back_and_the_part_gets_the_previous_verdict(station):
    line, published = _line(station)
    station.slots.shadow(0, "strict", actor="erin")
    candidate = station.slots.snapshot()[0].shadow
    candidate.inferencer.family = _BrokenPostprocessing(candidate.inferencer.family)
    station.slots.activate(0, actor="erin")

    answer = line.inspect_part("P9", None, "grey.png", origin="test")
    assert answer["verdict"] == "OK" and answer["error"] is None and list(answer["models"]) == ["live"]
    assert published[-1]["verdict"] == "OK"
    slot = station.slots.snapshot()[0]
    assert slot.active.name == "live" and slot.previous.name == "strict" and not slot.switched
    actions = [(actor, action, detail) for actor, action, detail in _audit(station.store)
               if action.startswith("model_")]
    assert actions[-1][0] == "station" and actions[-1][1] == "model_auto_rollback"
    assert "post-processing broke" in actions[-1][2]["reason"] and actions[-1][2]["to"]["name"] == "live"
    notices = station.status()["model_notices"]
    assert len(notices) == 1 and "rolled back to live" in notices[0]["message"]
    assert verify(station.store).ok
    # the model brought back is not rolled back on its own failure: that part is ERROR, never a false OK
    station.slots.snapshot()[0].active.inferencer.family = _BrokenPostprocessing(slot.active.inferencer.family)
    assert line.inspect_part("P10", None, "grey.png", origin="test")["verdict"] == "ERROR"
    assert station.slots.snapshot()[0].active.name == "live"


def test_a_failing_shadow_changes_nothing(station):
    line, _ = _line(station)
    station.slots.shadow(0, "strict", actor="erin")
    shadow = station.slots.snapshot()[0].shadow
    shadow.inferencer.family = _BrokenPostprocessing(shadow.inferencer.family)
    answer = line.inspect_part("P1", None, "grey.png", origin="test")
    assert answer["verdict"] == "OK" and answer["error"] is None
    results = json.loads(station.store.inspection(answer["inspection_id"])["results"])
    assert results[1]["role"] == "shadow" and results[1]["status"] == "error"

    def no_request(*args):
        raise RuntimeError("no infer request")

    shadow.start = no_request  # a shadow that cannot even start: the part is judged all the same
    answer = line.inspect_part("P2", None, "grey.png", origin="test")
    assert answer["verdict"] == "OK" and answer["error"] is None
    results = json.loads(station.store.inspection(answer["inspection_id"])["results"])
    assert results[1]["status"] == "error" and "no infer request" in results[1]["error"]


def test_inspections_in_flight_keep_one_snapshot_while_an_engineer_switches(station):
    line, _ = _line(station)
    station.slots.shadow(0, "strict", actor="erin")
    verdicts, failures = [], []

    def inspect_many():
        try:
            for number in range(15):
                verdicts.append(line.inspect_part(f"T{number}", None, "grey.png", origin="test"))
        except Exception as error:  # noqa: BLE001  (reported below)
            failures.append(error)

    worker = threading.Thread(target=inspect_many)
    worker.start()
    for _ in range(3):
        station.slots.activate(0, "strict", actor="erin")  # a bundle named: loaded as the shadow, then activated
        station.slots.rollback(0, actor="erin")
    worker.join()
    assert not failures
    for answer in verdicts:  # each record: one active model and its verdict, whichever it was
        results = json.loads(station.store.inspection(answer["inspection_id"])["results"])
        active = [r for r in results if r.get("role", "active") == "active"]
        assert len(active) == 1 and active[0]["model_verdict"] == answer["verdict"]
    assert verify(station.store).ok


def test_the_comparison_report_counts_agreement_differences_and_false_rejects(station):
    line, _ = _line(station)
    line.inspect_part("P0", None, "grey.png", origin="test")  # no shadow: not in the report
    station.slots.shadow(0, "strict", actor="erin")
    ids = [line.inspect_part(f"P{n}", None, "grey.png", origin="test")["inspection_id"] for n in (1, 2, 3)]
    station.store.add_decision(ids[0], decision="accept", operator="olaf", system_grade="ok", final_grade="ok",
                               thresholds={}, comment="")
    report = station.comparison(0)
    assert report["shadow"] == "strict" and report["count"] == 3 and report["agreement"] == 0.0
    assert [d["inspection_id"] for d in report["differ"]] == ids[::-1]
    first = report["differ"][-1]
    assert first["part_id"] == "P1" and first["view"] == f"/api/part/{ids[0]}"
    assert first["active"]["verdict"] == "OK" and first["shadow"]["verdict"] == "NG"
    assert first["operator_grade"] == "ok"
    assert report["operator_good"] == 1
    assert report["false_reject"]["active"] == 0.0 and report["false_reject"]["shadow"] == 1.0
    held_out = {side: report["models"][side][0]["held_out_false_reject"] for side in ("active", "shadow")}
    assert held_out["active"]["rate"] == 0.0 and held_out["shadow"]["source"] == "predictions.csv"


def test_deciding_and_the_part_view_read_the_active_results_only(station):
    line, _ = _line(station)
    station.slots.shadow(0, "strict", actor="erin")
    answer = line.inspect_part("P1", None, "grey.png", origin="test")
    assert answer["model_version"] == f"live {station.models[0].version}"  # what OPC UA's ModelVersion shows
    token = station.part_view(answer["inspection_id"])["token"]
    station.cache = type(station.cache)(0)  # fallen out of memory: the decision reads the record's thresholds
    decided = station.decide(answer["inspection_id"], "accept", operator="olaf", token=token,
                             shown_thresholds={"live": 0.5})  # the shadow's 0.3 is not the station's
    assert decided["decision"] == "accept" and json.loads(decided["thresholds"]) == {"live": 0.5}

    shadow = station.slots.snapshot()[0].shadow
    shadow.inferencer.family = _BrokenPostprocessing(shadow.inferencer.family)  # an error the view must not show
    view = station.part_view(line.inspect_part("P2", None, "grey.png", origin="test")["inspection_id"])
    assert view["verdict"] == "OK" and view["error"] is None and view["image_caption"].startswith("live")


def test_the_models_compare_command_prints_the_report(station, capsys, tmp_path):
    from defect_plugins.station.cli import main

    line, _ = _line(station)
    station.slots.shadow(0, "strict", actor="erin")
    line.inspect_part("P1", None, "grey.png", origin="test")
    assert main(["models", "compare", "--db", str(station.store.path), "--slot", "0",
                 "--bundles", str(station.slots.shelf.folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 1 and report["shadow"] == "strict" and report["agreement"] == 0.0
    assert report["models"]["shadow"][0]["held_out_false_reject"]["rate"] == 0.0
    assert report["models"]["active"][0]["held_out_false_reject"] is None  # live is not in --bundles
    assert main(["models", "compare", "--db", str(tmp_path / "none.sqlite"), "--slot", "0"]) == 2
