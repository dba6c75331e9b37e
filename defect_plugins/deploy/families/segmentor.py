"""mmsegmentation segmentors (ARCD or plain), runtime side: post-process and draw.

Outputs ``seg_probs`` ``(N, K, H, W)`` and, with a machine-bed head, ``region_probs``
``(N, 2, H, W)`` at the model's input size; per-pixel classes come back onto the frame by the
export's geometry (``resize="pad_square"`` for strips: :mod:`defect_plugins.imaging.geometry`).
Loading, conversion and the metric are the export half,
:mod:`defect_plugins.deploy.export.families.segmentor`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defect_plugins.imaging.geometry import from_model_grid
from defect_plugins.imaging.quantify import MaskReport, draw_regions, quantify_mask

from ..metadata import ModelMetadata
from ..result import InferenceResult, worst_grade
from .base import PostSettings, region_from_row, region_rows

NAME = "segmentor"
OPTIONAL_REGIONS = False  # the regions are the result
CLASS_PRIORITY = 1  # after a classifier's class, before an anomaly model's good / defect
PALETTE = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (255, 128, 0), (0, 255, 128), (128, 0, 255)]
REGION_CLASSES = ["outside", "machine_bed"]


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


def row_fields(result: InferenceResult) -> dict[str, Any]:
    """No keys of its own: a segmentor's row is its regions (and ``extra``)."""
    return {}


def rule_classes(metadata: ModelMetadata) -> list[str]:
    """The class names a grading rule file may name: every class but the background (index 0)."""
    return list(metadata.class_names[1:])
