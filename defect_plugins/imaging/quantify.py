"""Defect quantification on binary masks: area, centroid, perimeter, area ratio and K, per region and per image.

Follows the RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023, section 3.2.4 and
Table 7): each connected defect region is measured by its zeroth moment (area, in pixels),
its first moments divided by the area (centroid), the length of its traced boundary
(perimeter; holes count, so a ring has an outer and an inner boundary), its share of the image
(area ratio) and the perimeter-to-area ratio K (thin, crack-like regions have a large K,
compact blobs a small one). :class:`ImageTotals` sums the regions of one image as the paper's
Table 7 does (total area, total perimeter, their ratio K, area ratio of the image). Everything is
measured at the image's own resolution: areas in pixels, perimeters in pixels, K in 1/pixel (so
K of the same defect halves when the image is taken at twice the resolution). A
:class:`GradingRule` turns the numbers of a region into a grade.

OpenCV does the work: ``cv2.connectedComponentsWithStats`` for the regions,
``cv2.moments`` for the moments and ``cv2.findContours`` (Suzuki-Abe border following) with
``cv2.arcLength`` for the boundary. The traced boundary runs through the centres of the border
pixels, an 8-connected staircase: along an oblique or curved edge its length over-estimates the
edge by up to 8 % (about 5 % on a disc). The staircase is straightened first with Douglas-Peucker
(``cv2.approxPolyDP``) at a tolerance of 1/sqrt(2) pixel, the largest distance between a digitised
straight edge's pixel centres and the edge: straight edges along the axes and one-pixel-wide lines
keep their exact length, a disc's perimeter comes within 2 % of 2 pi r (radius >= 20 px).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
        # by hand: dataclasses.asdict deep-copies field by field, and an Otsu mask has hundreds of regions
        return {"label": self.label, "area": self.area, "centroid": self.centroid, "perimeter": self.perimeter,
                "area_ratio": self.area_ratio, "k": self.k, "bbox": self.bbox, "grade": self.grade}


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


@dataclass(frozen=True)
class ImageTotals:
    """Per-image totals of the paper's Table 7: all regions of one image together.

    ``area`` and ``perimeter`` are sums over the regions (pixels); ``area_ratio`` is the defect
    area over the image area; ``k`` is the total perimeter over the total area (1/pixel, at the
    image's resolution; 0 when there is no region).
    """

    num_regions: int
    area: float
    perimeter: float
    area_ratio: float
    k: float
    image_height: int
    image_width: int

    def to_dict(self) -> dict:
        return asdict(self)


def image_totals(regions: Sequence[DefectRegion | dict], image_shape: Sequence[int]) -> ImageTotals:
    """Sum ``regions`` (objects or their ``to_dict`` rows) of an image of ``(height, width, ...)``."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 1 or width < 1:
        raise ValueError(f"image shape must be (height, width) >= 1, got {tuple(image_shape)}")
    rows = [region.to_dict() if isinstance(region, DefectRegion) else region for region in regions]
    area = float(sum(row["area"] for row in rows))
    perimeter = float(sum(row["perimeter"] for row in rows))
    return ImageTotals(num_regions=len(rows), area=area, perimeter=perimeter, area_ratio=area / (height * width),
                       k=perimeter / area if area > 0 else 0.0, image_height=height, image_width=width)


@dataclass
class MaskReport:
    """All regions of one mask, largest first, the worst grade among them and the image totals."""

    regions: list[DefectRegion] = field(default_factory=list)
    image_shape: tuple[int, int] | None = None  # (height, width) of the mask, for the totals

    @property
    def worst_grade(self) -> str:
        order = ["", "minor", "major", "severe"]
        return max((region.grade for region in self.regions), key=order.index, default="")

    @property
    def totals(self) -> ImageTotals | None:
        """Table 7's per-image figures (None for a report made without the mask's shape)."""
        return image_totals(self.regions, self.image_shape) if self.image_shape else None

    def to_dict(self) -> dict:
        totals = self.totals
        return {"num_regions": len(self.regions), "worst_grade": self.worst_grade,
                "regions": [region.to_dict() for region in self.regions],
                "totals": totals.to_dict() if totals else None}


# Douglas-Peucker tolerance that straightens the pixel staircase of a traced edge (see the module docstring).
STAIRCASE_TOLERANCE = 1.0 / np.sqrt(2.0)


def _boundary_length(component: np.ndarray) -> float:
    contours, _ = cv2.findContours(component, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(cv2.approxPolyDP(contour, STAIRCASE_TOLERANCE, closed=True), closed=True)
                     for contour in contours))


def quantify_mask(
    mask: np.ndarray,
    *,
    min_area: int = 1,
    rule: GradingRule | None = None,
    connectivity: int = 8,
) -> MaskReport:
    """Measure every connected region of a binary (or boolean, or 0/255) mask.

    Regions smaller than ``min_area`` pixels are ignored (noise in thresholded anomaly maps).
    Each region is measured inside its bounding box (plus a one-pixel margin of background, so
    that regions touching the image border are traced whole): the cost is the mask once plus the
    regions' own boxes, not the whole image per region (an Otsu mask can hold hundreds of regions).
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=connectivity)
    image_area = float(binary.size)
    rule = rule or GradingRule()
    regions = []
    for label in range(1, count):
        x, y, w, h, pixels = (int(v) for v in stats[label])
        if pixels < min_area:
            continue
        component = cv2.copyMakeBorder((labels[y:y + h, x:x + w] == label).astype(np.uint8), 1, 1, 1, 1,
                                       cv2.BORDER_CONSTANT, value=0)
        moments = cv2.moments(component, binaryImage=True)
        area = moments["m00"]
        perimeter = _boundary_length(component)
        centroid = (moments["m10"] / area + x - 1, moments["m01"] / area + y - 1)
        region = DefectRegion(label=label, area=area, centroid=centroid, perimeter=perimeter,
                              area_ratio=area / image_area, k=perimeter / area, bbox=(x, y, w, h))
        regions.append(replace(region, grade=rule.grade(region)))
    regions.sort(key=lambda region: region.area, reverse=True)
    return MaskReport(regions, image_shape=(int(binary.shape[0]), int(binary.shape[1])))


def draw_regions(image_bgr: np.ndarray, report: MaskReport, colour: Sequence[int] = (0, 0, 255), *,
                 labels: bool = True) -> np.ndarray:
    """Outline each region's box, mark its centroid and (``labels``) write its grade, area ratio and K next to it."""
    canvas = image_bgr.copy()
    scale = max(0.3, min(canvas.shape[:2]) / 600)
    for region in report.regions:
        x, y, w, h = region.bbox
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in colour), 1)
        cx, cy = (int(round(v)) for v in region.centroid)
        cv2.drawMarker(canvas, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, 5, 1)
        if not labels:
            continue
        text = f"{region.grade} a={region.area_ratio:.3f} K={region.k:.2f}"
        cv2.putText(canvas, text, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    tuple(int(c) for c in colour), 1)
    return canvas
