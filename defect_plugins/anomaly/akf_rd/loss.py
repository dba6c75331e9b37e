"""Distillation loss of AKF reverse distillation.

The AKF paper (Zhao et al., 2025) trains with reverse distillation's loss: the
sum over the teacher levels of ``mean(1 - cosine similarity)`` between teacher
and student features (Deng & Li, CVPR 2022). Two readings of that formula are
in use and both are offered here:

* ``"flat"`` (default): cosine between the *flattened* ``C*H*W`` vectors of each
  image, as RD's official code and anomalib's ``ReverseDistillationLoss`` do
  (so AKF-RD and anomalib's RD are trained on the same objective);
* ``"pixel"``: cosine per position over channels, averaged over positions, as
  the RD paper's equation is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from anomalib.models.image.reverse_distillation.loss import ReverseDistillationLoss
from torch import nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["AkfReverseDistillationLoss", "LossMode"]

LossMode = Literal["flat", "pixel"]


class AkfReverseDistillationLoss(nn.Module):
    """Sum over levels of ``mean(1 - cos(teacher, student))``.

    Args:
        mode: ``"flat"`` (RD code / anomalib) or ``"pixel"`` (per-position cosine).
    """

    def __init__(self, mode: LossMode = "flat") -> None:
        super().__init__()
        if mode not in {"flat", "pixel"}:
            msg = f"loss mode must be 'flat' or 'pixel', got {mode!r}."
            raise ValueError(msg)
        self.mode = mode
        self._flat = ReverseDistillationLoss()

    def forward(self, teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the scalar loss; ``teacher`` and ``student`` are per-level ``(B, C, H, W)`` maps."""
        if len(teacher) != len(student):
            msg = f"loss needs as many student levels as teacher levels, got {len(student)} and {len(teacher)}."
            raise ValueError(msg)
        # float32 even under bf16 autocast: 1 - cos of well-distilled features is ~1e-2, below bf16's resolution near 1
        teacher, student = [t.float() for t in teacher], [s.float() for s in student]
        if self.mode == "flat":
            return self._flat(list(teacher), list(student))
        total = teacher[0].new_zeros(())
        for t, s in zip(teacher, student, strict=True):
            total = total + (1 - F.cosine_similarity(t, s, dim=1)).mean()
        return total
