"""The one metric path (deploy/export/evaluation.py and each family's ``measure``): fixed figures, the toolkits' code.

Each family reads its labelled layout once and computes the INT8 guard's criterion and the held-out
figures (the demo's) from one prediction per image. When this replaced ``deploy/scoring.py`` and
``deploy/int8.evaluate``, both old paths and the new one were run on the tiny fixtures (classifier,
segmentor without and with a machine-bed head, pad_square, anomaly, limits, splits, and the INT8
guard's whole report) and agreed bit for bit; the old code is gone, so here the figures are checked
against values computed by hand on folders built for the purpose, and against the toolkits'
metric code on the tiny models.
"""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from defect_plugins.deploy.export import export_model
from defect_plugins.deploy.export.evaluation import evaluate, evaluate_ir
from defect_plugins.deploy.export.families import segmentor
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.runtime import openvino_predict

# --------------------------------------------------------------------------- fixed figures on folders built here


def _write(path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _grey(value: int, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_classifier_figures_are_the_hand_counted_ones(tmp_path):
    """Predicted class = pixel value // 80: c0 -> 0, 0, 1; c1 -> 1, 1, 1; c2 -> 2, 2, 0 (7 of 9 right)."""
    values = {"c0": (10, 20, 90), "c1": (100, 110, 120), "c2": (170, 180, 30)}
    for name, row in values.items():
        for index, value in enumerate(row):
            _write(tmp_path / name / f"{index}.png", _grey(value))

    def predict(batch):
        probs = np.full((1, 3), 0.1, np.float32)
        probs[0, int(batch[0, 0, 0, 0]) // 80] = 0.8
        return [probs]

    metadata = ModelMetadata(family="classifier", precision="FP32", input_size=(16, 16), class_names=list(values),
                             outputs=["probs"])
    result = evaluate(predict, metadata, tmp_path)
    assert (result.name, result.num_images, result.skipped) == ("accuracy", 9, 0)
    assert result.figures == {"top1": 7 / 9, "images": 9, "recall": {"c0": 2 / 3, "c1": 1.0, "c2": 2 / 3},
                              "confusion": [[2, 1, 0], [0, 3, 0], [1, 0, 2]]}
    # the guard's criterion is mmpretrain's Accuracy (float32 inside): the same fraction within 1e-7
    assert result.value == pytest.approx(7 / 9, abs=1e-7)
    assert evaluate(predict, metadata, tmp_path, figures=False).figures == {}
    assert evaluate(predict, metadata, tmp_path, limit=4).num_images == 4
    (tmp_path / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert evaluate(predict, metadata, tmp_path).skipped == 1


def _strip_labels() -> tuple[np.ndarray, np.ndarray]:
    """16 x 16: class 1 in rows 0-3, class 2 in rows 12-15, background between; the bed in columns 0-7."""
    label = np.zeros((16, 16), np.uint8)
    label[:4], label[12:] = 1, 2
    bed = np.zeros((16, 16), np.uint8)
    bed[:, :8] = 1
    return label, bed


def test_segmentor_figures_are_the_hand_counted_ones(tmp_path):
    """The prediction misses rows 0-1 of class 1, calls rows 10-11 class 2, and the bed columns 0-11."""
    label, bed = _strip_labels()
    for split in ("val", "train"):
        _write(tmp_path / "img_dir" / split / "a.png", np.repeat(label[..., None] * 100, 3, axis=2))
        _write(tmp_path / "ann_dir" / split / "a.png", label)
        _write(tmp_path / "region_dir" / split / "a.png", bed)

    def predict(batch):
        classes = (batch[0, ..., 0] // 100).astype(np.int64)
        classes[:2][classes[:2] == 1] = 0
        classes[10:12] = 2
        region = np.zeros((16, 16), np.int64)
        region[:, :12] = 1
        return [np.eye(3, dtype=np.float32)[classes].transpose(2, 0, 1)[None],
                np.eye(2, dtype=np.float32)[region].transpose(2, 0, 1)[None]]

    metadata = ModelMetadata(family="segmentor", precision="FP32", input_size=(16, 16),
                             class_names=["background", "a", "b"], outputs=["seg_probs", "region_probs"],
                             region_classes=["outside", "machine_bed"])
    result = evaluate(predict, metadata, tmp_path, split="val")
    # background 96 / 160, a 32 / 64, b 64 / 96 (intersection / union), bed 128 / 192
    assert result.figures == {"iou": {"background": 0.6, "a": 0.5, "b": 2 / 3}, "defect_miou": (0.5 + 2 / 3) / 2,
                              "images": 1, "split": "val", "resolution": [16, 16], "bed_iou": 2 / 3}
    assert result.name == "mIoU" and result.value == pytest.approx((0.6 + 0.5 + 2 / 3) / 3, abs=1e-6)
    assert evaluate(predict, metadata, tmp_path).num_images == 2  # no split: the whole img_dir
    with pytest.raises(FileNotFoundError, match="img_dir/test"):
        evaluate(predict, metadata, tmp_path, split="test")


def test_anomaly_figures_are_the_hand_counted_ones(tmp_path):
    """Score = mean grey / 255, map = grey / 255; defects are a 4 x 4 block of 250 on a darker strip."""
    _write(tmp_path / "test" / "good" / "0.png", _grey(10))
    _write(tmp_path / "test" / "good" / "1.png", _grey(60))
    for index, background in enumerate((20, 100)):
        image, mask = _grey(background), np.zeros((16, 16), np.uint8)
        image[:4, :4], mask[:4, :4] = 250, 255
        _write(tmp_path / "test" / "scratch" / f"{index}.png", image)
        _write(tmp_path / "ground_truth" / "scratch" / f"{index}_mask.png", mask)

    def predict(batch):
        grey = batch[0, ..., 0].astype(np.float32) / 255.0
        return [np.array([grey.mean()], np.float32), grey[None, None]]

    metadata = ModelMetadata(family="anomaly", precision="FP32", input_size=(16, 16), class_names=["good", "defect"],
                             outputs=["pred_score", "anomaly_map"], thresholds={"image": 0.5, "pixel": 0.5})
    result = evaluate(predict, metadata, tmp_path)
    # means 10, 60 (good) and 34.4, 109.4 (defect): 3 of the 4 pairs in order; every block pixel above the rest
    assert result.figures == {"image_auroc": 0.75, "pixel_auroc": 1.0, "images": 4, "good_images": 2,
                              "defect_images": 2, "good_called_defect": 0, "defect_called_good": 2,
                              "resolution": [16, 16]}
    assert (result.name, result.value) == ("image_auroc", 0.75)
    shutil.rmtree(tmp_path / "ground_truth")  # the guard's folders need no masks: no pixel AUROC then
    assert "pixel_auroc" not in evaluate(predict, metadata, tmp_path).figures


# --------------------------------------------------------------------------- the toolkits' metric code, tiny models


def test_iou_counts_are_mmseg_intersect_and_union():
    from mmseg.evaluation import IoUMetric

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, size=(17, 23))
    label = rng.integers(0, 3, size=(17, 23))
    label[:3] = 255  # ignored (padding)
    ours = segmentor._inter_union(segmentor._areas(pred, label, 3))
    inter, union, _, _ = IoUMetric.intersect_and_union(torch.as_tensor(pred), torch.as_tensor(label), 3, 255)
    np.testing.assert_array_equal(ours[0], inter.numpy())
    np.testing.assert_array_equal(ours[1], union.numpy())
    assert ours.dtype == np.int64


def test_segmentor_figures_agree_with_the_guard_metric(tiny_segmentor, tmp_path):
    xml, metadata = export_model("segmentor", tmp_path / "seg.xml", config=tiny_segmentor.config,
                                 checkpoint=tiny_segmentor.checkpoint, input_size=(32, 32))
    result = evaluate_ir(xml, tiny_segmentor.data, split="val")
    scores = result.figures
    assert scores["images"] == result.num_images == 2 and scores["precision"] == "f32"
    assert set(scores["iou"]) == set(metadata.class_names)
    present = [value for value in scores["iou"].values() if value is not None]
    assert result.value == pytest.approx(np.mean(present))  # mmseg's mIoU over the classes present
    defect = [value for name, value in scores["iou"].items() if name != "background" and value is not None]
    assert scores["defect_miou"] == pytest.approx(np.mean(defect) if defect else 0.0)


def test_classifier_top1_equals_mmpretrain_accuracy(tiny_classifier, tmp_path):
    xml, _ = export_model("classifier", tmp_path / "cls.xml", config=tiny_classifier.config,
                          checkpoint=tiny_classifier.checkpoint, input_size=(32, 32))
    result = evaluate_ir(xml, tiny_classifier.data)
    assert result.figures["top1"] == pytest.approx(result.value)
    assert result.figures["images"] == result.num_images == 12
    assert np.asarray(result.figures["confusion"]).sum() == 12


def test_anomaly_image_and_pixel_auroc(anomaly_export, tiny_anomaly):
    _, xml, metadata = anomaly_export
    result = evaluate_ir(xml, tiny_anomaly.data)
    assert result.figures["image_auroc"] == result.value
    assert 0.0 <= result.figures["pixel_auroc"] <= 1.0
    assert (result.figures["good_images"], result.figures["defect_images"]) == (2, 2)
    # the guard reads the folder without figures: the same criterion
    assert evaluate(openvino_predict(xml), metadata, tiny_anomaly.data, figures=False).value == result.value


def test_anomaly_figures_name_a_missing_mask(anomaly_export, tiny_anomaly, tmp_path):
    _, xml, _ = anomaly_export
    copy = tmp_path / "steel"
    shutil.copytree(tiny_anomaly.data, copy)
    mask = next((copy / "ground_truth").rglob("*_mask.png"))
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=mask.name):
        evaluate_ir(xml, copy)
