"""The bottleneck of AKF reverse distillation: fusion, then embedding.

It replaces reverse distillation's ``OCBE`` (anomalib
``reverse_distillation/components/bottleneck.py``). The four settings of the
AKF paper's ablation (Zhao et al., 2025, Table 3) are the four combinations of

* ``fusion``: ``"concat"`` (traditional RD fusion) or ``"akf"`` (asymptotic knowledge fusion);
* ``oce``: ``True`` (residual one-class embedding) or ``False`` (plain strided resampling).

``fusion="concat", oce=True`` is structurally reverse distillation's OCBE;
``fusion="akf", oce=True`` is the paper's model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .embedding import OneClassEmbedding, ResampleEmbedding, block_for_backbone
from .fusion import AsymptoticKnowledgeFusion, ConcatFusion, WeightMode

__all__ = ["AkfBottleneck", "FusionType"]

FusionType = Literal["akf", "concat"]


class AkfBottleneck(nn.Module):
    """Fuse the teacher's levels and embed them into the decoder's input.

    Args:
        backbone: Teacher backbone name; picks the residual block type as RD does.
        channels: Teacher level channels, shallow first (``encoder.out_dims``).
        reductions: Teacher level reductions (``encoder.reductions``).
        decoder_channels: Channels the decoder expects as input.
        fusion: ``"akf"`` or ``"concat"``.
        oce: Use the residual one-class embedding (``True``) or a plain resampling block.
        akf_weights: ``"positional"`` (paper), ``"adaptive"`` or ``"adaptive_channels"``
            (``"fixed"``: deprecated name of ``"positional"``); only for ``fusion="akf"``.
        image_size: Model input ``(H, W)``; needed by ``akf_weights="positional"``.
        akf_lateral: conv on the deeper level of each AKF step (default) or the literal
            reading without it (see ``fusion.py``); only for ``fusion="akf"``.
    """

    def __init__(
        self,
        backbone: str,
        channels: Sequence[int],
        reductions: Sequence[int],
        decoder_channels: int,
        fusion: FusionType = "akf",
        oce: bool = True,
        akf_weights: WeightMode = "positional",
        image_size: tuple[int, int] | None = None,
        akf_lateral: bool = True,
    ) -> None:
        super().__init__()
        if fusion == "akf":
            self.fusion: nn.Module = AsymptoticKnowledgeFusion(
                channels, reductions, akf_weights, image_size, lateral=akf_lateral,
            )
        elif fusion == "concat":
            self.fusion = ConcatFusion(channels, reductions)
        else:
            msg = f"fusion must be 'akf' or 'concat', got {fusion!r}."
            raise ValueError(msg)
        fused_channels = self.fusion.out_channels
        if oce:
            block, num_blocks = block_for_backbone(backbone)
            if 512 * block.expansion != decoder_channels:
                msg = (
                    f"The OCE for backbone {backbone!r} outputs {512 * block.expansion} channels but its decoder "
                    f"expects {decoder_channels}."
                )
                raise ValueError(msg)
            self.embedding: nn.Module = OneClassEmbedding(fused_channels, block, num_blocks)
        else:
            self.embedding = ResampleEmbedding(fused_channels, decoder_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Teacher levels (shallow first) -> decoder input."""
        return self.embedding(self.fusion(features)).contiguous()
