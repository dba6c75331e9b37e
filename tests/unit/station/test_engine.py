"""The station without the web: memory of recent results, decisions after they left it, ``--check``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from defect_plugins.deploy.grading import RuleError, load_rules
from defect_plugins.station.engine import Station, StationError
from defect_plugins.station.store import Store
from tests.conftest import REPO_ROOT
from tests.fixtures.station import png_bytes, steel_image


def test_memory_is_bounded_and_decisions_fall_back_to_the_record(station_irs, tmp_path):
    store = Store(tmp_path / "station.sqlite")
    station = Station([station_irs["anomaly"]], load_rules(), store, cache_mb=0.001)  # room for one inspection
    first = station.inspect(png_bytes(steel_image(1)), "a.png")
    second = station.inspect(png_bytes(steel_image(2)), "b.png")
    assert len(station.cache) == 1 and station.cache.get(second["inspection_id"]) is not None
    with pytest.raises(StationError, match="no longer in the station's memory") as error:
        station.rethreshold(first["inspection_id"], 0, 0.2, token=first["token"])
    assert error.value.status == 404
    moved = station.rethreshold(second["inspection_id"], 0, 0.0, token=second["token"])
    assert moved["model"]["decision"] == "defect" and moved["model"]["threshold_default"] == pytest.approx(0.5)
    with pytest.raises(StationError, match="not shown to this client") as error:  # the record keeps the token's hash
        station.decide(first["inspection_id"], "accept", operator="Ana", token=second["token"])
    assert error.value.status == 403
    old = station.decide(first["inspection_id"], "regrade", operator="Ana", token=first["token"], grade="minor",
                         comment="seen on the strip")
    assert old["system_grade"] == first["grade"] and old["final_grade"] == "minor" and old["operator"] == "Ana"
    assert json.loads(old["thresholds"]) == {"akf": pytest.approx(0.5)}  # what was in force when it was stored
    new = station.decide(second["inspection_id"], "accept", operator="Ben", token=second["token"],
                         shown_thresholds={"akf": 0.0})
    assert json.loads(new["thresholds"]) == {"akf": 0.0} and new["final_grade"] == moved["grade"]
    with pytest.raises(StationError, match="only a regrade takes a grade"):
        station.decide(second["inspection_id"], "accept", operator="Ben", token=second["token"], grade="ok")
    with pytest.raises(StationError, match="inspect the image again") as error:  # the page showed another threshold
        station.decide(first["inspection_id"], "accept", operator="Ana", token=first["token"],
                       shown_thresholds={"akf": 0.3})
    assert error.value.status == 409
    store.close()


def test_a_model_failing_on_an_image_gives_the_most_severe_grade(station_irs, tmp_path, monkeypatch):
    """Nothing passes unseen: the inferencer's error result is shown, graded as the worst grade, and stored."""
    from defect_plugins.deploy.families import segmentor

    store = Store(tmp_path / "station.sqlite")
    station = Station([station_irs["segmentor"], station_irs["anomaly"]], load_rules(), store)

    def broken(*args, **kwargs):
        raise MemoryError("out of memory in post-processing")

    monkeypatch.setattr(segmentor, "postprocess", broken)
    payload = station.inspect(png_bytes(steel_image(4)), "c.png")
    failed = payload["models"][0]
    assert failed["status"] == "error" and "out of memory" in failed["error"] and failed["grade"] == "reject"
    assert payload["grade"] == "reject" and payload["models"][1]["status"] == "ok"
    stored = json.loads(store.inspection(payload["inspection_id"])["results"])
    assert stored[0]["status"] == "error" and stored[0]["grade"] == "reject"
    store.close()


def test_a_rule_file_naming_a_class_no_model_has_is_refused(station_irs, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("grades: [ok, bad]\nfamilies:\n  classifier:\n    classes:\n      crazng:\n"
                     "        - {grade: bad, when: {regions: {min: 1}}}\n")
    with pytest.raises(RuleError, match=r"families\.classifier\.classes\.crazng: no loaded classifier"):
        Station([station_irs["classifier"]], load_rules(rules), Store(tmp_path / "s.sqlite"))


def test_check_command_exercises_the_install(station_irs, tmp_path):
    models = [str(station_irs[family]) for family in ("classifier", "segmentor", "anomaly")]
    command = [sys.executable, "-m", "defect_plugins.station", "--check"]
    for model in models:
        command += ["--model", model]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "defect-station --check: all passed" in proc.stdout
    assert "ok   no training stack imported" in proc.stdout and "threshold slider" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # its database was temporary


def test_result_cache_keeps_a_running_total_and_evicts_the_oldest():
    import numpy as np

    from defect_plugins.station.memory import Inspection, ResultCache

    def kept(number: int) -> Inspection:
        return Inspection(number, f"upload:{number}.png", np.zeros((10, 100), np.uint8), None, [], "hash")

    cache = ResultCache(3000)  # room for three 1000-byte images
    for number in (1, 2, 3):
        cache.put(kept(number))
    cache.put(kept(3))  # the same inspection again is not counted twice
    assert len(cache) == 3 and cache.get(1) is not None
    cache.put(kept(4))
    assert len(cache) == 3 and cache.get(1) is None and cache.get(4) is not None
    big = Inspection(5, "upload:big.png", np.zeros((100, 100), np.uint8), None, [], "hash")
    cache.put(big)  # larger than the budget: the newest always stays, alone
    assert len(cache) == 1 and cache.get(5) is big
