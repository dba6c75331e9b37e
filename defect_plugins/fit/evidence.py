"""The threshold a line uses, and the evidence for it, from the scores of the held-out parts.

The defect-free images are split three ways (:mod:`.split`): training, **calibration** and **test**. The
threshold is set on the calibration part for the target false-reject rate
(:func:`.calibration.threshold_for_false_reject`); the rates a quality engineer asks for are then measured
on the test part, whose images neither trained nor calibrated the model: the false-reject rate of good
parts with its exact (Clopper-Pearson) 95 % interval for that number of images, and the recall (1 - escape
rate) per defect type at that threshold. The image AUROC is reported beside them for comparison with the
literature, but it is never what chooses a model or a threshold: two models with the same AUROC can
catch very different shares of defects at a 1 % false-reject rate.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .calibration import false_reject, recall, recall_by_group, threshold_for_false_reject
from .scoring import Scores
from .split import Split


def auroc(good: Sequence[float], defect: Sequence[float]) -> float | None:
    """Image AUROC of defect scores (torchmetrics' ``binary_auroc``, what anomalib's ``AUROC`` wraps)."""
    if len(good) == 0 or len(defect) == 0:
        return None
    import torch
    from torchmetrics.functional.classification import binary_auroc

    preds = torch.as_tensor(np.concatenate([np.asarray(good), np.asarray(defect)]), dtype=torch.float64)
    target = torch.cat([torch.zeros(len(good), dtype=torch.long), torch.ones(len(defect), dtype=torch.long)])
    return float(binary_auroc(preds, target))


def part_figures(split: Split, scores: Scores, part: str, good: str, threshold: float) -> dict[str, Any]:
    """False-reject rate, recall per defect group and overall, and AUROC of ``part`` at ``threshold``."""
    good_scores = scores.of(split.files(part, good))
    defect_groups = {group: scores.of(split.files(part, group)) for group in split.groups(part) if group != good}
    all_defects = np.concatenate(list(defect_groups.values())) if defect_groups else np.zeros(0)
    return {
        "images": {"good": int(len(good_scores)), **{g: int(len(s)) for g, s in defect_groups.items()}},
        "false_reject": false_reject(good_scores, threshold).to_dict(),
        "recall": recall(all_defects, threshold).to_dict(),
        "recall_by_type": {g: r.to_dict() for g, r in recall_by_group(defect_groups, threshold).items()},
        "auroc": auroc(good_scores, all_defects),
    }


def calibrate(split: Split, scores: Scores, good: str, max_false_reject: float) -> dict[str, Any]:
    """The threshold for ``max_false_reject`` on the calibration part, and the figures of both held-out parts."""
    threshold = threshold_for_false_reject(scores.of(split.files("calibration", good)), max_false_reject)
    return {"threshold": float(threshold), "max_false_reject": float(max_false_reject),
            "calibration": part_figures(split, scores, "calibration", good, threshold),
            "test": part_figures(split, scores, "test", good, threshold)}
