"""U-Net discriminator with attention inside its decoder (thesis section 4.3.2, Table 4.3).

Zhang Xunfei, "Research on steel defect detection based on semantic segmentation" (Zhejiang
University master's thesis, 2023), section 4.3.2 puts CALM into the discrimination network's
decoder; Table 4.3 compares CALM with CBAM and CA alone.
:class:`~defect_plugins.seg.models.AttentionNeck` re-weights backbone *outputs*, which reaches
a U-Net decoder stage only when the head reads that very output; :class:`AttentionUNet` applies
the module *inside* mmseg's :class:`~mmseg.models.backbones.UNet`, after the chosen decoder
stages, so every later (shallower) stage works on the re-weighted features.

Levels follow mmseg's UNet outputs: level 0 is the bottleneck (deepest encoder output), level
``k`` (1 .. ``num_stages - 1``) the output of the ``k``-th decoder stage, with
``base_channels * 2 ** (num_stages - 1 - k)`` channels; the last level is what a decode head with
``in_index=num_stages - 1`` reads. Negative levels count from the end (``-1`` = last).
"""
from __future__ import annotations

from typing import Sequence

from mmseg.models.backbones import UNet
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class AttentionUNet(UNet):
    """mmseg's UNet + an attention module (``CALM``, ``CBAM``, ``CoordAttention``) after chosen decoder stages.

    Args:
        attention: config of the module; ``channels`` is filled in per level.
        attention_levels: UNet output levels to re-weight (see the module docstring); default the
            last one.
        **kwargs: :class:`~mmseg.models.backbones.UNet`'s arguments (``in_channels``,
            ``base_channels``, ``num_stages``...).
    """

    def __init__(self, attention: dict, attention_levels: Sequence[int] = (-1,), **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(attention, dict) or "type" not in attention:
            raise ValueError(f"AttentionUNet: attention must be a module config with a 'type', got {attention!r}")
        n = self.num_stages
        levels = []
        for level in attention_levels:
            k = int(level) + n if int(level) < 0 else int(level)
            if not 0 <= k < n:
                raise ValueError(f"AttentionUNet: attention_levels entry {level} out of range for num_stages={n} "
                                 f"(levels 0..{n - 1}, or -{n}..-1)")
            levels.append(k)
        if not levels:
            raise ValueError("AttentionUNet: attention_levels is empty; use mmseg's UNet for no attention")
        self.attention_levels = sorted(set(levels))
        self.level_channels = [self.base_channels * 2 ** (n - 1 - k) for k in range(n)]
        self.attentions = nn.ModuleDict({str(k): MODELS.build({**attention, "channels": self.level_channels[k]})
                                         for k in self.attention_levels})

    def _attend(self, level: int, x: Tensor) -> Tensor:
        key = str(level)
        return self.attentions[key](x) if key in self.attentions else x

    def forward(self, x: Tensor) -> list[Tensor]:
        self._check_input_divisible(x)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = self._attend(0, x)
        outs = [x]
        for level, i in enumerate(reversed(range(len(self.decoder))), start=1):
            x = self._attend(level, self.decoder[i](skips[i], x))
            outs.append(x)
        return outs
