"""What the page gets for an inspection: the paper's views, one card per model, the grades.

The page follows the grade-evaluation system of the RKD-SARSN paper (Huang et al., Algorithms
16(11):516, 2023, section 3.2, Fig. 20): the image, the preprocessing views (bilateral filter,
contrast stretch, Otsu with red boxes), the class, the geometry table and the grade. Images travel
as ``data:`` URLs shrunk to ``display_side`` (the page needs no image route).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from defect_plugins.imaging.quantify import draw_regions, quantify_mask

from .imaging import data_url
from .memory import Inspection, ModelState

TABLE_ROWS = 20  # regions listed in the page's geometry table (largest first); the totals cover all


def inspection_payload(inspection: Inspection, *, grade: str, class_name: str, grades: list[str],
                       min_area: int, display_side: int) -> dict[str, Any]:
    """The page's payload for ``inspection`` (call with ``inspection.lock`` held)."""
    views, image = inspection.views, inspection.image
    otsu = draw_regions(np.repeat(views.mask[:, :, None] * 255, 3, axis=2),
                        quantify_mask(views.mask, min_area=min_area), labels=False)
    return {"inspection_id": inspection.id, "source": inspection.source, "grade": grade, "class": class_name,
            "grades": grades, "image": {"width": image.shape[1], "height": image.shape[0]},
            "views": {"original": data_url(image, display_side),
                      "bilateral": data_url(views.bilateral, display_side),
                      "stretched": data_url(views.stretched, display_side),
                      "otsu": data_url(otsu, display_side, lossless=True),
                      "otsu_threshold": views.threshold,
                      "defect_polarity": "bright" if views.defect_is_bright else "dark"},
            "models": [model_card(state, display_side) for state in inspection.states]}


def model_card(state: ModelState, display_side: int) -> dict[str, Any]:
    """One model's card: overlay, decision, class, score and threshold, geometry table, grade and reasons."""
    result, model = state.result, state.model
    card: dict[str, Any] = {"index": model.index, "name": model.name, "family": model.family,
                            "status": result.status, "latency_ms": round(state.latency_ms, 2)}
    if not result.ok:
        card.update({"error": result.error, "grade": state.grading.grade, "reasons": state.grading.reasons})
        return card
    top = sorted(result.probabilities.items(), key=lambda item: -item[1])[:3]
    card.update({
        "overlay": data_url(result.overlay(), display_side), "decision": result.decision,
        "class": state.grading.class_name, "confidence": result.confidence, "top": top,
        "score": result.score, "threshold": state.threshold, "threshold_default": state.threshold_default,
        "regions": [{key: row[key] for key in ("class", "area", "perimeter", "area_ratio", "k", "centroid")}
                    for row in result.regions[:TABLE_ROWS]],
        "num_regions": len(result.regions), "totals": result.totals(),
        "k_rule": state.grading.measures.get("k"), "grade": state.grading.grade,
        "reasons": state.grading.reasons, "class_grades": state.grading.class_grades})
    return card
