"""One model's result -> the measures the rule file speaks of -> a grade (with its reasons).

The measures are the per-image totals of the RKD-SARSN paper's Table 7 (Huang et al., Algorithms
16(11):516, 2023, section 3.2; :func:`defect_plugins.imaging.quantify.image_totals`) plus the
family's own figures:

* classifier: the paper's Otsu regions of the whole image, the top class's rules, ``confidence``;
* segmentor: each defect class present is graded on its own regions with its class's rules, the
  image gets the worst; with no defect pixel at all, ``default`` is asked with zero measures;
* anomaly: the regions of the map above the threshold, ``score`` and ``defect`` (score >= threshold).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from defect_plugins.deploy.result import InferenceResult
from defect_plugins.imaging.quantify import image_totals

from .rules import RuleSet


@dataclass
class ModelGrading:
    grade: str
    reasons: list[str]
    class_name: str
    measures: dict[str, float]
    class_grades: dict[str, str] = field(default_factory=dict)  # segmentor: grade per defect class


def measures_of(regions: list[dict[str, Any]], shape: tuple[int, ...], rules: RuleSet, **extra: float) -> dict:
    """Table 7 totals of ``regions`` in an image of ``shape`` as rule measures (K rescaled as the file asks)."""
    totals = image_totals(regions, shape)
    k = totals.k
    if rules.k_reference_side:
        k *= min(totals.image_height, totals.image_width) / rules.k_reference_side
    return {"regions": float(totals.num_regions), "area": totals.area, "perimeter": totals.perimeter,
            "area_ratio": totals.area_ratio, "k": k, **{key: float(value) for key, value in extra.items()}}


def grade_result(rules: RuleSet, result: InferenceResult) -> ModelGrading:
    """Grade an ``ok`` result of any family with ``rules``."""
    shape = result.image.shape
    if result.family == "classifier":
        measures = measures_of(result.regions, shape, rules, confidence=result.confidence or 0.0)
        grading = rules.grade("classifier", result.label, measures)
        return ModelGrading(grading.grade, list(grading.reasons), result.label or "", measures)
    if result.family == "anomaly":
        measures = measures_of(result.regions, shape, rules, score=result.score or 0.0,
                               defect=1.0 if result.is_defect else 0.0)
        grading = rules.grade("anomaly", None, measures)
        return ModelGrading(grading.grade, list(grading.reasons), result.decision or "", measures)
    return _grade_segmentor(rules, result)


def _grade_segmentor(rules: RuleSet, result: InferenceResult) -> ModelGrading:
    shape = result.image.shape
    by_class: dict[str, list[dict]] = {}
    for region in result.regions:
        by_class.setdefault(region["class"], []).append(region)
    if not by_class:
        measures = measures_of([], shape, rules, defect=0.0)
        grading = rules.grade("segmentor", None, measures)
        return ModelGrading(grading.grade, list(grading.reasons), "good", measures)
    gradings = {name: rules.grade("segmentor", name, measures_of(rows, shape, rules, defect=1.0))
                for name, rows in by_class.items()}
    worst = rules.worst([grading.grade for grading in gradings.values()])
    reasons = [f"{name}: {reason}" for name, grading in gradings.items() if grading.grade == worst
               for reason in grading.reasons]
    main = max(by_class, key=lambda name: sum(row["area"] for row in by_class[name]))
    return ModelGrading(worst, reasons, main, measures_of(result.regions, shape, rules, defect=1.0),
                        class_grades={name: grading.grade for name, grading in gradings.items()})
