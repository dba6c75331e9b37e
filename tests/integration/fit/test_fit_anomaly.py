"""``defect fit anomaly`` end to end on a tiny synthetic set in the "folders" layout, non-square images.

One fit (AKF-RD, random teacher, 2 epochs at 32 px, about 40 s on two CPU cores) is shared by the
checks: the bundle loads and verifies, the terminal shows one line per step (the toolkits' output is in
the log file), the threshold keeps the calibration false-reject rate at the target, the card's figures
are reproduced exactly by re-scoring the held-out files, and ``DefectInferencer`` on the bundle decides
as the card says. Too few good images stop the command before any training, with the count needed.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow
STATION_ARGS = ("--no-login",)  # the round is about the bundle; logins have their own tests


def _folders_layout(root: Path) -> Path:
    """Synthetic steel in the MVTec layout -> good/, <type>/, masks/<type>/ (same stems), cropped to 48 x 36."""
    from defect_plugins.data import make_anomaly_dataset

    mvtec = root / "mvtec"
    make_anomaly_dataset(mvtec, num_train=16, num_test_good=6, num_test_defect=4, image_size=48, seed=0,
                         defect_types=("scratch", "patch"))
    data = root / "parts"
    for number, image in enumerate(sorted((mvtec / "train" / "good").glob("*.png"))
                                   + sorted((mvtec / "test" / "good").glob("*.png"))):
        (data / "good").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / "good" / f"part{number:03d}.png"), cv2.imread(str(image))[:36])
    for kind in ("scratch", "patch"):
        for image in sorted((mvtec / "test" / kind).glob("*.png")):
            (data / kind).mkdir(parents=True, exist_ok=True)
            (data / "masks" / kind).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data / kind / image.name), cv2.imread(str(image))[:36])
            mask = cv2.imread(str(mvtec / "ground_truth" / kind / f"{image.stem}_mask.png"), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(data / "masks" / kind / image.name), mask[:36])
    (data / "notes.txt").write_text("not an image: ignored")
    return data


def _fit(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "defect_plugins.cli", "fit", "anomaly", str(data), "--out", str(out),
                           "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--no-pretrained",
                           "--max-false-reject", "0.25", *extra], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fit_anomaly")
    data = _folders_layout(root)
    out = root / "bundle"
    run = _fit(data, out, "--keep-work")  # the auto test below reuses this run's split, images and AKF-RD
    assert run.returncode == 0, run.stdout + run.stderr + (out.with_name("bundle.log").read_text()
                                                          if out.with_name("bundle.log").exists() else "")
    return {"data": data, "out": out, "run": run}


def test_bundle_is_complete_and_verified(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle

    bundle = load_bundle(fitted["out"])
    assert bundle.family == "anomaly"
    assert set(bundle.precisions) <= {"FP32", "INT8"} and "FP32" in bundle.precisions
    card = bundle.card()
    assert card["resize_metadata"] == "pad_square" and card["data"]["layout"] == "folders"
    assert card["split"]["counts"]["train"]["good"] > 0


def test_terminal_is_quiet_and_the_log_keeps_the_rest(fitted) -> None:
    lines = fitted["run"].stdout.strip().splitlines()
    assert all(line.startswith("[fit]") for line in lines), lines
    assert any("estimated training time" in line for line in lines)
    assert len(lines) < 20
    log = fitted["out"].with_name("bundle.log").read_text()
    assert "[fit] bundle" in log and len(log.splitlines()) > len(lines)  # the toolkits' lines went there


def test_threshold_meets_the_target_on_calibration_images(fitted) -> None:
    card = json.loads((fitted["out"] / "card.json").read_text())
    for evidence in card["evidence"].values():
        calibration = evidence["calibration"]["false_reject"]
        assert calibration["k"] <= 0.25 * calibration["n"]
        assert 0.0 <= evidence["test"]["false_reject"]["lower"] <= evidence["test"]["false_reject"]["upper"] <= 1.0


def test_re_scoring_the_held_out_files_gives_the_card_figures(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.fit.anomaly import GOOD, defect_score
    from defect_plugins.fit.evidence import calibrate
    from defect_plugins.fit.scoring import score_files
    from defect_plugins.fit.split import Split

    bundle = load_bundle(fitted["out"])
    split = Split.load(fitted["out"] / "split.json")
    card = bundle.card()
    rows = list(csv.DictReader((fitted["out"] / "predictions.csv").open()))
    scores = score_files(bundle.model_xml("FP32"), fitted["data"], [r["file"] for r in rows], defect_score)
    assert np.allclose(scores.scores, [float(r["score_fp32"]) for r in rows], atol=1e-6)
    again = calibrate(split, scores, GOOD, card["threshold"]["max_false_reject"])
    assert again["threshold"] == card["evidence"]["FP32"]["threshold"]
    assert again["test"] == card["evidence"]["FP32"]["test"]


def test_inferencer_on_the_bundle_decides_as_the_predictions_say(fitted) -> None:
    from defect_plugins.deploy import DefectInferencer
    from defect_plugins.imaging.files import read_bgr

    inferencer = DefectInferencer(fitted["out"], weights="FP32")
    rows = list(csv.DictReader((fitted["out"] / "predictions.csv").open()))
    for row in rows[:6]:
        result = inferencer.predict(read_bgr(fitted["data"] / row["file"]))
        assert result.score == pytest.approx(float(row["score_fp32"]), abs=1e-5)
        assert result.decision == row["decision_fp32"]


def test_bundle_carries_the_drift_reference_of_its_held_out_good_images(fitted) -> None:
    """drift_reference.json: listed and hashed, the good rows' scores of the default model and their image stats."""
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.deploy.drift import DriftWatch, image_stats
    from defect_plugins.imaging.files import read_bgr

    bundle = load_bundle(fitted["out"])
    assert "drift_reference.json" in bundle.files and bundle.drift_file == "drift_reference.json"
    reference = bundle.drift_reference()
    rows = [r for r in csv.DictReader((fitted["out"] / "predictions.csv").open()) if r["label"] == "good"]
    assert reference.source == "drift_reference.json" and reference.count == len(rows) > 0
    assert reference.extra["files"] == [r["file"] for r in rows]
    assert reference.signals == ["score", "brightness", "contrast", "sharpness"]
    assert reference.score["precision"] == bundle.default_precision
    if bundle.default_precision == "FP32":
        assert np.allclose(reference.values["score"], [float(r["score_fp32"]) for r in rows], atol=1e-5)
    stats = image_stats(read_bgr(fitted["data"] / rows[0]["file"]))
    assert reference.values["sharpness"][0] == pytest.approx(stats["sharpness"], rel=1e-5)
    assert DriftWatch(reference).state()["state"] == "collecting"


def test_too_few_good_images_stop_before_training(tmp_path) -> None:
    data = tmp_path / "few"
    for kind, count in (("good", 6), ("dent", 2)):
        (data / kind).mkdir(parents=True)
        for i in range(count):
            cv2.imwrite(str(data / kind / f"{i}.png"), np.full((20, 20, 3), 40 * i, np.uint8))
    run = _fit(data, tmp_path / "b", "--max-false-reject", "0.01")
    assert run.returncode == 2
    assert "needs at least 100 defect-free calibration images" in run.stderr, run.stderr
    assert not (tmp_path / "b").exists()


def test_auto_keeps_the_candidate_with_the_best_calibration_recall(fitted, tmp_path) -> None:
    """AKF-RD comes from the first fit's work folder (a resumed fit trains nothing twice); only PaDiM is fitted."""
    out, work = tmp_path / "auto", fitted["out"].with_name("bundle.work")
    run = _fit(fitted["data"], out, "--model", "auto", "--candidates", "AkfReverseDistillation", "Padim",
               "--no-int8", "--work-dir", str(work))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "AkfReverseDistillation: trained and exported earlier" in run.stdout
    assert "reusing the split" in run.stdout
    card = json.loads((out / "card.json").read_text())
    names = [c["name"] for c in card["candidates"]]
    assert names == ["AkfReverseDistillation", "Padim"]
    recalls = {c["name"]: c["calibration_recall"]["value"] for c in card["candidates"]}
    assert card["model"] == max(names, key=lambda n: recalls[n])  # ties keep the first
    assert "Candidates" in (out / "card.md").read_text() and "chosen" in run.stdout
    assert not work.exists()  # the work folder goes after success


def test_an_unknown_model_name_lists_the_known_ones(tmp_path, fitted) -> None:
    run = _fit(fitted["data"], tmp_path / "x", "--model", "NoSuchModel")
    assert run.returncode == 2 and "Patchcore" in run.stderr and "NoSuchModel" in run.stderr, run.stderr


def test_station_serves_the_bundle_with_its_threshold_and_rules(fitted, tmp_path) -> None:
    """An operator's round on the station: the bundle's threshold and rules, OK parts graded OK, decisions kept."""
    from defect_plugins.deploy import DefectInferencer
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.deploy.grading.rules import load_rules
    from defect_plugins.imaging.files import read_bgr
    from tests.fixtures.station import running_station

    bundle = load_bundle(fitted["out"])
    inferencer = DefectInferencer(fitted["out"])
    grades = list(load_rules(fitted["out"] / "rules.yaml").grades)
    rows = list(csv.DictReader((fitted["out"] / "predictions.csv").open()))
    with running_station([fitted["out"]], tmp_path, *STATION_ARGS) as station:
        status, info = station.request("api/status")
        assert status == 200
        model = info["models"][0]
        assert model["bundle"]["thresholds"] == bundle.thresholds_for(model["weights"])
        assert info["rules"]["source"].endswith("rules.yaml")
        for row in rows[:4] + rows[-4:]:
            path = fitted["data"] / row["file"]
            status, shown = station.upload(path.read_bytes(), path.name)
            assert status == 200, shown
            expected = inferencer.predict(read_bgr(path))
            result = shown["models"][0]
            assert result["decision"] == expected.decision
            assert result["score"] == pytest.approx(expected.score, abs=1e-5)
            if expected.decision == "good":
                assert shown["grade"] == grades[0], shown  # OK means OK: no Otsu regions, the least severe grade
            status, decided = station.request("api/decision", json_body={
                "inspection_id": shown["inspection_id"], "token": shown["token"], "operator": "line operator",
                "decision": "accept"})
            assert status == 200 and decided["operator"] == "line operator", decided
