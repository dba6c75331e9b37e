"""Held-out figures of IRs (defect_plugins.deploy.scoring) agree with the toolkits' own metric code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from defect_plugins.deploy import scoring
from defect_plugins.deploy.export import export_model
from defect_plugins.deploy.int8 import evaluate, openvino_predict


def test_iou_matches_mmseg_intersect_and_union():
    from mmseg.evaluation import IoUMetric

    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, size=(17, 23))
    label = rng.integers(0, 3, size=(17, 23))
    label[:3] = 255  # ignored (padding)
    ours = scoring._iou(pred, label, 3)
    inter, union, _, _ = IoUMetric.intersect_and_union(torch.as_tensor(pred), torch.as_tensor(label), 3, 255)
    np.testing.assert_array_equal(ours[0], inter.numpy())
    np.testing.assert_array_equal(ours[1], union.numpy())


def test_iou_of_a_perfect_prediction_is_one_for_present_classes():
    label = np.zeros((8, 8), np.int64)
    label[2:4, 2:6] = 2
    inter, union = scoring._iou(label.copy(), label, 3)
    assert inter[2] == union[2] == 8 and inter[0] == union[0] == 56
    assert union[1] == 0  # absent class: no IoU, reported as None by score_segmentor


def test_segmentor_scores_agree_with_the_int8_guard_metric(tiny_segmentor, tmp_path):
    xml, metadata = export_model("segmentor", tmp_path / "seg.xml", config=tiny_segmentor.config,
                                 checkpoint=tiny_segmentor.checkpoint, input_size=(32, 32))
    scores = scoring.score_segmentor(xml, tiny_segmentor.data, split="val")
    assert scores["images"] == 2 and scores["precision"] == "f32"
    assert set(scores["iou"]) == set(metadata.class_names)
    # the guard's mIoU (mmseg's IoUMetric over every class present) on the same images and IR
    import shutil

    val_only = tmp_path / "val_only"
    for top in ("img_dir", "ann_dir"):
        shutil.copytree(tiny_segmentor.data / top / "val", val_only / top / "val")
    guard = evaluate(openvino_predict(xml), metadata, val_only)
    present = [value for value in scores["iou"].values() if value is not None]
    assert guard.value == pytest.approx(np.mean(present))
    defect = [value for name, value in scores["iou"].items() if name != "background" and value is not None]
    assert scores["defect_miou"] == pytest.approx(np.mean(defect) if defect else 0.0)


def test_classifier_top1_equals_mmpretrain_accuracy(tiny_classifier, tmp_path):
    xml, metadata = export_model("classifier", tmp_path / "cls.xml", config=tiny_classifier.config,
                                 checkpoint=tiny_classifier.checkpoint, input_size=(32, 32))
    scores = scoring.score_classifier(xml, tiny_classifier.data)
    guard = evaluate(openvino_predict(xml), metadata, tiny_classifier.data)
    assert scores["top1"] == pytest.approx(guard.value)
    assert scores["images"] == guard.num_images == 12
    assert np.asarray(scores["confusion"]).sum() == 12


def test_anomaly_scores_image_and_pixel_auroc(anomaly_export, tiny_anomaly):
    _, xml, metadata = anomaly_export
    scores = scoring.score_anomaly(xml, tiny_anomaly.data)
    guard = evaluate(openvino_predict(xml), metadata, tiny_anomaly.data)
    assert scores["image_auroc"] == pytest.approx(guard.value)
    assert 0.0 <= scores["pixel_auroc"] <= 1.0
    assert (scores["good_images"], scores["defect_images"]) == (2, 2)


def test_anomaly_scores_name_a_missing_mask(anomaly_export, tiny_anomaly, tmp_path):
    import shutil

    _, xml, _ = anomaly_export
    copy = tmp_path / "steel"
    shutil.copytree(tiny_anomaly.data, copy)
    mask = next((copy / "ground_truth").rglob("*_mask.png"))
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=mask.name):
        scoring.score_anomaly(xml, copy)
