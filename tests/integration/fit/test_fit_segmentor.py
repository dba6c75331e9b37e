"""``defect fit segmentor`` end to end on tiny synthetic strips (images + masks, some without any defect).

One fit (a width-8 mmseg U-Net, 2 epochs at 64 px) is shared by the checks: the bundle verifies and names
its classes, the card's test figures are reproduced by evaluating the bundle's IR again, and a mask
value past the named classes is refused before training, naming the mask. ``--model arcd`` runs both
of ARCD's stages through mmseg's Runner into a bundle that the runtime reads like any other.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.slow
CLASSES = ["background", "fold_mark", "edge_crack"]


def _images_and_masks(root: Path) -> Path:
    from defect_plugins.data import make_segmentation_dataset

    raw = make_segmentation_dataset(root / "raw", num_train=12, num_val=6, num_normal=6, image_size=(48, 96), seed=0)
    data = root / "strips"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for split in ("train", "val"):
        for image in sorted((raw / "img_dir" / split).glob("*.png")):
            shutil.copy(image, data / "images" / f"{split}_{image.name}")
            shutil.copy(raw / "ann_dir" / split / image.name, data / "masks" / f"{split}_{image.name}")
    for image in sorted((raw / "normal_dir").glob("*.png")):  # defect-free strips: all-background masks
        shutil.copy(image, data / "images" / f"normal_{image.name}")
        cv2.imwrite(str(data / "masks" / f"normal_{image.name}"), np.zeros(cv2.imread(str(image)).shape[:2], np.uint8))
    (data / "classes.yaml").write_text("".join(f"- {name}\n" for name in CLASSES))
    return data


def _fit(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "defect_plugins.cli", "fit", "segmentor", str(data), "--out", str(out),
                           "--image-size", "64", "--epochs", "2", "--width", "8", *extra], capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fit_segmentor")
    data = _images_and_masks(root)
    out = root / "bundle"
    run = _fit(data, out)
    log = out.with_name("bundle.log")
    assert run.returncode == 0, run.stdout + run.stderr + (log.read_text() if log.exists() else "")
    return {"data": data, "out": out, "run": run}


def test_bundle_names_its_classes_and_reports_rates(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle

    bundle = load_bundle(fitted["out"])
    assert bundle.family == "segmentor" and list(bundle.labels) == CLASSES
    card = bundle.card()
    test = card["evidence"][bundle.default_precision]["test"]
    assert test["false_reject"]["n"] > 0 and test["recall"]["n"] > 0  # good strips were held out too
    assert set(test["iou"]) == set(CLASSES)


def test_re_evaluation_gives_the_card_figures(fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.fit.layouts import find_seg_data
    from defect_plugins.fit.segmentor import evaluate, part_rates
    from defect_plugins.fit.split import Split

    bundle = load_bundle(fitted["out"])
    split = Split.load(fitted["out"] / "split.json")
    again = evaluate(bundle.model_xml("FP32"), find_seg_data(fitted["data"]), split.files("test"), 4)
    test = bundle.card()["evidence"]["FP32"]["test"]
    assert again["iou"] == test["iou"]
    assert part_rates(split, "test", again["decisions"])["false_reject"] == test["false_reject"]


def test_a_mask_value_past_the_classes_is_named(tmp_path) -> None:
    data = _images_and_masks(tmp_path)
    bad = sorted((data / "masks").glob("*.png"))[0]
    mask = cv2.imread(str(bad), cv2.IMREAD_GRAYSCALE)
    mask[0, 0] = 7
    cv2.imwrite(str(bad), mask)
    run = _fit(data, tmp_path / "b")
    assert run.returncode == 2 and bad.name in run.stderr, run.stderr


def test_arcd_trains_both_stages_into_a_bundle(tmp_path, fitted) -> None:
    from defect_plugins.deploy.bundle import load_bundle
    from defect_plugins.deploy.inferencer import DefectInferencer

    out = tmp_path / "arcd"
    run = _fit(fitted["data"], out, "--model", "arcd", "--stage1-epochs", "1", "--epochs", "1", "--no-int8")
    log = out.with_name("arcd.log")
    assert run.returncode == 0, run.stdout + run.stderr + (log.read_text() if log.exists() else "")
    assert "ARCD stage 1" in run.stdout and "ARCD stage 2" in run.stdout
    bundle = load_bundle(out)
    card = bundle.card()
    assert card["model"].startswith("ARCD") and card["training"]["stage1"]["epochs"] == 1
    assert "ARCDSegmentor" in card["training"]["config"] and "ARCDReconstructionModel" in card["training"]["stage1"][
        "config"]
    image = sorted((fitted["data"] / "images").glob("*.png"))[0]
    result = DefectInferencer(out).predict(str(image))
    assert result.ok and result.class_map.shape == cv2.imread(str(image)).shape[:2]


def test_arcd_refuses_a_size_its_networks_cannot_halve(tmp_path, fitted) -> None:
    from defect_plugins.fit.segmentor import SegmentorOptions, fit_segmentor

    with pytest.raises(ValueError, match="divisible by 16"):  # before anything is read or written
        fit_segmentor(fitted["data"], tmp_path / "b", SegmentorOptions(model="arcd", image_size=72))
    assert not (tmp_path / "b").exists()
