"""Held-out figures of an exported model, measured through OpenVINO (what a line would see).

:func:`.int8.evaluate` gives the one metric the INT8 guard compares; the demo and the results
document also need the figures a user judges a model by, computed on the IR's own outputs:

* anomaly (MVTec AD layout): image AUROC of ``pred_score`` and pixel AUROC of ``anomaly_map``
  against ``ground_truth/<defect>/<stem>_mask.png`` at the model's resolution (torchmetrics'
  ``binary_auroc``, the metric anomalib's ``AUROC`` wraps);
* segmentor (mmseg layout, ARCD strips): IoU per class with mmseg's ``IoUMetric`` arithmetic,
  the mean IoU of the defect classes (background excluded), and, when the IR has a region head,
  the IoU of the machine bed against ``region_dir``;
* classifier (one folder per class): top-1 accuracy and per-class recall.

The precision is always explicit (default ``f32``; this CPU otherwise runs bf16).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .int8 import _anomaly_items, _classification_items, _segmentation_items, openvino_predict
from .runtime import read_bgr, read_metadata, to_input, to_model_grid


def _mask_for(image: Path, dataset_root: Path) -> Path | None:
    """MVTec AD mask of a test image (``ground_truth/<defect>/<stem>_mask.png``), None for good images."""
    if image.parent.name == "good":
        return None
    return dataset_root / "ground_truth" / image.parent.name / f"{image.stem}_mask.png"


def score_anomaly(model_xml: str | Path, dataset_root: str | Path, *, precision: str = "f32") -> dict[str, Any]:
    """Image and pixel AUROC of an anomaly IR on ``dataset_root/test`` (+ ``ground_truth``)."""
    import cv2
    import torch
    from torchmetrics.functional.classification import binary_auroc

    root = Path(dataset_root)
    metadata = read_metadata(model_xml)
    predict = openvino_predict(model_xml, precision)
    names = metadata.outputs
    size = tuple(metadata.input_size)
    scores, labels, pixel_scores, pixel_labels = [], [], [], []
    for path, label in _anomaly_items(root):
        outputs = predict(to_input(read_bgr(path), size, metadata.resize))
        scores.append(float(np.asarray(outputs[names.index("pred_score")]).reshape(-1)[0]))
        labels.append(label)
        amap = np.asarray(outputs[names.index("anomaly_map")], dtype=np.float32).squeeze()
        mask_path = _mask_for(path, root)
        if mask_path is None:
            mask = np.zeros(amap.shape, np.uint8)
        else:
            raw = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            if raw is None:
                raise FileNotFoundError(f"{mask_path}: mask of {path} missing or unreadable")
            mask = cv2.resize(raw, (amap.shape[1], amap.shape[0]), interpolation=cv2.INTER_NEAREST)
        pixel_scores.append(amap.reshape(-1))
        pixel_labels.append((mask.reshape(-1) > 127).astype(np.int64))
    image_auroc = float(binary_auroc(torch.as_tensor(scores), torch.as_tensor(labels)))
    pixel_auroc = float(binary_auroc(torch.from_numpy(np.concatenate(pixel_scores)),
                                     torch.from_numpy(np.concatenate(pixel_labels))))
    decisions = np.asarray(scores) >= float(metadata.thresholds.get("image", 0.5))
    truth = np.asarray(labels, dtype=bool)
    return {"image_auroc": image_auroc, "pixel_auroc": pixel_auroc, "images": len(labels),
            "good_images": int((~truth).sum()), "defect_images": int(truth.sum()),
            "good_called_defect": int((decisions & ~truth).sum()),
            "defect_called_good": int((~decisions & truth).sum()),
            "resolution": list(size), "precision": precision}


def _iou(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Intersection and union per class over one image, shape (2, C): mmseg's ``IoUMetric`` arithmetic."""
    import torch
    from mmseg.evaluation import IoUMetric

    inter, union, _, _ = IoUMetric.intersect_and_union(torch.as_tensor(np.asarray(pred, np.int64)),
                                                       torch.as_tensor(np.asarray(label, np.int64)),
                                                       num_classes, ignore_index)
    return np.stack([inter.numpy(), union.numpy()]).astype(np.int64)


def score_segmentor(model_xml: str | Path, data_root: str | Path, *, split: str = "val",
                    precision: str = "f32") -> dict[str, Any]:
    """Per-class IoU, defect-class mean IoU and machine-bed IoU of a segmentor IR on ``split``.

    IoU sums intersections and unions over all images before dividing (mmseg's ``IoUMetric``);
    labels are brought to the model grid as the image was (nearest), padding ignored.
    """
    import cv2

    root = Path(data_root)
    metadata = read_metadata(model_xml)
    predict = openvino_predict(model_xml, precision)
    size = tuple(metadata.input_size)
    names = list(metadata.class_names)
    totals = np.zeros((2, len(names)), np.int64)
    region_totals = np.zeros((2, 2), np.int64)
    has_region = len(metadata.outputs) > 1 or bool(metadata.region_classes)
    items = [(image, label) for image, label in _segmentation_items(root)
             if image.relative_to(root / "img_dir").parts[0] == split]
    if not items:
        raise FileNotFoundError(f"{root}: no img_dir/{split} image with a label in ann_dir/{split}")
    for image_path, label_path in items:
        outputs = predict(to_input(read_bgr(image_path), size, metadata.resize))
        label = to_model_grid(cv2.imread(str(label_path), cv2.IMREAD_GRAYSCALE), size, metadata.resize)
        totals += _iou(np.asarray(outputs[0])[0].argmax(0), label, len(names))
        region_path = root / "region_dir" / label_path.relative_to(root / "ann_dir")
        if has_region and len(outputs) > 1 and region_path.is_file():
            region = to_model_grid(cv2.imread(str(region_path), cv2.IMREAD_GRAYSCALE), size, metadata.resize)
            region_totals += _iou(np.asarray(outputs[1])[0].argmax(0), region, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        iou = totals[0] / totals[1]
    per_class = {name: (None if np.isnan(value) else float(value)) for name, value in zip(names, iou)}
    defect = [value for name, value in list(per_class.items())[1:] if value is not None]
    result: dict[str, Any] = {"iou": per_class, "defect_miou": float(np.mean(defect)) if defect else 0.0,
                              "images": len(items), "split": split, "resolution": list(size),
                              "precision": precision}
    if region_totals[1, 1] > 0:
        result["bed_iou"] = float(region_totals[0, 1] / region_totals[1, 1])
    return result


def score_classifier(model_xml: str | Path, folder: str | Path, *, precision: str = "f32") -> dict[str, Any]:
    """Top-1 accuracy and per-class recall of a classifier IR on a folder with one sub-folder per class."""
    metadata = read_metadata(model_xml)
    predict = openvino_predict(model_xml, precision)
    size = tuple(metadata.input_size)
    names = list(metadata.class_names)
    hits = np.zeros(len(names), np.int64)
    counts = np.zeros(len(names), np.int64)
    confusion = np.zeros((len(names), len(names)), np.int64)
    for path, label in _classification_items(Path(folder), names):
        probs = np.asarray(predict(to_input(read_bgr(path), size, metadata.resize))[0]).reshape(-1)
        guess = int(probs.argmax())
        confusion[label, guess] += 1
        counts[label] += 1
        hits[label] += int(guess == label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        recall = hits / counts
    return {"top1": float(hits.sum() / counts.sum()), "images": int(counts.sum()),
            "recall": {n: (None if np.isnan(r) else float(r)) for n, r in zip(names, recall)},
            "confusion": confusion.tolist(), "precision": precision}
