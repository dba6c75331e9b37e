"""mmpretrain classifiers, runtime side: post-process and draw.

Post-processing grades the class as the RKD-SARSN paper's grade-evaluation system does (Huang et al.,
Algorithms 16(11):516, 2023, section 3.2, Fig. 20): the network names the class, then the paper's
segmentation chain (:mod:`defect_plugins.imaging.paper_segmentation`: bilateral filter, grey-histogram
stretch, Otsu, opening + closing) finds the defect inside the image at the image's own resolution,
each region and the image as a whole are measured (:mod:`defect_plugins.imaging.quantify`: area,
perimeter, centroid, area ratio, K) and the rule file grades the image (:mod:`..grading`). A model
with a class for good parts (``PostSettings.ok_class``) skips the chain on the images it calls good:
Otsu always splits an image in two, and would find "defects" on a clean part. Loading, conversion
and the metric are the export half, :mod:`defect_plugins.deploy.export.families.classifier`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defect_plugins.imaging.paper_segmentation import PaperSegmentation, segment_defects
from defect_plugins.imaging.quantify import MaskReport, draw_regions, quantify_mask

from ..grading.grade import Measures, graded, measures_of
from ..grading.rules import RuleSet
from ..metadata import ModelMetadata
from ..result import InferenceResult
from .base import PostSettings, draw_caption, plan_caption, region_from_row, region_rows

NAME = "classifier"
# The regions are optional here (PostSettings.quantify=False gives the class only): the benchmark times both.
OPTIONAL_REGIONS = True
CLASS_PRIORITY = 0  # the class a person names first when several models answer (the station's class)
RULE_MEASURES = frozenset({"regions", "area", "perimeter", "area_ratio", "k", "confidence"})
RULES_PER_CLASS = True

# The paper's chain with the project's defaults (those of the neu_cls paper-augmentation config).
SEGMENTATION = PaperSegmentation()


def _choose(probs: np.ndarray, names: list[str], settings: PostSettings) -> tuple[int, bool]:
    """``(index of the label, whether the image is good)`` by ``settings.ok_class`` / ``ok_threshold``."""
    if settings.ok_class is None:
        return int(probs.argmax()), False
    if settings.ok_class not in names:
        raise ValueError(f"PostSettings.ok_class {settings.ok_class!r} is not a class of this model "
                         f"(metadata class_names: {names})")
    ok = names.index(settings.ok_class)
    if ok >= probs.size:
        raise ValueError(f"PostSettings.ok_class {settings.ok_class!r} is class {ok}, but the model gives "
                         f"{probs.size} probabilities")
    if settings.ok_threshold is None:
        top = int(probs.argmax())
        return top, top == ok
    if float(probs[ok]) >= settings.ok_threshold:
        return ok, True
    others = probs.astype(np.float64).copy()
    others[ok] = -np.inf
    return int(others.argmax()), False


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """``probs`` -> the label, good or defect, the decision; the paper's regions and the grade of a defect.

    Good (the OK class, :class:`.base.PostSettings`): ``decision`` is the OK class, no regions,
    the least severe grade. Defect: ``decision`` is the label, or ``uncertain`` when its
    probability is under the metadata's ``min_confidence``; the regions (labelled with the label)
    are those of the paper's cleaned Otsu mask at the image's resolution, ``extra["otsu_threshold"]``
    the grey level Otsu chose on the stretched image; the rules grade the image.
    """
    probs = np.asarray(outputs[0]).reshape(-1)
    names = list(metadata.class_names)
    index, good = _choose(probs, names, settings)
    name, confidence = names[index] if index < len(names) else str(index), float(probs[index])
    accepted = good or confidence >= float(metadata.thresholds.get("min_confidence", 0.0))
    result = InferenceResult(source=source, family=NAME, decision=name if accepted else "uncertain", label=name,
                             confidence=confidence, probabilities={n: float(p) for n, p in zip(names, probs)},
                             class_names=names, is_defect=not good, image=image)
    if settings.quantify and not good:
        views = segment_defects(image, SEGMENTATION)
        report = quantify_mask(views.mask, min_area=settings.min_area)
        result.defect_mask, result.regions = views.mask, region_rows(report.regions, name)
        result.extra["otsu_threshold"] = views.threshold
    return graded(result, settings.rules)


def rule_measures(result: InferenceResult, rules: RuleSet) -> list[tuple[str | None, Measures]]:
    """The label's rules over the Table 7 totals of the Otsu regions, with the label's probability."""
    return [(result.label, measures_of(result.regions, result.image.shape, rules,
                                       confidence=result.confidence or 0.0))]


def overlay(result: InferenceResult) -> np.ndarray:
    """The image with the paper's defect regions in red boxes (Fig. 20), label and probability on top.

    The caption is green for a good part or an accepted class, orange when uncertain. Otsu regions
    are many and small, so they carry no text of their own (the geometry is in ``regions``).
    """
    caption = plan_caption(result.image.shape, f"{result.label} {result.confidence:.2f}")
    picture = draw_regions(result.image, MaskReport([region_from_row(row) for row in result.regions]), labels=False)
    draw_caption(picture, caption, (0, 165, 255) if result.decision == "uncertain" else (0, 255, 0))
    return picture


def row_fields(result: InferenceResult) -> dict[str, Any]:
    """The classifier's keys of a result row: class, confidence, probabilities."""
    return {"class": result.label, "confidence": result.confidence, "probabilities": dict(result.probabilities)}


def rule_classes(metadata: ModelMetadata) -> list[str]:
    """The class names a grading rule file may name for this model: every class."""
    return list(metadata.class_names)
