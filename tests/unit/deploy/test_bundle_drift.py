"""A bundle's drift reference: written by the fit's last staging step, listed and hashed, loaded by the bundle.

The staging folders are assembled as ``defect-fit`` does (tiny OpenVINO IRs, ``predictions.csv``, then
:func:`defect_plugins.fit.assemble.write_card` and ``write_bundle``); the real fit's bundle is checked in
``tests/integration/fit/test_fit_anomaly.py``.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.bundle import MANIFEST, BundleIntegrityError, load_bundle, staging_dir, write_bundle
from defect_plugins.deploy.drift import DriftReference, DriftWatch, image_stats
from defect_plugins.fit.assemble import write_card
from tests.unit.deploy.test_bundle import CLASSES, SIZE, make_bundle, tiny_anomaly_ir, tiny_classifier_ir

LEVELS = {"good/a.png": 90, "good/b.png": 100, "good/c.png": 110, "scratch/d.png": 200}


def _data(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, level in LEVELS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        image = np.clip(level + rng.normal(0, 8, (40, 60, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / name), image)
    return root


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _fit_like_bundle(out: Path, data: Path, family: str, *, int8: bool = False) -> Path:
    """A staging folder as a family's fit leaves it before write_card, then write_card and write_bundle."""
    stage = staging_dir(out)
    build = tiny_anomaly_ir if family == "anomaly" else tiny_classifier_ir
    build(stage / "model" / "fp32.xml")
    models = {"FP32": "model/fp32.xml"}
    if int8:
        build(stage / "model" / "int8.xml", "INT8")
        models["INT8"] = "model/int8.xml"
    default = "INT8" if int8 else "FP32"
    rows = []
    for name in LEVELS:
        group = name.split("/")[0]
        if family == "anomaly":
            rows.append({"file": name, "part": "test", "group": group, "label": "good" if group == "good" else "defect",
                         "score_fp32": LEVELS[name] / 255 + 0.001, "decision_fp32": "good"})
        else:
            rows.append({"file": name, "part": "test", "group": group, "label": group, "predicted_fp32": group,
                         "confidence_fp32": 0.9, "p_ok_fp32": 0.8, "decision_fp32": "good"})
    (stage / "predictions.csv").write_text(_csv(rows), encoding="utf-8")
    card = {"family": family, "data": {"root": str(data)}, "ok_class": "good" if family == "classifier" else None,
            "threshold": {"default_precision": default}}
    write_card(stage, card, "# card\n")
    thresholds = {"image": 0.5, "pixel": 0.5} if family == "anomaly" else {"ok": 0.5}
    manifest = {"family": family, "models": models, "default_precision": default, "thresholds": thresholds,
                "ok_class": card["ok_class"], "labels": ["good", "defect"] if family == "anomaly" else CLASSES,
                "max_false_reject": 0.01, "rules": None, "card": "card.md", "card_json": "card.json", "split": None,
                "predictions": "predictions.csv", "input_size": list(SIZE), "resize": "stretch"}
    write_bundle(stage, manifest, out)
    return out


def test_the_fit_s_card_step_writes_the_reference_and_the_manifest_lists_it(tmp_path) -> None:
    data = _data(tmp_path / "data")
    out = _fit_like_bundle(tmp_path / "bundle", data, "anomaly")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["drift_reference"] == "drift_reference.json" and "drift_reference.json" in manifest["files"]
    bundle = load_bundle(out)
    reference = bundle.drift_reference()
    assert reference is not None and reference.source == "drift_reference.json"
    assert reference.signals == ["score", "brightness", "contrast", "sharpness"] and reference.count == 3
    assert reference.extra["files"] == ["good/a.png", "good/b.png", "good/c.png"]  # good images only
    assert reference.score["precision"] == "FP32" and reference.score["from"] == "predictions.csv column score_fp32"
    assert np.allclose(reference.values["score"], [90 / 255 + 0.001, 100 / 255 + 0.001, 110 / 255 + 0.001], atol=1e-6)
    expected = image_stats(cv2.imread(str(data / "good/b.png")))
    assert reference.values["brightness"][1] == pytest.approx(expected["brightness"], rel=1e-5)
    assert DriftWatch(reference).signals == ["score", "brightness", "contrast", "sharpness"]


def test_an_int8_default_model_is_run_for_its_own_scores(tmp_path) -> None:
    out = _fit_like_bundle(tmp_path / "bundle", _data(tmp_path / "data"), "anomaly", int8=True)
    reference = load_bundle(out).drift_reference()
    assert reference.score["precision"] == "INT8" and reference.score["from"].startswith("model/int8.xml")
    # the tiny model's score is the mean grey level / 255 of its 16 x 16 input
    assert np.allclose(reference.values["score"], np.array([90, 100, 110]) / 255, atol=0.01)


def test_a_classifier_s_reference_is_its_ok_class_and_p_ok(tmp_path) -> None:
    out = _fit_like_bundle(tmp_path / "bundle", _data(tmp_path / "data"), "classifier")
    reference = load_bundle(out).drift_reference()
    assert reference.score["name"] == "p_ok" and reference.values["score"].tolist() == [0.8, 0.8, 0.8]
    assert reference.count == 3


def test_a_changed_reference_is_refused_like_any_file(tmp_path) -> None:
    out = _fit_like_bundle(tmp_path / "bundle", _data(tmp_path / "data"), "anomaly")
    path = out / "drift_reference.json"
    path.write_text(path.read_text().replace('"count": 3', '"count": 4'))
    with pytest.raises(BundleIntegrityError, match="drift_reference.json"):
        load_bundle(out)


def test_an_older_bundle_falls_back_to_the_good_rows_of_predictions(tmp_path) -> None:
    bundle = make_bundle(tmp_path / "old")  # no drift_reference.json: a bundle from before the drift watch
    assert "drift_reference.json" not in bundle.files and bundle.drift_file is None
    reference = load_bundle(tmp_path / "old").drift_reference()
    assert reference.source == "predictions.csv (scores only)" and reference.signals == ["score"]
    assert reference.values["score"].tolist() == [0.1] and reference.score["column"] == "score"
    watch = DriftWatch(reference)
    assert watch.state()["reference"] == "predictions.csv (scores only)" and watch.signals == ["score"]


def test_a_classifier_without_an_ok_class_and_no_reference_has_none(tmp_path) -> None:
    bundle = make_bundle(tmp_path / "cls", "classifier", thresholds={}, ok_class=None)
    assert bundle.drift_reference() is None


def test_a_classifier_s_int8_default_model_is_run_for_p_ok(tmp_path) -> None:
    out = _fit_like_bundle(tmp_path / "bundle", _data(tmp_path / "data"), "classifier", int8=True)
    reference = load_bundle(out).drift_reference()
    assert reference.score["precision"] == "INT8" and reference.score["from"].startswith("model/int8.xml")
    from defect_plugins.fit.classifier import probabilities
    from defect_plugins.fit.scoring import score_files

    scored = score_files(out / "model" / "int8.xml", tmp_path / "data", ["good/a.png", "good/b.png", "good/c.png"],
                         probabilities)
    assert np.allclose(reference.values["score"], scored.probabilities[:, CLASSES.index("good")], atol=1e-6)


def test_a_segmentor_s_reference_is_every_held_out_image_without_a_score(tmp_path) -> None:
    from defect_plugins.fit.drift_reference import write_drift_reference

    data = _data(tmp_path / "data")
    folder = tmp_path / "stage"
    folder.mkdir()
    rows = [{"file": name, "part": "test", "group": name.split("/")[0], "decision_fp32": "good"} for name in LEVELS]
    (folder / "predictions.csv").write_text(_csv(rows), encoding="utf-8")
    card = {"family": "segmentor", "data": {"root": str(data)}, "threshold": {"default_precision": "FP32"}}
    reference = DriftReference.load(write_drift_reference(folder, card))
    assert reference.signals == ["brightness", "contrast", "sharpness"] and reference.count == 4
    assert reference.score == {} and "every held-out image" in reference.extra["images"]
    assert write_drift_reference(tmp_path / "elsewhere", card) is None  # not a fit's staging folder
