"""Defect quantification on binary masks: area, centroid, perimeter, area ratio and K, per region and per image.

Follows the RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023, section 3.2.4 and
Table 7): each connected defect region is measured by its zeroth moment (area, in pixels),
its first moments divided by the area (centroid), the length of its traced boundary
(perimeter; holes count, so a ring has an outer and an inner boundary), its share of the image
(area ratio) and the perimeter-to-area ratio K (thin, crack-like regions have a large K,
compact blobs a small one). :class:`ImageTotals` sums the regions of one image as the paper's
Table 7 does (total area, total perimeter, their ratio K, area ratio of the image). Everything is
measured at the image's own resolution: areas in pixels, perimeters in pixels, K in 1/pixel (so
K of the same defect halves when the image is taken at twice the resolution). Regions carry
measurements only: the grade of an image comes from a rule file over these totals
(:mod:`defect_plugins.deploy.grading`).

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

from dataclasses import asdict, dataclass, field
from typing import Sequence

import cv2
import numpy as np

from .labels import Box, TextStyle, draw_label, place_labels, text_style


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

    def to_dict(self) -> dict:
        # by hand: dataclasses.asdict deep-copies field by field, and an Otsu mask has hundreds of regions
        return {"label": self.label, "area": self.area, "centroid": self.centroid, "perimeter": self.perimeter,
                "area_ratio": self.area_ratio, "k": self.k, "bbox": self.bbox}


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
    """All regions of one mask, largest first, and the image totals."""

    regions: list[DefectRegion] = field(default_factory=list)
    image_shape: tuple[int, int] | None = None  # (height, width) of the mask, for the totals

    @property
    def totals(self) -> ImageTotals | None:
        """Table 7's per-image figures (None for a report made without the mask's shape)."""
        return image_totals(self.regions, self.image_shape) if self.image_shape else None

    def to_dict(self) -> dict:
        totals = self.totals
        return {"num_regions": len(self.regions), "regions": [region.to_dict() for region in self.regions],
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
        regions.append(DefectRegion(label=label, area=area, centroid=centroid, perimeter=perimeter,
                                    area_ratio=area / image_area, k=perimeter / area, bbox=(x, y, w, h)))
    regions.sort(key=lambda region: region.area, reverse=True)
    return MaskReport(regions, image_shape=(int(binary.shape[0]), int(binary.shape[1])))


def region_label_style(shape: Sequence[int]) -> TextStyle:
    """The style of region labels: scale ``min(height, width) / 600`` (at least 0.3), as the captions scale."""
    return text_style(shape, reference_side=600.0, minimum=0.3)


def region_label_boxes(shape: Sequence[int], regions: Sequence[DefectRegion], texts: Sequence[str] | None = None,
                       *, reserved: Sequence[Box] = ()) -> list[Box | None]:
    """Where :func:`draw_regions` writes each region's label (``None``: dropped for want of room).

    ``texts`` default to the regions' 1-based positions in ``regions`` (the row numbers of a
    geometry table listing them in the same order). The largest regions are placed first, so when
    room runs out the smallest lose their labels; no two labels overlap, none overlaps
    ``reserved`` (a caption) and none leaves the picture; a label covers a region's box only where
    no other spot is free (:func:`.labels.place_labels`).
    """
    texts = [str(index + 1) for index in range(len(regions))] if texts is None else list(texts)
    if len(texts) != len(regions):
        raise ValueError(f"region_label_boxes: {len(regions)} regions but {len(texts)} texts; expected one each")
    order = sorted(range(len(regions)), key=lambda index: -regions[index].area)  # stable: ties keep their order
    placed = place_labels(shape, [regions[index].bbox for index in order], [texts[index] for index in order],
                          region_label_style(shape), reserved=reserved, avoid=[region.bbox for region in regions])
    boxes: list[Box | None] = [None] * len(regions)
    for index, box in zip(order, placed):
        boxes[index] = box
    return boxes


def draw_regions(image_bgr: np.ndarray, report: MaskReport, colour: Sequence[int] = (0, 0, 255), *,
                 labels: bool = True, texts: Sequence[str] | None = None,
                 colours: Sequence[Sequence[int]] | None = None, reserved: Sequence[Box] = ()) -> np.ndarray:
    """Outline each region's box, mark its centroid and (``labels``) write its label beside it.

    A label names the region (``texts``, default its 1-based position in ``report.regions``), not
    a grade: the grade belongs to the image (:mod:`defect_plugins.deploy.grading`). Labels never
    overlap each other or ``reserved`` boxes and never leave the picture; the smallest regions lose
    theirs first when there is no room (:func:`region_label_boxes`). ``colours``: one per region
    (a segmentor's classes), else ``colour`` for all.
    """
    canvas = image_bgr.copy()
    regions = report.regions
    colours = [colour] * len(regions) if colours is None else list(colours)
    if len(colours) != len(regions):
        raise ValueError(f"draw_regions: {len(regions)} regions but {len(colours)} colours; expected one each")
    marker = max(5, int(round(min(canvas.shape[:2]) / 60)))
    for region, region_colour in zip(regions, colours):
        x, y, w, h = region.bbox
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in region_colour), 1)
        cx, cy = (int(round(v)) for v in region.centroid)
        cv2.drawMarker(canvas, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, marker, 1)
    if labels and regions:
        texts = [str(index + 1) for index in range(len(regions))] if texts is None else list(texts)
        style = region_label_style(canvas.shape)
        for text, box, region_colour in zip(texts, region_label_boxes(canvas.shape, regions, texts,
                                                                       reserved=reserved), colours):
            if box is not None:  # the region's colour as the background, black or white text on it
                light = 0.114 * region_colour[0] + 0.587 * region_colour[1] + 0.299 * region_colour[2] > 140
                draw_label(canvas, text, box, style, (0, 0, 0) if light else (255, 255, 255), region_colour)
    return canvas
