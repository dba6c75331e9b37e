"""mmsegmentation segmentors (ARCD or plain), export side: load, convert, ignored scope, and the metric (mIoU).

Loading is ``mmseg.apis.init_model`` (``mmseg/apis/inference.py``). The converted graph is the
whole inference path after normalisation: for ARCD the frozen stage-1 reconstructor, the
discrimination network, the defect head and, when present, the machine-bed region head, each
up-sampled to the input size (``align_corners`` of the segmentor, as ``EncoderDecoder.predict``
does) and turned into softmax probabilities: outputs ``seg_probs`` ``(N, K, H, W)`` and
``region_probs`` ``(N, 2, H, W)``. ``SegDataPreProcessor``'s steps (``bgr_to_rgb``, mean/std on the
0-255 scale) are OpenVINO preprocessing (:mod:`defect_plugins.deploy.preprocess`);
:func:`reference_module` writes them in torch for the parity check.

Geometry: a config whose test pipeline uses ``PadSquareResize`` is exported at that square size
with ``resize="pad_square"`` (:mod:`defect_plugins.imaging.geometry`).

Metric (:func:`measure`, the one the INT8 guard, the demo and the benchmark use), on the mmseg
layout ``DIR/img_dir/**/X.*`` with ``DIR/ann_dir/**/X.png`` (optionally one ``split`` sub-folder),
labels brought to the model grid as the image was (nearest, padding ignored): mmseg's
``IoUMetric.intersect_and_union`` once per image, then the mIoU over the classes present
(``IoUMetric.total_area_to_metrics``, the guard's criterion) and, with figures, the IoU per class
summed over images before dividing, the mean IoU of the defect classes (background excluded) and,
for a region head, the machine bed's IoU against ``DIR/region_dir``. The post-processing is the
runtime half, :mod:`defect_plugins.deploy.families.segmentor`.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import ImageReadError, list_images, read_bgr
from defect_plugins.imaging.geometry import to_input, to_model_grid

from ...families.segmentor import NAME, REGION_CLASSES
from ...metadata import ModelMetadata
from ...runtime import Predict
from .base import (Evaluation, ExportError, LabelledSet, LoadedModel, check_file, check_folder, convert_network, sample,
                   selected)


def geometry(cfg: Any) -> tuple[str, int | None]:
    """``("pad_square", scale)`` when the config's test pipeline uses ``PadSquareResize``, else
    ``("stretch", None)``."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return "stretch", None
    for step in pipeline:
        if step.get("type") == "PadSquareResize":
            return "pad_square", int(step["scale"])
    return "stretch", None


def preprocessing(segmentor: Any) -> dict[str, Any]:
    """``to_rgb``, ``mean``, ``std`` of the segmentor's data preprocessor (None when it does not normalise)."""
    pre = segmentor.data_preprocessor
    normalise = bool(getattr(pre, "_enable_normalize", False))
    return {"to_rgb": bool(getattr(pre, "channel_conversion", False)),
            "mean": pre.mean.detach().float().flatten().tolist() if normalise else None,
            "std": pre.std.detach().float().flatten().tolist() if normalise else None}


@functools.cache
def _module_classes() -> tuple[type, type]:
    """The two torch modules (defined on first use, so that this file imports without torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Network(nn.Module):
        """Normalised float NCHW -> (defect probabilities[, region probabilities]) at the input size."""

        def __init__(self, segmentor: nn.Module) -> None:
            super().__init__()
            self.segmentor = segmentor.eval()
            self.has_region = getattr(segmentor, "region_head", None) is not None

        def forward(self, x: torch.Tensor):
            feats = self.segmentor.extract_feat(x)
            size = x.shape[-2:]
            align = self.segmentor.align_corners
            seg = F.interpolate(self.segmentor.decode_head.forward(feats), size=size, mode="bilinear",
                                align_corners=align).softmax(dim=1)
            if not self.has_region:
                return seg
            region = F.interpolate(self.segmentor.region_head.forward(feats), size=size, mode="bilinear",
                                   align_corners=align)
            return seg, region.softmax(dim=1)

    class Reference(nn.Module):
        """uint8 BGR NHWC -> the network's outputs, the preprocessing written in torch (parity reference)."""

        def __init__(self, segmentor: nn.Module) -> None:
            super().__init__()
            self.network = Network(segmentor)
            steps = preprocessing(segmentor)
            self.to_rgb = steps["to_rgb"]
            self.register_buffer("mean", torch.tensor(steps["mean"] or [0.0] * 3).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(steps["std"] or [1.0] * 3).view(1, -1, 1, 1))

        def forward(self, images: torch.Tensor):
            x = images.permute(0, 3, 1, 2).float()
            if self.to_rgb:
                x = x.flip(1)
            return self.network((x - self.mean) / self.std)

    return Network, Reference


def reference_module(segmentor: Any) -> Any:
    """uint8 BGR ``(N, H, W, 3)`` -> ``seg_probs`` [, ``region_probs``], preprocessing in torch."""
    return _module_classes()[1](segmentor).eval()


def convert(segmentor: Any, size: tuple[int, int], dynamic: bool, outputs: list[str]) -> Any:
    """The FP32 ``ov.Model``: the network converted on float NCHW, the preprocessing as OpenVINO steps."""
    from ...preprocess import uint8_bgr_input

    network = _module_classes()[0](segmentor).eval()
    steps = preprocessing(segmentor)
    return uint8_bgr_input(convert_network(network, size, dynamic, outputs), to_rgb=steps["to_rgb"],
                           mean=steps["mean"], std=steps["std"])


def load(*, config: str | Path | None, checkpoint: str | Path | None, input_size: tuple[int, int] | None = None,
         class_names: Sequence[str] | None = None, **_: Any) -> LoadedModel:
    """mmseg config + checkpoint -> :class:`.base.LoadedModel` (uint8 BGR -> ``seg_probs`` [, ``region_probs``])."""
    import defect_plugins.seg  # noqa: F401  (registers ARCD components, applies the compat fixes)
    from mmengine.registry import DefaultScope
    from mmseg.apis import init_model

    checkpoint = check_file(checkpoint, "checkpoint")
    config = check_file(config, "config")
    with DefaultScope.overwrite_default_scope("mmseg"):
        segmentor = init_model(str(config), str(checkpoint), device="cpu")
    segmentor.eval()
    resize, scale = geometry(getattr(segmentor, "cfg", None))
    input_size = input_size or ((scale, scale) if scale else None)
    if input_size is None:
        raise ExportError(f"{config}: segmentor export needs --input-size H W (the resolution the model was trained "
                          f"at; the test pipeline has no PadSquareResize to take it from)")
    has_region = getattr(segmentor, "region_head", None) is not None
    outputs = ["seg_probs", "region_probs"] if has_region else ["seg_probs"]
    names = list(class_names or (getattr(segmentor, "dataset_meta", None) or {}).get("classes") or [])
    num_classes = int(segmentor.decode_head.num_classes)
    if len(names) != num_classes and not class_names:
        names = [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ExportError(f"{len(names)} class names given but the decode head of {config} has {num_classes} classes")
    steps = preprocessing(segmentor)
    metadata = ModelMetadata(
        family=NAME, precision="FP32", input_size=input_size, class_names=[str(n) for n in names],
        outputs=outputs, thresholds={}, resize=resize, region_classes=list(REGION_CLASSES) if has_region else [],
        normalisation={"bgr_to_rgb": steps["to_rgb"], "mean": steps["mean"], "std": steps["std"], "scale": "0-255",
                       "inside_graph": "OpenVINO PrePostProcessor"},
        source={"framework": "mmsegmentation", "config": str(config), "checkpoint": str(checkpoint),
                "model": type(segmentor).__name__})
    return LoadedModel(reference_module(segmentor), metadata,
                       lambda dynamic: convert(segmentor, metadata.input_size, dynamic, outputs))


def ignored_scope(ov_model: Any) -> None:
    """Segmentors quantize whole (the softmax and resize stay float under NNCF's defaults)."""
    return None


# --------------------------------------------------------------------------- metric


def _items(root: Path, split: str | None) -> list[tuple[Path, Path]]:
    image_root, label_root = root / "img_dir", root / "ann_dir"
    if not image_root.is_dir() or not label_root.is_dir():
        raise FileNotFoundError(f"{root}: expected img_dir/ and ann_dir/ (mmseg layout)")
    items = []
    for image in list_images(image_root):
        if split is not None and image.relative_to(image_root).parts[0] != split:
            continue
        label = (label_root / image.relative_to(image_root)).with_suffix(".png")
        if label.is_file():
            items.append((image, label))
    if not items:
        where = f"img_dir/{split}" if split else "img_dir/"
        raise FileNotFoundError(f"{root}: no image in {where} has a label .png at the same place in ann_dir/")
    return items


def _region_map(root: Path, image: Path, label: Path, size: tuple[int, int], resize: str) -> np.ndarray | None:
    """The machine-bed map of a strip on the model grid (``region_dir``, where ann_dir has its label), or None."""
    import cv2

    path = root / "region_dir" / label.relative_to(root / "ann_dir")
    if not path.is_file():
        return None
    region = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if region is None:
        raise FileNotFoundError(f"{path}: machine-bed map of {image} unreadable (expected a single-channel PNG)")
    return to_model_grid(region, size, resize)


def read_labelled(metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None, split: str | None = None,
                  figures: bool = True) -> LabelledSet:
    """The mmseg layout under ``folder`` (``img_dir/<split>`` only, if given) at the export size.

    Labels are read as stored (``IMREAD_UNCHANGED``, first channel of a colour PNG) and brought to
    the model grid; images or labels that cannot be read are skipped and counted. With figures,
    each strip's machine-bed map comes along when the model has a region head.
    """
    import cv2

    root = check_folder(folder)
    size = tuple(metadata.input_size)
    has_region = len(metadata.outputs) > 1 or bool(metadata.region_classes)
    inputs, targets, references, skipped = [], [], [], 0
    for path, label_path in sample(_items(root, split), limit):
        try:
            image = read_bgr(path)
        except ImageReadError:
            skipped += 1
            continue
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        if label is None:
            skipped += 1
            continue
        targets.append(to_model_grid(label if label.ndim == 2 else label[..., 0], size, metadata.resize))
        inputs.append(to_input(image, size, metadata.resize))
        if figures:
            references.append(_region_map(root, path, label_path, size, metadata.resize) if has_region else None)
    if not inputs:
        raise FileNotFoundError(f"{root}: no readable labelled image")
    return LabelledSet(root, inputs, targets, skipped, references, with_figures=figures, split=split)


def _areas(pred: np.ndarray, label: np.ndarray, num_classes: int) -> tuple[Any, ...]:
    """mmseg's ``IoUMetric.intersect_and_union`` of one image: intersection, union, prediction, label areas."""
    import torch
    from mmseg.evaluation import IoUMetric

    return IoUMetric.intersect_and_union(torch.as_tensor(np.asarray(pred, np.int64)),
                                         torch.as_tensor(np.asarray(label, np.int64)), num_classes, 255)


def _inter_union(areas: tuple[Any, ...]) -> np.ndarray:
    """Intersection and union per class of one image, ``(2, C)`` int64 (exact pixel counts)."""
    return np.stack([areas[0].numpy(), areas[1].numpy()]).astype(np.int64)


def measure(predict: Predict, metadata: ModelMetadata, data: LabelledSet, *,
            indices: Sequence[int] | None = None) -> Evaluation:
    """mIoU of ``predict`` on ``data`` (its ``indices`` only, if given); with figures, IoU per class and bed IoU.

    ``value``: mmseg's ``total_area_to_metrics`` on the summed areas, mean over the classes present
    (float32 inside mmseg). ``figures``: intersections and unions summed as int64 and divided in
    float64, ``None`` for a class absent from labels and predictions; ``defect_miou`` over the
    defect classes present (0 if none); ``bed_iou`` when any strip has a machine-bed map.
    """
    from mmseg.evaluation import IoUMetric

    chosen = selected(indices, len(data.inputs))
    names = list(metadata.class_names)
    outputs = [predict(data.inputs[i]) for i in chosen]
    areas = [_areas(np.asarray(out[0])[0].argmax(0), data.targets[i], len(names)) for out, i in zip(outputs, chosen)]
    totals = [sum(area[k] for area in areas) for k in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        metrics = IoUMetric.total_area_to_metrics(*totals, metrics=["mIoU"], nan_to_num=None)
    miou = float(np.nanmean(np.asarray(metrics["IoU"], dtype=np.float64)))
    figures: dict[str, Any] = {}
    if data.with_figures:
        counts = sum(_inter_union(area) for area in areas)
        bed = np.zeros((2, 2), np.int64)
        for out, i in zip(outputs, chosen):
            if len(out) > 1 and data.references[i] is not None:
                bed += _inter_union(_areas(np.asarray(out[1])[0].argmax(0), data.references[i], 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            iou = counts[0] / counts[1]
        per_class = {name: (None if np.isnan(value) else float(value)) for name, value in zip(names, iou)}
        defect = [value for value in list(per_class.values())[1:] if value is not None]
        figures = {"iou": per_class, "defect_miou": float(np.mean(defect)) if defect else 0.0, "images": len(chosen),
                   "split": data.split, "resolution": list(metadata.input_size)}
        if bed[1, 1] > 0:
            figures["bed_iou"] = float(bed[0, 1] / bed[1, 1])
    return Evaluation("mIoU", miou, len(chosen), data.skipped, figures)
