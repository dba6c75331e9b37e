"""Pixel AUROC, region IoU, data sets and the packing checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_auroc

from defect_plugins.seg.datasets import ARCDStripDataset, NEUSegDataset
from defect_plugins.seg.metrics import PixelAUROC, RegionIoUMetric
from defect_plugins.seg.transforms import PackARCDInputs


def test_pixel_auroc_matches_torchmetrics_on_all_pixels():
    torch.manual_seed(0)
    logits = torch.randn(3, 20, 20)
    label = torch.randint(0, 3, (1, 20, 20))
    logits[1] += 2.0 * (label[0] == 1)  # class 1 separable-ish, class 2 random
    label[0, 0, :5] = 255
    metric = PixelAUROC(class_names=["bg", "a", "b"], max_pixels=10_000)
    metric.process({}, [{"seg_logits": {"data": logits}, "gt_sem_seg": {"data": label}}])
    out = metric.compute_metrics(metric.results)
    probs, valid = torch.softmax(logits, 0), label[0] != 255
    for c, name in ((1, "a"), (2, "b")):
        ref = binary_auroc(probs[c][valid], (label[0][valid] == c).long()).item()
        assert out[f"AUROC.{name}"] == pytest.approx(ref, abs=1e-6)
    assert out["AUROC.a"] > 0.8 and "AUROC.bg" not in out
    assert out["mAUROC"] == pytest.approx((out["AUROC.a"] + out["AUROC.b"]) / 2)


def test_pixel_auroc_subsampling_is_deterministic_and_close():
    torch.manual_seed(1)
    logits, label = torch.randn(2, 64, 64), torch.randint(0, 2, (1, 64, 64))
    logits[1] += label[0].float()
    runs = []
    for _ in range(2):
        metric = PixelAUROC(class_names=["bg", "defect"], max_pixels=500)
        metric.process({}, [{"seg_logits": {"data": logits}, "gt_sem_seg": {"data": label}}])
        runs.append(metric.compute_metrics(metric.results)["AUROC.defect"])
    full = binary_auroc(torch.softmax(logits, 0)[1].flatten(), label.flatten()).item()
    assert runs[0] == runs[1] and runs[0] == pytest.approx(full, abs=0.03)


def test_region_iou_metric_reads_region_fields():
    metric = RegionIoUMetric(iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": ("background", "a", "b")}
    region = torch.zeros(1, 4, 4, dtype=torch.long)
    region[0, :2] = 1
    metric.process({}, [{"pred_region": {"data": region}, "gt_region_map": {"data": region}}])
    out = metric.compute_metrics(metric.results)
    assert out["mIoU"] == 100.0 and out["mAcc"] == 100.0
    assert metric.dataset_meta["classes"] == ("background", "a", "b")  # restored


def test_pack_rejects_labels_outside_class_list():
    img = np.zeros((8, 8, 3), np.uint8)
    label = np.zeros((8, 8), np.uint8)
    label[0, 0] = 5
    with pytest.raises(ValueError, match=r"gt_seg_map from 'ann\.png' has label values \[5\]"):
        PackARCDInputs(num_classes=3).transform({"img": img, "gt_seg_map": label, "seg_map_path": "ann.png",
                                                 "ori_shape": (8, 8), "img_shape": (8, 8)})
    label[0, 0] = 255  # ignore index is allowed
    packed = PackARCDInputs(num_classes=3).transform({"img": img, "gt_seg_map": label, "ori_shape": (8, 8),
                                                       "img_shape": (8, 8), "clean_img": img,
                                                       "gt_region_map": np.ones((8, 8), np.uint8)})
    sample = packed["data_samples"]
    assert sample.clean_img.data.shape == (3, 8, 8) and sample.gt_region_map.data.shape == (1, 8, 8)


def test_pack_rejects_mask_of_other_size():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="gt_region_map from 'r.png' has size"):
        PackARCDInputs().transform({"img": img, "gt_region_map": np.zeros((4, 8), np.uint8), "region_path": "r.png",
                                    "ori_shape": (8, 8), "img_shape": (8, 8)})


def test_strip_dataset_with_regions_and_label_fraction(strip_data):
    prefix = dict(img_path="img_dir/train", seg_map_path="ann_dir/train", region_path="region_dir/train")
    full = ARCDStripDataset(data_root=str(strip_data), data_prefix=prefix, pipeline=[])
    assert len(full) == 4 and full[0]["region_path"].endswith(".png")
    half = ARCDStripDataset(data_root=str(strip_data), data_prefix=prefix, pipeline=[], label_fraction=0.5)
    assert len(half) == 2
    with pytest.raises(ValueError, match="label_fraction"):
        NEUSegDataset(data_root=str(strip_data), data_prefix=prefix, pipeline=[], label_fraction=0.0)
