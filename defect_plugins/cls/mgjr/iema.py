"""IEMA: Integrated Efficient Multi-Attention, the student's multi-scale attention block.

MGJR (Meng et al., "Multi-grained teacher-student joint representation learning for surface
defect classification", J. Industrial Information Integration 48:100958, 2025) names an IEMA
module but only its abstract is public. IEMA is therefore built on EMA (Ouyang et al.,
"Efficient Multi-Scale Attention Module with Cross-Spatial Learning", ICASSP 2023), following
the formulas of that paper:

1. **Grouping**: the ``C`` channels are split into ``G`` groups that are processed as separate
   samples (``B*G`` x ``C/G`` x ``H`` x ``W``), which keeps the cost linear in ``C``.
2. **1x1 branch** (coordinate attention without reduction): average pooling along W and along H
   gives two direction-aware descriptors; they are concatenated, mixed by a shared 1x1
   convolution, split again and turned into sigmoid gates that re-weight the group features,
   followed by GroupNorm.
3. **3x3 branch**: a 3x3 convolution captures local multi-scale context.
4. **Cross-spatial aggregation**: each branch's globally pooled, soft-maxed channel descriptor
   is matched (matrix product) with the other branch's spatial map; the two resulting
   ``1 x H x W`` maps are summed and a sigmoid gives a pixel-wise weight for the group.

What "Integrated" adds (the abstract is silent; this is the documented choice): a third
attention kind, **channel attention** in the ECA form (Wang et al., "ECA-Net", CVPR 2020: a
1-D convolution over the pooled channel descriptor, kernel size ``|log2(C)/2 + 1/2|`` made
odd), applied to the EMA output. EMA re-weights *where* inside each group, ECA re-weights
*which* channels across groups, so the block integrates directional, cross-spatial and
channel attention at a cost of a few hundred parameters on top of EMA. It can be switched
off (``channel_attention=False``) to obtain plain EMA.

Shapes: ``(B, C, H, W) -> (B, C, H, W)`` for any ``H, W >= 1`` (pooling and GroupNorm are
size-agnostic, the 3x3 convolution is padded), so the block drops into any mmpretrain backbone.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn


def eca_kernel_size(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """ECA-Net's adaptive kernel size ``k = |log2(C)/gamma + beta/gamma|_odd``."""
    k = int(abs(math.log2(max(channels, 1)) / gamma + beta / gamma))
    return max(k if k % 2 else k + 1, 1)


@MODELS.register_module()
class IEMA(BaseModule):
    """Integrated Efficient Multi-Attention (EMA + ECA channel attention), shape-preserving.

    Args:
        channels: input (= output) channels.
        groups: channel groups ``G`` (EMA's ``factor``); ``channels`` must be divisible by it.
            When ``channels < groups`` (a thin layer), ``G`` falls back to the largest divisor
            of ``channels`` not above ``groups``.
        channel_attention: add the ECA channel gate ("integrated"); False gives plain EMA.
    """

    def __init__(self, channels: int, groups: int = 8, channel_attention: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if channels < 1:
            raise ValueError(f"IEMA: channels must be >= 1, got {channels}")
        groups = max(1, min(groups, channels))
        if channels % groups:
            raise ValueError(f"IEMA: channels ({channels}) must be divisible by groups ({groups})")
        self.channels = channels
        self.groups = groups
        cg = channels // groups
        self.conv1x1 = nn.Conv2d(cg, cg, kernel_size=1)
        self.conv3x3 = nn.Conv2d(cg, cg, kernel_size=3, padding=1)
        self.gn = nn.GroupNorm(cg, cg)
        self.channel_attention = channel_attention
        if channel_attention:
            k = eca_kernel_size(channels)
            self.eca = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != self.channels:
            raise ValueError(f"IEMA built for {self.channels} channels got an input with {c}")
        g = x.reshape(b * self.groups, c // self.groups, h, w)
        # 1x1 branch: directional pooling (H-descriptor and W-descriptor), shared 1x1 conv.
        x_h = g.mean(dim=3, keepdim=True)  # (BG, cg, H, 1)
        x_w = g.mean(dim=2, keepdim=True).transpose(2, 3)  # (BG, cg, W, 1)
        hw = self.conv1x1(torch.cat([x_h, x_w], dim=2))
        a_h, a_w = torch.split(hw, [h, w], dim=2)
        x1 = self.gn(g * a_h.sigmoid() * a_w.transpose(2, 3).sigmoid())
        # 3x3 branch.
        x2 = self.conv3x3(g)
        # Cross-spatial aggregation: pooled channel descriptor of one branch x spatial map of the other.
        bg, cg = g.shape[:2]
        d1 = F.softmax(x1.mean(dim=(2, 3)), dim=-1).unsqueeze(1)  # (BG, 1, cg)
        d2 = F.softmax(x2.mean(dim=(2, 3)), dim=-1).unsqueeze(1)
        m = torch.matmul(d1, x2.reshape(bg, cg, h * w)) + torch.matmul(d2, x1.reshape(bg, cg, h * w))
        out = (g * m.reshape(bg, 1, h, w).sigmoid()).reshape(b, c, h, w)
        if self.channel_attention:
            desc = out.mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C)
            out = out * self.eca(desc).sigmoid().transpose(1, 2).unsqueeze(-1)
        return out
