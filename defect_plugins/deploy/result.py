"""One result type for every model family: what a line-integration program reads after ``predict``.

Follows the role of anomalib's ``NumpyImageItem`` / ``NumpyImageBatch`` (``anomalib/data/dataclasses``:
one object carrying the image, the score, the map and the decision) with this package's additions:
class probabilities for classifiers, class and machine-bed maps for segmentors, quantified defect
regions (:mod:`defect_plugins.imaging.quantify`), the per-image totals of the RKD-SARSN paper's
Table 7 (:meth:`InferenceResult.totals`) and the rule file's grade of the image
(:mod:`defect_plugins.deploy.grading`) for every family. ``is_defect`` says plainly whether the
model calls the part defective, whatever the family. Classifiers find their
regions with the paper's segmentation chain (:mod:`defect_plugins.imaging.paper_segmentation`; the
mask is ``defect_mask``). Fields that do not apply to a family are ``None`` (or empty); the keys a
family adds to a JSON row are its own (``row_fields`` of :mod:`.families`).

:meth:`InferenceResult.to_dict` is exactly one row of ``defect-infer``'s ``results.json`` (the
arrays are summarised, not dumped); :meth:`InferenceResult.overlay` draws the family's picture.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class InferenceResult:
    """The outcome for one image.

    Attributes:
        source: file name, ``video#frame``, or ``image[i]`` for arrays.
        family: ``classifier``, ``segmentor`` or ``anomaly``.
        status: ``ok``, or ``error`` when the image could not be read, inferred or post-processed
            (``error`` then says which step and why; every other field is empty).
        decision: classifier: the OK class for a good part (``PostSettings.ok_class``), else the label,
            or ``uncertain`` below ``min_confidence``; anomaly and segmentor: ``defect`` or ``good``.
        is_defect: whether the model calls the part defective (False for a good part of every
            family: an anomaly score under the image threshold, the classifier's OK class, no
            segmented region); only a defective part has regions and a grade above the least severe.
        score: anomaly: the normalised image score (compared with ``image_threshold``).
        label: classifier: the class named (even when uncertain); ``confidence`` its probability.
            Segmentor: the defect class whose regions cover the most pixels (None when good).
        probabilities: classifier: class name -> probability.
        anomaly_map: anomaly: float map at the image's resolution (normalised; ``pixel_threshold``).
        class_map: segmentor: uint8 class index per pixel at the image's resolution.
        region_map: segmentor with a region head: uint8 machine-bed mask at the image's resolution.
        defect_mask: classifier: the paper's cleaned Otsu defect mask (uint8 0/1) at the image's resolution.
        regions: quantified defect regions of a defective part, each :meth:`.quantify.DefectRegion.to_dict`
            plus ``class`` (classifier: the label, the regions being those of ``defect_mask``); measurements
            only, no grade of their own.
        grade: the image's grade, one of the rule file's grades (``PostSettings.rules``; the least
            severe for a good part; ``""`` for a failed result).
        grade_reasons: why: the ``why`` of the rules that gave the grade.
        extra: family figures written to the results as they are (``defect_pixels``, ``region_ratio``).
        class_names: the model's classes in output order (classifier, segmentor; for drawing).
        image: the BGR image the result belongs to (for :meth:`overlay`; not serialised).
    """

    source: str
    family: str
    status: str = "ok"
    decision: str | None = None
    score: float | None = None
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    anomaly_map: np.ndarray | None = field(default=None, repr=False)
    class_map: np.ndarray | None = field(default=None, repr=False)
    region_map: np.ndarray | None = field(default=None, repr=False)
    defect_mask: np.ndarray | None = field(default=None, repr=False)
    regions: list[dict[str, Any]] = field(default_factory=list)
    is_defect: bool = False
    grade: str = ""
    grade_reasons: list[str] = field(default_factory=list)
    image_threshold: float | None = None
    pixel_threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list, repr=False)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(cls, source: str, family: str, error: str, image: np.ndarray | None = None) -> "InferenceResult":
        return cls(source=source, family=family, status="error", error=error, image=image)

    def totals(self) -> dict[str, Any] | None:
        """Per-image totals of all regions (Table 7: area, perimeter, area ratio, K in 1/pixel), or None.

        None for a failed result or one without its image (the image's size is the area ratio's denominator).
        """
        if not self.ok or self.image is None:
            return None
        from defect_plugins.imaging.quantify import image_totals

        return image_totals(self.regions, self.image.shape).to_dict()

    def overlay(self) -> np.ndarray:
        """The family's picture: class and confidence, heatmap with regions, or tinted classes with regions."""
        if not self.ok:
            raise ValueError(f"{self.source}: no overlay for a failed result ({self.error})")
        if self.image is None:
            raise ValueError(f"{self.source}: the result holds no image to draw on")
        from .families import get_family

        return get_family(self.family).overlay(self)

    def to_dict(self) -> dict[str, Any]:
        """One JSON row of ``defect-infer``'s results: decision, ``is_defect``, the family's keys, grade, regions."""
        row: dict[str, Any] = {"source": self.source, "status": self.status}
        if not self.ok:
            row["error"] = self.error
            return row
        from .families import get_family

        row.update({"decision": self.decision, "is_defect": self.is_defect})
        row.update(get_family(self.family).row_fields(self))
        row.update({"grade": self.grade, "grade_reasons": list(self.grade_reasons), "num_regions": len(self.regions),
                    "regions": [_json_row(region) for region in self.regions], "totals": self.totals()})
        row.update(self.extra)
        return row


def _json_row(region: dict[str, Any]) -> dict[str, Any]:
    """A region row as JSON gives it back (centroid and box as lists, not tuples)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in region.items()}
