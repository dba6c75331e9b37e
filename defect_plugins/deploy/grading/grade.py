"""One model's result -> the measures the rule file speaks of -> a grade (with its reasons).

The measures are the per-image totals of the RKD-SARSN paper's Table 7 (Huang et al., Algorithms
16(11):516, 2023, section 3.2; :func:`defect_plugins.imaging.quantify.image_totals`) plus the
family's own figures. Which regions are measured together, under which class's rules, and with
which figures is the family's to say: each runtime family module has
``rule_measures(result, rules) -> [(class name or None, measures), ...]`` (:mod:`..families`):

* classifier: the paper's Otsu regions of the image under the top class's rules, ``confidence``;
* segmentor: each defect class present under its own rules (the image gets the worst);
* anomaly: the regions of the map above the pixel threshold, ``score`` and ``defect``.

An image the model calls good (``result.is_defect`` False: an anomaly score under the image
threshold, the classifier's OK class, no segmented region of ``min_area`` pixels) gets the least
severe grade without asking the rules: the model's "good" is the decision a line acts on, and a
rule file must not turn it into a defect grade (the Otsu chain always finds regions, even on a
clean part). Post-processing (every family's ``postprocess``, so ``DefectInferencer`` and
``defect-infer``) and the station grade through :func:`grade_result`, so they cannot disagree.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from defect_plugins.imaging.quantify import image_totals

from ..result import InferenceResult
from .rules import RuleSet

Measures = dict[str, float]


@dataclass
class ModelGrading:
    """A model's grade for one image, the reasons, the class it names and the measures the rules saw."""

    grade: str
    reasons: list[str]
    class_name: str
    measures: Measures
    class_grades: dict[str, str] = field(default_factory=dict)  # grade per class the rules were asked about


def measures_of(regions: list[dict[str, Any]], shape: tuple[int, ...], rules: RuleSet, **extra: float) -> Measures:
    """Table 7 totals of ``regions`` in an image of ``shape`` as rule measures (K rescaled as the file asks)."""
    totals = image_totals(regions, shape)
    k = totals.k
    if rules.k_reference_side:
        k *= min(totals.image_height, totals.image_width) / rules.k_reference_side
    return {"regions": float(totals.num_regions), "area": totals.area, "perimeter": totals.perimeter,
            "area_ratio": totals.area_ratio, "k": k, **{key: float(value) for key, value in extra.items()}}


def grade_result(rules: RuleSet, result: InferenceResult) -> ModelGrading:
    """Grade an ``ok`` result of any family with ``rules`` (the family says what is measured)."""
    from ..families import get_family

    if not result.ok or result.image is None:
        raise ValueError(f"{result.source}: only a successful result with its image can be graded "
                         f"(status {result.status!r}{', ' + result.error if result.error else ''})")
    entries = get_family(result.family).rule_measures(result, rules) or [(None, measures_of([], result.image.shape,
                                                                                           rules))]
    class_name = result.label or result.decision or ""
    if not result.is_defect:
        return ModelGrading(rules.grades[0], [f"the model calls the part {result.decision}: no defect to grade"],
                            class_name, entries[0][1])
    gradings = [(name, rules.grade(result.family, name, measures)) for name, measures in entries]
    worst = rules.worst([grading.grade for _, grading in gradings])
    several = len(gradings) > 1
    reasons = [f"{name}: {reason}" if several and name else reason
               for name, grading in gradings if grading.grade == worst for reason in grading.reasons]
    measures = entries[0][1]
    if several:  # the image's totals over all regions, with the family's own figures of the first entry
        measures = {**measures, **measures_of(result.regions, result.image.shape, rules)}
    class_grades = {name: grading.grade for name, grading in gradings if name}
    return ModelGrading(worst, reasons, class_name, measures, class_grades)


def graded(result: InferenceResult, rules: RuleSet) -> InferenceResult:
    """``result`` with ``grade`` and ``grade_reasons`` from ``rules`` (the last step of every ``postprocess``)."""
    grading = grade_result(rules, result)
    return dataclasses.replace(result, grade=grading.grade, grade_reasons=list(grading.reasons))
