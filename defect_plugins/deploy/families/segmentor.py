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

from ..grading.grade import Measures, graded, measures_of
from ..grading.rules import RuleSet
from ..metadata import ModelMetadata
from ..result import InferenceResult
from .base import PostSettings, region_from_row, region_rows

NAME = "segmentor"
OPTIONAL_REGIONS = False  # the regions are the result
CLASS_PRIORITY = 1  # after a classifier's class, before an anomaly model's good / defect
RULE_MEASURES = frozenset({"regions", "area", "perimeter", "area_ratio", "k", "defect"})
RULES_PER_CLASS = True
PALETTE = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (255, 128, 0), (0, 255, 128), (128, 0, 255)]
REGION_CLASSES = ["outside", "machine_bed"]


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """Per-pixel classes back on the image, defect regions per class measured, machine bed measured, graded.

    The part is good when no defect class has a region of ``settings.min_area`` pixels (then: no
    regions, the least severe grade); otherwise ``label`` is the defect class covering the most
    pixels in its regions and the rules grade each class present (the image gets the worst).
    """
    shape = image.shape[:2]
    labels = from_model_grid(np.asarray(outputs[0])[0].argmax(0), shape, metadata.resize)
    regions: list[dict[str, Any]] = []
    for index, name in enumerate(metadata.class_names):
        if index == 0:  # background
            continue
        mask = labels == index
        if mask.any():
            regions.extend(region_rows(quantify_mask(mask, min_area=settings.min_area).regions, name))
    extra: dict[str, Any] = {"defect_pixels": {name: int((labels == i).sum())
                                               for i, name in enumerate(metadata.class_names) if i}}
    region_map = None
    if len(outputs) > 1:
        region_map = from_model_grid(np.asarray(outputs[1])[0].argmax(0), shape, metadata.resize)
        extra["region_ratio"] = float(region_map.mean())
    areas: dict[str, float] = {}
    for row in regions:
        areas[row["class"]] = areas.get(row["class"], 0.0) + row["area"]
    main = max(areas, key=areas.__getitem__) if areas else None
    result = InferenceResult(source=source, family=NAME, decision="defect" if regions else "good", label=main,
                             is_defect=bool(regions), class_map=labels, region_map=region_map, regions=regions,
                             extra=extra, class_names=list(metadata.class_names), image=image)
    return graded(result, settings.rules)


def rule_measures(result: InferenceResult, rules: RuleSet) -> list[tuple[str | None, Measures]]:
    """Each defect class present under its own rules, over its own regions' totals (``default`` when none)."""
    by_class: dict[str, list[dict[str, Any]]] = {}
    for row in result.regions:
        by_class.setdefault(row["class"], []).append(row)
    if not by_class:
        return [(None, measures_of([], result.image.shape, rules, defect=0.0))]
    return [(name, measures_of(rows, result.image.shape, rules, defect=1.0)) for name, rows in by_class.items()]


def overlay(result: InferenceResult) -> np.ndarray:
    """Classes tinted in the palette, each region boxed in its class's colour and numbered, the machine bed in green.

    A region's number is its position in ``result.regions`` (1 first; the station's geometry table
    numbers them the same way, with their class); labels never overlap and the smallest regions
    lose theirs first when there is no room.
    """
    import cv2

    image, labels = result.image, result.class_map
    tint = image.copy()
    colours = {name: PALETTE[(index - 1) % len(PALETTE)] for index, name in enumerate(result.class_names) if index}
    for index, name in enumerate(result.class_names):
        if index:
            tint[labels == index] = colours[name]
    picture = cv2.addWeighted(image, 0.6, tint, 0.4, 0)
    if result.regions:
        picture = draw_regions(picture, MaskReport([region_from_row(row) for row in result.regions]),
                               colours=[colours.get(row["class"], PALETTE[0]) for row in result.regions])
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
