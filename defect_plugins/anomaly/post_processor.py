"""anomalib's post-processor with a normalisation that keeps every score's rank.

anomalib's ``PostProcessor._normalize`` (``anomalib/post_processing/post_processor.py``, anomalib 2.x)
maps a score ``s`` to ``clamp((s - threshold) / (max - min) + 0.5, 0, 1)`` with the threshold, min and
max of the validation set. The ``Evaluator`` runs after the post-processor on the same batch, so image
AUROC, pixel AUROC and AUPRO are computed on the clamped values: every score more than half the
validation range above the threshold becomes exactly 1 (below: 0), and a normal and a defective image
that both land there count as a tie. How many scores are clamped depends on where the F1-optimal
threshold falls in each model's range, so the clamping changes models' figures by different amounts;
with a validation set other than the test set (a ``Folder`` split) test scores also leave the range.

:class:`RankPreservingPostProcessor` keeps everything else of anomalib's (the F1-adaptive thresholds,
the min-max statistics, labels and masks at normalised 0.5, export) and replaces the clamp by a
logistic of the same affine map, ``sigmoid(4 ((s - threshold) / (max - min)))``: strictly increasing,
so threshold-free metrics rank the raw scores, 0.5 at the threshold and the same slope there as
anomalib's line. Threshold-free metrics (AUROC, AUPRO) equal those of the raw scores; with the default
sensitivities (0.5) the predicted labels and masks are the same as anomalib's.
"""
from __future__ import annotations

import torch
from anomalib.post_processing import PostProcessor

__all__ = ["RankPreservingPostProcessor"]

# slope of the logistic at the threshold is SLOPE / 4 per unit of (s - threshold) / range: 1 like anomalib's line
SLOPE = 4.0


class RankPreservingPostProcessor(PostProcessor):
    """:class:`anomalib.post_processing.PostProcessor` whose normalisation is strictly increasing (no clamp)."""

    @staticmethod
    def _normalize(preds: torch.Tensor | None, norm_min: torch.Tensor, norm_max: torch.Tensor,
                   threshold: torch.Tensor) -> torch.Tensor | None:
        # anomalib's own result where its fallbacks apply (no statistics yet, zero range); only the line differs
        upstream = PostProcessor._normalize(preds, norm_min, norm_max, threshold)
        if preds is None:
            return upstream
        threshold = torch.where(torch.isnan(threshold), (norm_max + norm_min) / 2, threshold)
        value_range = norm_max - norm_min
        usable = (value_range > 0) & ~torch.isnan(norm_min) & ~torch.isnan(norm_max)
        safe_range = torch.where(usable, value_range, torch.ones_like(value_range))
        return torch.where(usable, torch.sigmoid(SLOPE * (preds - threshold) / safe_range), upstream)
