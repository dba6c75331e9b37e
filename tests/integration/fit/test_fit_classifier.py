"""``defect fit classifier`` end to end on tiny synthetic class folders, with an OK class.

One fit (random-init ResNet18, 2 epochs at 32 px through mmpretrain's Runner) is shared by the checks:
the bundle verifies and names its classes and OK class, the OK threshold keeps the calibration
false-reject rate at the target, the card's per-class figures are reproduced by re-scoring, and
``DefectInferencer`` on the bundle calls a part OK exactly when P(ok) reaches the bundle's threshold.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict:
    import shutil

    from defect_plugins.data import make_classification_dataset

    root = tmp_path_factory.mktemp("fit_classifier")
    data = make_classification_dataset(root / "parts", per_class=8, image_size=32, seed=0)
    # three of the synthetic NEU classes under a user's names, one of them the good parts
    for old, new in (("rolled-in_scale", "good"), ("scratches", "scratch"), ("pitted_surface", "dent")):
        (data / old).rename(data / new)
    for extra in ("crazing", "inclusion", "patches"):
        shutil.rmtree(data / extra)
    out = root / "bundle"
    run = subprocess.run([sys.executable, "-m", "defect_plugins.cli", "fit", "classifier", str(data), "--out",
                          str(out), "--ok-class", "good", "--image-size", "32", "--epochs", "2", "--weights", "none",
                          "--max-false-reject", "0.5", "--batch-size", "8"], capture_output=True, text=True,
                         timeout=900)
    log = out.with_name("bundle.log")
    assert run.returncode == 0, run.stdout + run.stderr + (log.read_text() if log.exists() else "")
    return {"data": data, "out": out, "run": run}


def test_bundle_names_classes_and_ok_class(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle

    bundle = load_bundle(fitted["out"])
    assert bundle.family == "classifier" and bundle.ok_class == "good"
    assert sorted(bundle.labels) == ["dent", "good", "scratch"]
    assert "ok" in bundle.thresholds
    assert all(line.startswith("[fit]") for line in fitted["run"].stdout.strip().splitlines())


def test_ok_threshold_meets_the_target_and_figures_reproduce(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.fit.classifier import class_figures, probabilities, with_ok_scores
    from defect_plugins.fit.scoring import score_files
    from defect_plugins.fit.split import Split

    bundle = load_bundle(fitted["out"])
    card = bundle.card()
    calibration = card["evidence"]["FP32"]["ok"]["calibration"]["false_reject"]
    assert calibration["k"] <= 0.5 * calibration["n"]
    split = Split.load(fitted["out"] / "split.json")
    files = split.files("calibration") + split.files("test")
    scores = with_ok_scores(score_files(bundle.model_xml("FP32"), fitted["data"], files, probabilities), "good")
    assert class_figures(split, scores, "test") == card["evidence"]["FP32"]["test"]


def test_inferencer_calls_ok_by_the_bundle_threshold(fitted) -> None:
    from defect_plugins.deploy import DefectInferencer
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.imaging.files import read_bgr

    bundle = load_bundle(fitted["out"])
    inferencer = DefectInferencer(fitted["out"], weights="FP32")
    threshold = bundle.thresholds_for("FP32")["ok"]
    rows = list(csv.DictReader((fitted["out"] / "predictions.csv").open()))
    for row in rows:
        result = inferencer.predict(read_bgr(Path(fitted["data"]) / row["file"]))
        assert result.probabilities["good"] == pytest.approx(float(row["p_ok_fp32"]), abs=1e-5)
        assert (not result.is_defect) == (result.probabilities["good"] >= threshold)
        assert (row["decision_fp32"] == "good") == (float(row["p_ok_fp32"]) >= threshold)
