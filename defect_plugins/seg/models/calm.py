"""Attention modules for the ARCD discrimination network: CALM, and CBAM / CA for comparison.

* :class:`ChannelAttention` and :class:`SpatialAttention`, chained in :class:`CBAM`, follow
  Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018: a shared MLP over the
  average- and max-pooled channel descriptors; a 7x7 convolution over the channel-wise mean and
  max maps.
* :class:`CoordAttention` follows Hou et al., "Coordinate Attention for Efficient Mobile Network
  Design", CVPR 2021: pooling along X and along Y, a shared 1x1 conv + BN + h-swish, then one
  sigmoid gate per direction.
* :class:`CALM` (Zhang Xunfei, Zhejiang University master's thesis 2023, section 4.3.2; ablated
  against CBAM and CA in Table 4.3) is CBAM's channel attention followed by coordinate
  attention, so the channel re-weighting uses both pooled statistics and the positional gates
  keep the location of thin defects such as edge cracks.
* :class:`AttentionNeck` applies one such module to each selected backbone output, which puts
  the attention into any mmseg backbone (UNet, ResNetV1c...) without changing the backbone.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class ChannelAttention(BaseModule):
    """CBAM channel attention: ``sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``."""

    def __init__(self, channels: int, reduction: int = 16, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


@MODELS.register_module()
class SpatialAttention(BaseModule):
    """CBAM spatial attention: a ``k x k`` conv over channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


@MODELS.register_module()
class CBAM(BaseModule):
    """Channel attention then spatial attention (Woo et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))


@MODELS.register_module()
class CoordAttention(BaseModule):
    """Coordinate attention (Hou et al. 2021): direction-aware gates along H and W."""

    def __init__(self, channels: int, reduction: int = 32, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        hidden = max(8, channels // reduction)
        self.shared = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.Hardswish(inplace=True))
        self.gate_h = nn.Conv2d(hidden, channels, 1)
        self.gate_w = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pooled_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1): pooled along X
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1): pooled along Y
        y = self.shared(torch.cat([pooled_h, pooled_w], dim=2))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = torch.sigmoid(self.gate_h(y_h))  # (B, C, H, 1)
        a_w = torch.sigmoid(self.gate_w(y_w.transpose(2, 3)))  # (B, C, 1, W)
        return x * a_h * a_w


@MODELS.register_module()
class CALM(BaseModule):
    """Thesis' CALM: CBAM channel attention (avg + max pooling), then coordinate attention."""

    def __init__(self, channels: int, channel_reduction: int = 16, coord_reduction: int = 32,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.channel = ChannelAttention(channels, channel_reduction)
        self.coord = CoordAttention(channels, coord_reduction)

    def forward(self, x: Tensor) -> Tensor:
        return self.coord(self.channel(x))


@MODELS.register_module()
class AttentionNeck(BaseModule):
    """Apply an attention module (``CALM``, ``CBAM``, ``CoordAttention``...) to backbone outputs.

    Args:
        in_channels: channels of every backbone output, in order.
        attention: config of the module; ``channels`` is filled in per level.
        levels: indices of the outputs to re-weight (default: all); the others pass unchanged.
    """

    def __init__(self, in_channels: Sequence[int], attention: dict, levels: Sequence[int] | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.levels = list(range(len(self.in_channels))) if levels is None else [int(i) for i in levels]
        for i in self.levels:
            if not 0 <= i < len(self.in_channels):
                raise ValueError(f"AttentionNeck: level {i} out of range for {len(self.in_channels)} in_channels")
        self.blocks = nn.ModuleDict({str(i): MODELS.build({**attention, "channels": self.in_channels[i]})
                                     for i in self.levels})

    def forward(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"AttentionNeck: got {len(inputs)} feature maps, configured for {len(self.in_channels)}")
        return [self.blocks[str(i)](x) if str(i) in self.blocks else x for i, x in enumerate(inputs)]
