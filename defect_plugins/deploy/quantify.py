"""Defect quantification on binary masks: area, centroid, perimeter, area ratio and K.

Follows the RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023, section 3.2.4 and
Table 7): each connected defect region is measured by its zeroth moment (area, in pixels),
its first moments divided by the area (centroid), the length of its traced boundary
(perimeter; holes count, so a ring has an outer and an inner boundary), its share of the image
(area ratio) and the perimeter-to-area ratio K (thin, crack-like regions have a large K,
compact blobs a small one). A :class:`GradingRule` turns these numbers into a grade.

OpenCV does the work: ``cv2.connectedComponentsWithStats`` for the regions,
``cv2.moments`` for the moments and ``cv2.findContours`` (Suzuki-Abe border following) with
``cv2.arcLength`` for the boundary.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class DefectRegion:
    """One connected defect region of a mask."""

    label: int
    area: float
    centroid: tuple[float, float]  # (x, y) in pixels
    perimeter: float
    area_ratio: float
    k: float  # perimeter / area
    bbox: tuple[int, int, int, int]  # x, y, width, height
    grade: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GradingRule:
    """Grade a region by its area ratio and K; thresholds are configurable.

    A region is ``severe`` when its area ratio exceeds ``severe_area_ratio`` or it is
    crack-like (K above ``crack_k``) and longer than ``min_crack_area`` pixels; ``major`` when
    its area ratio exceeds ``major_area_ratio``; ``minor`` otherwise.
    """

    major_area_ratio: float = 0.005
    severe_area_ratio: float = 0.02
    crack_k: float = 0.8
    min_crack_area: float = 30.0

    def grade(self, region: DefectRegion) -> str:
        if region.area_ratio > self.severe_area_ratio or (
            region.k > self.crack_k and region.area >= self.min_crack_area
        ):
            return "severe"
        if region.area_ratio > self.major_area_ratio:
            return "major"
        return "minor"

    @classmethod
    def from_dict(cls, values: dict) -> "GradingRule":
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(f"unknown grading rule keys {sorted(unknown)}; expected {sorted(cls.__dataclass_fields__)}")
        return cls(**{key: float(value) for key, value in values.items()})


@dataclass
class MaskReport:
    """All regions of one mask, largest first, and the worst grade among them."""

    regions: list[DefectRegion] = field(default_factory=list)

    @property
    def worst_grade(self) -> str:
        order = ["", "minor", "major", "severe"]
        return max((region.grade for region in self.regions), key=order.index, default="")

    def to_dict(self) -> dict:
        return {"num_regions": len(self.regions), "worst_grade": self.worst_grade,
                "regions": [region.to_dict() for region in self.regions]}


def _boundary_length(component: np.ndarray) -> float:
    contours, _ = cv2.findContours(component, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(contour, closed=True) for contour in contours))


def quantify_mask(
    mask: np.ndarray,
    *,
    min_area: int = 1,
    rule: GradingRule | None = None,
    connectivity: int = 8,
) -> MaskReport:
    """Measure every connected region of a binary (or boolean, or 0/255) mask.

    Regions smaller than ``min_area`` pixels are ignored (noise in thresholded anomaly maps).
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=connectivity)
    image_area = float(binary.size)
    rule = rule or GradingRule()
    regions = []
    for label in range(1, count):
        component = (labels == label).astype(np.uint8)
        moments = cv2.moments(component, binaryImage=True)
        area = moments["m00"]
        if area < min_area:
            continue
        perimeter = _boundary_length(component)
        x, y, w, h = (int(v) for v in stats[label, :4])
        region = DefectRegion(
            label=label, area=area, centroid=(moments["m10"] / area, moments["m01"] / area),
            perimeter=perimeter, area_ratio=area / image_area, k=perimeter / area, bbox=(x, y, w, h),
        )
        regions.append(DefectRegion(**{**region.to_dict(), "grade": rule.grade(region)}))
    regions.sort(key=lambda region: region.area, reverse=True)
    return MaskReport(regions)


def draw_regions(image_bgr: np.ndarray, report: MaskReport, colour: Sequence[int] = (0, 0, 255)) -> np.ndarray:
    """Outline each region's box and write its grade, area ratio and K next to it."""
    canvas = image_bgr.copy()
    scale = max(0.3, min(canvas.shape[:2]) / 600)
    for region in report.regions:
        x, y, w, h = region.bbox
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in colour), 1)
        cx, cy = (int(round(v)) for v in region.centroid)
        cv2.drawMarker(canvas, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, 5, 1)
        text = f"{region.grade} a={region.area_ratio:.3f} K={region.k:.2f}"
        cv2.putText(canvas, text, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in colour), 1)
    return canvas
