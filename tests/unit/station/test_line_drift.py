"""The drift watch on a station's line: quiet on parts like the bundle's reference, tripped by a shifted camera,
each change published (outbox, ``PREFIX/drift``), audited (``drift_changed``) and on the pages' state.

The bundle is the tiny anomaly IR of the deploy tests (its score: the image's mean grey / 255) with a reference
of 300 generated parts: their image statistics and the model's own scores on them, as ``defect-fit`` writes it.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.drift import DriftReference, image_stats
from defect_plugins.deploy.grading import load_rules
from defect_plugins.deploy.inferencer import DefectInferencer
from defect_plugins.station.audit import entries, verify
from defect_plugins.station.engine import Station
from defect_plugins.station.line.links import mqtt_messages
from defect_plugins.station.line.opcua import verdict_from_result
from defect_plugins.station.line.parts import ImageRoots, PartInspector
from defect_plugins.station.store import Store
from tests.unit.deploy.test_bundle import make_bundle, tiny_anomaly_ir


def part(seed: int, *, brighter: int = 0, blur: float = 0.0) -> np.ndarray:
    """A textured grey part, the same generator for the reference and the line (another seed)."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.normal(0, 30, (96, 96)).astype(np.float32), (0, 0), 1.5)
    image = np.clip(100 + brighter + rng.normal(0, 4) + texture, 0, 255).astype(np.uint8)
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def drift_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift_bundle")
    model = DefectInferencer(tiny_anomaly_ir(folder / "probe.xml"))
    images = [part(seed) for seed in range(300)]
    stats = [image_stats(image) for image in images]
    values = {name: np.array([s[name] for s in stats]) for name in ("brightness", "contrast", "sharpness")}
    values["score"] = np.array([model.predict(image).score for image in images])
    reference = DriftReference(values, score={"name": "pred_score", "precision": "FP32"}, count=300)
    return make_bundle(folder / "bundle", files={"drift_reference.json": json.dumps(reference.to_dict())}).root


@pytest.fixture
def line(drift_bundle, tmp_path):
    images = tmp_path / "camera"
    images.mkdir()
    config = tmp_path / "drift.json"
    config.write_text(json.dumps({"drift": {"window": 100, "min_count": 50}}), encoding="utf-8")
    store = Store(tmp_path / "station.sqlite", line="L1", station="st-1")
    station = Station([drift_bundle], load_rules(), store, drift_config=config)
    told: list[dict] = []
    inspector = PartInspector(station, ImageRoots([images]),
                              messages=mqtt_messages("p/verdict", "p/drift", line="L1", station="st-1"))
    inspector.add_listener(told.append)
    yield {"images": images, "store": store, "station": station, "inspector": inspector, "told": told}
    store.close()


def feed(line, seeds, **shift) -> list[dict]:
    verdicts = []
    for seed in seeds:
        cv2.imwrite(str(line["images"] / f"{seed}.png"), part(seed, **shift))
        verdicts.append(line["inspector"].inspect_part(f"P{seed}", "LOT", f"{seed}.png", origin="mqtt"))
    return verdicts


def drift_messages(store: Store) -> list[dict]:
    return [json.loads(row["payload"]) for row in store.outbox_pending("mqtt", limit=10_000)
            if row["topic"] == "p/drift"]


def test_parts_like_the_reference_stay_quiet_and_a_brighter_camera_trips_it(line):
    verdicts = feed(line, range(1000, 1120))  # the same generator, other seeds
    assert [v["drift"] for v in verdicts[:49]] == ["collecting"] * 49 and verdicts[-1]["drift"] == "ok"
    changes = [change for v in verdicts for change in v["drift_changes"]]
    assert [c["state"] for c in changes] == ["ok"]  # once, when enough parts were seen; no alarm
    state = line["station"].drift.state()
    assert state["state"] == "ok" and state["models"]["bundle"]["reference"] == "drift_reference.json"
    verdicts = feed(line, range(2000, 2100), brighter=40)
    assert verdicts[-1]["drift"] == "drift"
    tripped = [c for v in verdicts for c in v["drift_changes"] if c["state"] == "drift"]
    assert tripped and {"brightness", "score"} <= set(tripped[-1]["tripped"])
    # published from the outbox with the part that changed it, audited, on the pages and OPC UA
    messages = drift_messages(line["store"])
    assert [m["state"] for m in messages][0] == "ok" and messages[-1]["state"] == "drift"
    assert messages[-1]["line"] == "L1" and messages[-1]["station"] == "st-1" and messages[-1]["model"] == "bundle"
    audited = [e for e in entries(line["store"]) if e["action"] == "drift_changed"]
    assert [e["detail"]["state"] for e in reversed(audited)] == [m["state"] for m in messages]  # newest first
    assert verify(line["store"]).ok
    assert line["station"].status()["drift"]["state"] == "drift"
    assert verdict_from_result(verdicts[-1])["drift"] == "drift"


def test_a_blurred_camera_trips_the_sharpness(line):
    feed(line, range(3000, 3060))
    verdicts = feed(line, range(4000, 4100), blur=3.0)
    assert verdicts[-1]["drift"] == "drift"
    assert "sharpness" in line["station"].drift.state()["models"]["bundle"]["tripped"]


def test_a_bare_ir_is_not_watched_and_says_why(station_irs, tmp_path):
    store = Store(tmp_path / "station.sqlite")
    station = Station([station_irs["anomaly"]], load_rules(), store)
    state = station.drift.state()
    assert state["state"] == "" and state["models"][station.models[0].name]["state"] == "not watched"
    assert "bare IR" in state["models"][station.models[0].name]["reason"]
    store.close()
