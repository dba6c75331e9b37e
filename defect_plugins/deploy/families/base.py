"""What the three runtime family modules share: post-processing settings, region rows, captions.

Runtime only (numpy, OpenCV): the post-processing and overlays of every family must import in an
install without torch (:mod:`defect_plugins.deploy.selfcheck`). What export needs (the loaded
torch model, its errors, file checks) is :mod:`defect_plugins.deploy.export.families.base`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from defect_plugins.imaging.labels import Box, TextStyle, draw_label, place_caption, text_style
from defect_plugins.imaging.quantify import DefectRegion

from ..grading.rules import RuleSet, default_rules


@dataclass(frozen=True)
class PostSettings:
    """How raw outputs become decisions, regions and grades (``DefectInferencer`` / ``defect-infer`` options).

    ``rules`` grades every image (:mod:`defect_plugins.deploy.grading`; default: the packaged
    ``default_rules.yaml``, parsed once per process). ``image_threshold`` / ``pixel_threshold``
    override the anomaly thresholds stored in the metadata; regions smaller than ``min_area``
    pixels are ignored. ``quantify=False`` skips the classifier's region measurement (the paper's
    Otsu chain at the image's resolution, 1-3 ms on a 200 x 200 image): for a gate that needs only
    the class.

    ``ok_class`` names the classifier class that means a good part (``None``: every class is a
    defect, as in NEU-CLS). With ``ok_threshold`` the image is good iff P(``ok_class``) >=
    ``ok_threshold`` (otherwise the most probable other class is the label); without it, iff the
    top class is ``ok_class``. A good image gets the least severe grade and no regions: the Otsu
    chain (RKD-SARSN paper, section 3.2) always splits an image in two, so it runs only on images
    the classifier calls defective.
    """

    rules: RuleSet = field(default_factory=default_rules)
    min_area: int = 4
    quantify: bool = True
    image_threshold: float | None = None
    pixel_threshold: float | None = None
    ok_class: str | None = None
    ok_threshold: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rules, RuleSet):
            raise TypeError(f"PostSettings.rules must be a RuleSet (defect_plugins.deploy.grading.load_rules), "
                            f"got {type(self.rules).__name__}")
        if self.ok_threshold is not None:
            if self.ok_class is None:
                raise ValueError("PostSettings.ok_threshold needs ok_class: the class whose probability it bounds")
            if not (isinstance(self.ok_threshold, (int, float)) and math.isfinite(self.ok_threshold)
                    and 0.0 <= self.ok_threshold <= 1.0):
                raise ValueError(f"PostSettings.ok_threshold must be a probability within 0 and 1, "
                                 f"got {self.ok_threshold!r}")


def region_rows(regions: Any, class_name: str) -> list[dict[str, Any]]:
    """``DefectRegion`` objects -> result rows (their fields plus ``class``)."""
    return [{**region.to_dict(), "class": class_name} for region in regions]


def region_from_row(row: dict[str, Any]) -> Any:
    """A result row back to a ``DefectRegion`` (for drawing)."""
    fields = {key: value for key, value in row.items() if key in DefectRegion.__dataclass_fields__}
    return DefectRegion(**{**fields, "centroid": tuple(fields["centroid"]), "bbox": tuple(fields["bbox"])})


@dataclass(frozen=True)
class Caption:
    """A family's one-line caption on its overlay, placed (:func:`plan_caption`) before the region labels."""

    text: str
    box: Box
    style: TextStyle


def plan_caption(shape: Sequence[int], text: str, *, bottom: bool = False) -> Caption | None:
    """Where a caption goes: the top-left (or bottom-left) corner, scale ``min(h, w) / 300``, shrunk to fit the width.

    ``None`` when the picture is too small for it even at the smallest scale. The region labels
    are placed around its box afterwards (``reserved``), so caption and labels never overlap.
    """
    placed = place_caption(shape, text, text_style(shape, reference_side=300.0, minimum=0.35), bottom=bottom)
    return Caption(text, *placed) if placed is not None else None


def draw_caption(picture: np.ndarray, caption: Caption | None, colour: tuple[int, int, int]) -> None:
    """Write a planned caption (in place; nothing for ``None``)."""
    if caption is not None:
        draw_label(picture, caption.text, caption.box, caption.style, colour)


def reserved(caption: Caption | None) -> list[Box]:
    """The boxes region labels must keep clear of."""
    return [caption.box] if caption is not None else []
