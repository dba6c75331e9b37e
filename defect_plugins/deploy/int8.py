"""INT8 post-training quantization with NNCF, and the metric that decides whether to keep it.

``nncf.quantize`` (NNCF's post-training quantization: min-max range estimation over a
calibration set, then fast bias correction) runs on the FP32 OpenVINO model. Because every
export of this package takes ``uint8`` BGR images with preprocessing inside the graph, a
calibration item is simply an image read by ``cv2.imread`` and resized to the export size.

The quantized model is kept only if its metric on a labelled folder does not drop by more than
``tolerance`` (absolute, on a 0-1 scale) from the FP32 model's, both measured with OpenVINO at
``INFERENCE_PRECISION_HINT="f32"`` (so the comparison isolates the INT8 weights/activations, not
bf16 arithmetic). Otherwise :class:`QuantizationToleranceError` is raised and nothing is
written, unless ``force``.

Labelled folders (what :func:`evaluate` reads) and the metric per family, all computed with the
toolkits' own metric code:

* classifier: ``DIR/<class name>/*`` -> top-1 accuracy (``mmpretrain.evaluation.Accuracy``);
* segmentor: ``DIR/img_dir/**/X.*`` with ``DIR/ann_dir/**/X.png`` -> mIoU over the classes
  present (``mmseg.evaluation.IoUMetric``), at the export resolution (labels resized nearest);
* anomaly: MVTec AD layout ``DIR/test/good`` (normal) and ``DIR/test/<defect>`` (or the same
  without ``test/``) -> image AUROC of ``pred_score`` (torchmetrics, as anomalib uses).
"""
from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .metadata import ModelMetadata
from .runtime import IMAGE_SUFFIXES, ImageReadError, f32_compile, list_images, read_bgr, to_input, to_model_grid

Predict = Callable[[np.ndarray], Sequence[np.ndarray]]  # uint8 (N, H, W, 3) BGR -> outputs in order


class QuantizationToleranceError(RuntimeError):
    """INT8 lost more than the allowed tolerance of the metric; nothing was written."""


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    num_images: int
    skipped: int


# --------------------------------------------------------------------------- labelled folders


def _classification_items(root: Path, class_names: Sequence[str]) -> list[tuple[Path, int]]:
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    items = []
    for index, name in enumerate(class_names):
        folder = folders.get(str(name).lower())
        if folder is not None:
            items.extend((path, index) for path in list_images(folder))
    if not items:
        raise FileNotFoundError(f"{root}: expected one sub-folder per class named like {list(class_names)}")
    return items


def _segmentation_items(root: Path) -> list[tuple[Path, Path]]:
    image_root, label_root = root / "img_dir", root / "ann_dir"
    if not image_root.is_dir() or not label_root.is_dir():
        raise FileNotFoundError(f"{root}: expected img_dir/ and ann_dir/ (mmseg layout)")
    items = []
    for image in list_images(image_root):
        label = (label_root / image.relative_to(image_root)).with_suffix(".png")
        if label.is_file():
            items.append((image, label))
    if not items:
        raise FileNotFoundError(f"{root}: no image in img_dir/ has a label .png at the same place in ann_dir/")
    return items


def _anomaly_items(root: Path) -> list[tuple[Path, int]]:
    test = root / "test" if (root / "test").is_dir() else root
    if not (test / "good").is_dir():
        raise FileNotFoundError(f"{root}: expected test/good/ and test/<defect>/ (MVTec AD layout)")
    items = [(path, 0) for path in list_images(test / "good")]
    for folder in sorted(p for p in test.iterdir() if p.is_dir() and p.name != "good"):
        items.extend((path, 1) for path in list_images(folder))
    if len({label for _, label in items}) < 2:
        raise FileNotFoundError(f"{test}: need both good and defect images for AUROC")
    return items


def _limit(items: list, limit: int | None, seed: int = 0) -> list:
    if limit is None or len(items) <= limit:
        return items
    return sorted(random.Random(seed).sample(items, limit), key=lambda item: str(item[0]))


def evaluate(predict: Predict, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None) -> MetricResult:
    """The family's metric of ``predict`` on a labelled folder (layouts in the module docstring)."""
    import torch

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"evaluation folder {root} does not exist")
    size = tuple(metadata.input_size)
    skipped = 0
    if metadata.family == "classifier":
        from mmpretrain.evaluation import Accuracy

        scores, targets = [], []
        for path, label in _limit(_classification_items(root, metadata.class_names), limit):
            try:
                scores.append(np.asarray(predict(to_input(read_bgr(path), size, metadata.resize))[0])[0])
            except ImageReadError:
                skipped += 1
                continue
            targets.append(label)
        value = Accuracy.calculate(torch.as_tensor(np.stack(scores)), torch.as_tensor(targets), topk=(1,))[0][0]
        return MetricResult("accuracy", float(value) / 100.0, len(targets), skipped)
    if metadata.family == "segmentor":
        import cv2
        from mmseg.evaluation import IoUMetric

        num_classes = len(metadata.class_names)
        areas = []
        for image_path, label_path in _limit(_segmentation_items(root), limit):
            try:
                image = read_bgr(image_path)
            except ImageReadError:
                skipped += 1
                continue
            label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
            if label is None:
                skipped += 1
                continue
            label = label if label.ndim == 2 else label[..., 0]
            label = to_model_grid(label, size, metadata.resize)
            probs = np.asarray(predict(to_input(image, size, metadata.resize))[0])[0]
            pred = torch.as_tensor(probs.argmax(0))
            areas.append(IoUMetric.intersect_and_union(pred, torch.as_tensor(label.astype(np.int64)), num_classes, 255))
        if not areas:
            raise FileNotFoundError(f"{root}: no readable image/label pair")
        totals = [sum(area[i] for area in areas) for i in range(4)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            metrics = IoUMetric.total_area_to_metrics(*totals, metrics=["mIoU"], nan_to_num=None)
        iou = np.asarray(metrics["IoU"], dtype=np.float64)
        return MetricResult("mIoU", float(np.nanmean(iou)), len(areas), skipped)
    if metadata.family == "anomaly":
        from torchmetrics.functional.classification import binary_auroc

        names = metadata.outputs
        score_index = names.index("pred_score") if "pred_score" in names else 0
        scores, labels = [], []
        for path, label in _limit(_anomaly_items(root), limit):
            try:
                outputs = predict(to_input(read_bgr(path), size, metadata.resize))
            except ImageReadError:
                skipped += 1
                continue
            scores.append(float(np.asarray(outputs[score_index]).reshape(-1)[0]))
            labels.append(label)
        value = binary_auroc(torch.as_tensor(scores), torch.as_tensor(labels))
        return MetricResult("image_auroc", float(value), len(labels), skipped)
    raise ValueError(f"unknown family {metadata.family!r}")


def openvino_predict(model: Any, precision: str = "f32") -> Predict:
    """A :data:`Predict` function for an IR path or ``ov.Model`` at an explicit precision."""
    from .runtime import compile_model

    compiled = compile_model(model, precision) if precision != "f32" else f32_compile(model)
    request = compiled.create_infer_request()

    def predict(batch: np.ndarray) -> list[np.ndarray]:
        result = request.infer({0: batch})
        return [np.asarray(result[output]) for output in compiled.outputs]

    return predict


# --------------------------------------------------------------------------- quantization


def calibration_items(folder: str | Path, size: tuple[int, int], *, limit: int = 300, seed: int = 0,
                      resize: str = "stretch") -> list[np.ndarray]:
    """uint8 ``(1, H, W, 3)`` BGR inputs from every readable image under ``folder`` (at most ``limit``)."""
    paths = _limit([(path,) for path in list_images(folder)], limit, seed)
    items = []
    for (path,) in paths:
        try:
            items.append(to_input(read_bgr(path), size, resize))
        except ImageReadError as error:
            warnings.warn(f"calibration: skipped {error}", stacklevel=2)
    if not items:
        raise FileNotFoundError(f"calibration folder {folder} holds no readable image ({', '.join(IMAGE_SUFFIXES)})")
    return items


def anomaly_ignored_scope(ov_model):
    """The scoring head of teacher-student anomaly models stays f32; only the networks are quantized.

    ``1 - cos`` of 8-bit features is mostly quantization noise: quantizing the whole anomalib
    graph gave image AUROC 0.5 (constant scores) for AKF-RD on mvtec_bottle_256 here. The rule
    (element-wise/reduction op types and the single-channel Gaussian-blur convolution) is the one
    of :func:`defect_plugins.deploy.anomaly_openvino.quantize_int8`, shared from there.
    """
    import nncf

    from .anomaly_openvino import _F32_OP_TYPES

    blur = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() == "Convolution" and op.input(1).get_partial_shape().is_static
            and list(op.input(1).get_partial_shape().to_shape())[:2] == [1, 1]]
    return nncf.IgnoredScope(names=blur, types=list(_F32_OP_TYPES), validate=False)


def quantize(ov_model, items: Sequence[np.ndarray], *, fast_bias_correction: bool = True, ignored_scope=None):
    """``nncf.quantize`` of an FP32 ``ov.Model`` on uint8 calibration inputs (returns a new model)."""
    import nncf

    kwargs = {"ignored_scope": ignored_scope} if ignored_scope is not None else {}
    return nncf.quantize(ov_model.clone(), nncf.Dataset(list(items)), subset_size=len(items),
                         fast_bias_correction=fast_bias_correction, **kwargs)


def quantize_with_guard(ov_model, metadata: ModelMetadata, calib_dir: str | Path, eval_dir: str | Path | None = None,
                        *, tolerance: float = 0.01, force: bool = False, subset_size: int = 300,
                        eval_limit: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Quantize, measure the metric before/after at f32, refuse a drop above ``tolerance``.

    Returns the INT8 ``ov.Model`` and a report (also stored in the exported metadata).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    items = calibration_items(calib_dir, tuple(metadata.input_size), limit=subset_size, resize=metadata.resize)
    ignored = anomaly_ignored_scope(ov_model) if metadata.family == "anomaly" else None
    int8_model = quantize(ov_model, items, ignored_scope=ignored)
    eval_dir = Path(eval_dir or calib_dir)
    before = evaluate(openvino_predict(ov_model), metadata, eval_dir, limit=eval_limit)
    after = evaluate(openvino_predict(int8_model), metadata, eval_dir, limit=eval_limit)
    drop = before.value - after.value
    report = {"metric": before.name, "fp32": before.value, "int8": after.value, "drop": drop,
              "tolerance": tolerance, "forced": bool(force and drop > tolerance),
              "calibration_images": len(items),
              "f32_scoring_head": metadata.family == "anomaly", "calibration_dir": str(calib_dir), "eval_dir": str(eval_dir),
              "eval_images": before.num_images, "eval_skipped": before.skipped,
              "measured_with": "OpenVINO CPU, INFERENCE_PRECISION_HINT=f32"}
    if drop > tolerance and not force:
        raise QuantizationToleranceError(
            f"INT8 {before.name} on {eval_dir} fell from {before.value:.4f} (FP32) to {after.value:.4f}: "
            f"drop {drop:.4f} > tolerance {tolerance:.4f}. Nothing was written. Use more or more representative "
            f"calibration images, raise --tolerance, or pass --force to keep it anyway.")
    return int8_model, report
