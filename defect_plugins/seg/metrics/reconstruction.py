"""Reconstruction accuracy (RA) of the ARCD stage-1 network (thesis section 4.4).

``RA = exp(-10000 * (L2 + (1 / 100) * (1 - SSIM)))`` with ``L2`` the mean squared error and
``SSIM`` the mean structural similarity (kornia, 11x11 Gaussian window) between the
reconstruction and the clean image, both in ``[0, 1]``. Here the two terms are averaged over the
evaluation set first and RA is taken of the averages; ``L2``, ``SSIM`` and the loss ``recon_loss`` =
``L2 + (1/100)(1 - SSIM)`` are reported as well (RA is ~0 for any loss above about 1e-3, so short
schedules are compared on the loss).
The exponent holds the thesis' reconstruction loss ``L2 + (1/100)(1 - SSIM)`` (the values of
Table 4.1), which :class:`~defect_plugins.seg.models.ARCDReconstructionModel` trains on with the
same SSIM (kornia's ``ssim_loss`` is ``(1 - SSIM) / 2``; the model doubles it).
"""
from __future__ import annotations

import math
from typing import Sequence

import kornia
import torch
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ReconstructionAccuracy(BaseMetric):
    """RA, L2 and SSIM from ``rec_img`` / ``gt_clean`` (filled by ``ARCDReconstructionModel``)."""

    default_prefix = None

    def __init__(self, ssim_weight: float = 0.01, scale: float = 10000.0, window: int = 11,
                 collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ssim_weight, self.scale, self.window = ssim_weight, scale, window

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if "rec_img" not in sample or "gt_clean" not in sample:
                raise KeyError("ReconstructionAccuracy: data sample lacks 'rec_img' or 'gt_clean'; evaluate an "
                               "ARCDReconstructionModel on a pipeline with SimulateAnomaly + PackARCDInputs")
            rec = sample["rec_img"]["data"].float()[None]
            gt = sample["gt_clean"]["data"].float().to(rec.device)[None]
            l2 = torch.mean((rec - gt) ** 2).item()
            ssim = kornia.metrics.ssim(rec, gt, self.window).mean().item()
            self.results.append((l2, ssim))

    def compute_metrics(self, results: list) -> dict[str, float]:
        l2 = sum(r[0] for r in results) / len(results)
        ssim = sum(r[1] for r in results) / len(results)
        loss = l2 + self.ssim_weight * (1.0 - ssim)  # the thesis' reconstruction loss (Table 4.1's quantity)
        return {"RA": math.exp(-self.scale * loss), "L2": l2, "SSIM": ssim, "recon_loss": loss}
