"""mmpretrain classifiers, runtime side: post-process and draw.

Post-processing grades the class as the RKD-SARSN paper's grade-evaluation system does (Huang et al.,
Algorithms 16(11):516, 2023, section 3.2, Fig. 20): the network names the class, then the paper's
segmentation chain (:mod:`defect_plugins.imaging.paper_segmentation`: bilateral filter, grey-histogram
stretch, Otsu, opening + closing) finds the defect inside the image at the image's own resolution,
and each region and the image as a whole are measured (:mod:`defect_plugins.imaging.quantify`: area,
perimeter, centroid, area ratio, K). Loading, conversion and the metric are the export half,
:mod:`defect_plugins.deploy.export.families.classifier`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defect_plugins.imaging.paper_segmentation import PaperSegmentation, segment_defects
from defect_plugins.imaging.quantify import MaskReport, draw_regions, quantify_mask

from ..metadata import ModelMetadata
from ..result import InferenceResult
from .base import PostSettings, caption_height, put_text, region_from_row, region_rows

NAME = "classifier"
# The regions are optional here (PostSettings.quantify=False gives the class only): the benchmark times both.
OPTIONAL_REGIONS = True
CLASS_PRIORITY = 0  # the class a person names first when several models answer (the station's class)

# The paper's chain with the project's defaults (those of the neu_cls paper-augmentation config).
SEGMENTATION = PaperSegmentation()


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """``probs`` -> top class, confidence, the decision against ``min_confidence``; the paper's regions of the class.

    The regions (labelled with the top class, graded by ``settings.rule``) are those of the paper's
    cleaned Otsu mask, measured at the image's resolution; ``extra["otsu_threshold"]`` is the grey
    level Otsu chose on the stretched image.
    """
    probs = np.asarray(outputs[0]).reshape(-1)
    index = int(probs.argmax())
    confidence = float(probs[index])
    names = metadata.class_names
    name = names[index] if index < len(names) else str(index)
    accepted = confidence >= float(metadata.thresholds.get("min_confidence", 0.0))
    result = InferenceResult(source=source, family=NAME, decision=name if accepted else "uncertain", label=name,
                             confidence=confidence, probabilities={n: float(p) for n, p in zip(names, probs)},
                             class_names=list(names), image=image)
    if settings.quantify:
        views = segment_defects(image, SEGMENTATION)
        report = quantify_mask(views.mask, min_area=settings.min_area, rule=settings.rule)
        result.defect_mask, result.regions, result.grade = (views.mask, region_rows(report.regions, name),
                                                            report.worst_grade)
        result.extra["otsu_threshold"] = views.threshold
    return result


def overlay(result: InferenceResult) -> np.ndarray:
    """The image with the paper's defect regions in red boxes (Fig. 20), class and confidence on top.

    The caption is green when the class is accepted, orange when uncertain. Otsu regions are many
    and small, so they carry no text of their own (the geometry is in ``regions``).
    """
    picture = draw_regions(result.image, MaskReport([region_from_row(row) for row in result.regions]), labels=False)
    colour = (0, 165, 255) if result.decision == "uncertain" else (0, 255, 0)
    put_text(picture, f"{result.label} {result.confidence:.2f}", (3, caption_height(picture)), colour)
    return picture


def row_fields(result: InferenceResult) -> dict[str, Any]:
    """The classifier's keys of a result row: class, confidence, probabilities."""
    return {"class": result.label, "confidence": result.confidence, "probabilities": dict(result.probabilities)}


def rule_classes(metadata: ModelMetadata) -> list[str]:
    """The class names a grading rule file may name for this model: every class."""
    return list(metadata.class_names)
