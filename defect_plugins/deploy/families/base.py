"""What the three runtime family modules share: post-processing settings, region rows, captions.

Runtime only (numpy, OpenCV): the post-processing and overlays of every family must import in an
install without torch (:mod:`defect_plugins.deploy.selfcheck`). What export needs (the loaded
torch model, its errors, file checks) is :mod:`defect_plugins.deploy.export.families.base`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from defect_plugins.imaging.quantify import DefectRegion, GradingRule


@dataclass(frozen=True)
class PostSettings:
    """How raw outputs become decisions and regions (``defect-infer`` options).

    ``image_threshold`` / ``pixel_threshold`` override the anomaly thresholds stored in the
    metadata; regions smaller than ``min_area`` pixels are ignored; ``rule`` grades regions.
    ``quantify=False`` skips the classifier's region measurement (the paper's Otsu chain at the
    image's resolution, 1-3 ms on a 200 x 200 image): for a gate that needs only the class.
    """

    rule: GradingRule = field(default_factory=GradingRule)
    min_area: int = 4
    quantify: bool = True
    image_threshold: float | None = None
    pixel_threshold: float | None = None


def region_rows(regions: Any, class_name: str) -> list[dict[str, Any]]:
    """``DefectRegion`` objects -> result rows (their fields plus ``class``)."""
    return [{**region.to_dict(), "class": class_name} for region in regions]


def region_from_row(row: dict[str, Any]) -> Any:
    """A result row back to a ``DefectRegion`` (for drawing)."""
    fields = {key: value for key, value in row.items() if key in DefectRegion.__dataclass_fields__}
    return DefectRegion(**{**fields, "centroid": tuple(fields["centroid"]), "bbox": tuple(fields["bbox"])})


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Write a caption scaled to the picture (in place)."""
    import cv2

    scale = max(0.35, min(image.shape[:2]) / 300)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def caption_height(image: np.ndarray) -> int:
    """The baseline of a first caption line at the scale :func:`put_text` uses."""
    scale = max(0.35, min(image.shape[:2]) / 300)
    return max(12, int(18 * scale))
