"""mmsegmentation segmentors (ARCD or plain): load, convert, evaluate, post-process, draw.

Loading is ``mmseg.apis.init_model`` (``mmseg/apis/inference.py``). The converted graph is the
whole inference path after normalisation: for ARCD the frozen stage-1 reconstructor, the
discrimination network, the defect head and, when present, the machine-bed region head, each
up-sampled to the input size (``align_corners`` of the segmentor, as ``EncoderDecoder.predict``
does) and turned into softmax probabilities: outputs ``seg_probs`` ``(N, K, H, W)`` and
``region_probs`` ``(N, 2, H, W)``. ``SegDataPreProcessor``'s steps (``bgr_to_rgb``, mean/std on the
0-255 scale) are OpenVINO preprocessing (:mod:`..preprocess`); :func:`reference_module` writes
them in torch for the parity check.

Geometry: a config whose test pipeline uses ``PadSquareResize`` is exported at that square size
with ``resize="pad_square"`` (:mod:`..geometry`); maps are mapped back onto the strip.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry import from_model_grid
from ..metadata import ModelMetadata
from ..quantify import MaskReport, draw_regions, quantify_mask
from ..result import InferenceResult, worst_grade
from .base import ExportError, LoadedModel, PostSettings, check_file, convert_network, region_from_row, region_rows

NAME = "segmentor"
PALETTE = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (255, 128, 0), (0, 255, 128), (128, 0, 255)]
REGION_CLASSES = ["outside", "machine_bed"]


# --------------------------------------------------------------------------- torch side


def geometry(cfg: Any) -> tuple[str, int | None]:
    """``("pad_square", scale)`` when the config's test pipeline uses ``PadSquareResize``, else ``("stretch", None)``."""
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
    from ..preprocess import uint8_bgr_input

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


# --------------------------------------------------------------------------- runtime side


def evaluate(predict: Any, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None) -> Any:
    """mIoU on ``folder/img_dir`` + ``folder/ann_dir`` (mmseg's ``IoUMetric``; see :func:`..int8.evaluate`)."""
    from ..int8 import evaluate as family_metric

    return family_metric(predict, metadata, folder, limit=limit)


def ignored_scope(ov_model: Any) -> None:
    """Segmentors quantize whole (the softmax and resize stay float under NNCF's defaults)."""
    return None


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """Per-pixel classes back on the image, defect regions per class quantified, machine bed measured."""
    shape = image.shape[:2]
    labels = from_model_grid(np.asarray(outputs[0])[0].argmax(0), shape, metadata.resize)
    regions: list[dict[str, Any]] = []
    grades = []
    for index, name in enumerate(metadata.class_names):
        if index == 0:  # background
            continue
        mask = labels == index
        if not mask.any():
            continue
        report = quantify_mask(mask, min_area=settings.min_area, rule=settings.rule)
        regions.extend(region_rows(report.regions, name))
        grades.append(report.worst_grade)
    extra: dict[str, Any] = {"defect_pixels": {name: int((labels == i).sum())
                                               for i, name in enumerate(metadata.class_names) if i}}
    region_map = None
    if len(outputs) > 1:
        region_map = from_model_grid(np.asarray(outputs[1])[0].argmax(0), shape, metadata.resize)
        extra["region_ratio"] = float(region_map.mean())
    return InferenceResult(source=source, family=NAME, decision="defect" if regions else "good", class_map=labels,
                           region_map=region_map, regions=regions, grade=worst_grade(grades), extra=extra,
                           class_names=list(metadata.class_names), image=image)


def overlay(result: InferenceResult) -> np.ndarray:
    """Classes tinted in the palette, each region boxed with its grade, the machine bed outlined in green."""
    import cv2

    image, labels = result.image, result.class_map
    tint = image.copy()
    colours = {name: PALETTE[(index - 1) % len(PALETTE)] for index, name in enumerate(result.class_names) if index}
    for index, name in enumerate(result.class_names):
        if index:
            tint[labels == index] = colours[name]
    picture = cv2.addWeighted(image, 0.6, tint, 0.4, 0)
    for name, colour in colours.items():
        rows = [region for region in result.regions if region["class"] == name]
        if rows:
            picture = draw_regions(picture, MaskReport([region_from_row(row) for row in rows]), colour)
    if result.region_map is not None:
        contours, _ = cv2.findContours(result.region_map.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (0, 255, 0), 1)
    return picture
