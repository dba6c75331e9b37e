"""MGJR student: a ResNet-style CNN with IEMA in every residual block, GL-Attention after the
late stages, and multi-scale fusion of the stage outputs.

The MGJR abstract (Meng et al., J. Industrial Information Integration 48:100958, 2025) gives
the student's ingredients (a CNN "enhanced with IEMA and GL-Attention, extracting and fusing
multi-scale features") and its size (21.14 M parameters, 2.86 GFLOPs), not its layout. The
abstract does not state the input size of that FLOPs figure; 224x224 is the project's
assumption (the usual ImageNet-style size, and the one at which a ResNet-34-class CNN costs
about 3 GFLOPs). The layout chosen here, and why:

* **Body**: ResNet basic blocks (He et al., CVPR 2016) with ResNet-34 widths (64, 128, 256,
  512) - the standard light CNN of that size class (ResNet-34: 21.8 M, 3.6 G).
* **IEMA** on the residual branch of every block, before the addition - the placement EMA
  (Ouyang et al., ICASSP 2023) and SE-Net use in ResNets.
* **GL-Attention** after the last two stages (14x14 and 7x7 at a 224 input), where global
  context is cheap and semantically meaningful.
* **Multi-scale fusion**: the outputs of stages 2 and 3 are average-pooled to the last stage's
  grid, projected by 1x1 convolution + BN (scale initialised to zero, so fusion starts as a
  no-op) and added to the last stage's output - a light FPN-style top-down-free fusion that
  gives the pooled feature both mid-level texture and high-level shape.
* **Depths** ``(1, 3, 4, 3)``: ResNet-34's ``(3, 4, 6, 3)`` trimmed where FLOPs are spent
  and parameters are not (the 56x56 stage), so that the whole classifier meets the paper's
  budget at the assumed 224x224: measured with ``mmengine.analysis`` (``experiments/mgjr/mgjr_complexity.py``),
  see the MGJR section of ``docs/RESULTS.md`` ("Student size").

``use_iema=False`` / ``gl_stages=()`` give the ablations (no IEMA, no GL-Attention).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from defect_plugins.cls.mgjr.gl_attention import GLAttention
from defect_plugins.cls.mgjr.iema import IEMA


class IEMABasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with optional IEMA on the residual branch."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, use_iema: bool = True,
                 iema_groups: int = 8, iema_channel_attention: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.attn = IEMA(out_channels, iema_groups, iema_channel_attention) if use_iema else nn.Identity()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.attn(self.bn2(self.conv2(out)))
        return F.relu(out + identity, inplace=True)


@MODELS.register_module()
class MGJRStudent(BaseBackbone):
    """The MGJR student CNN (mmpretrain backbone; returns a tuple of feature maps).

    Args:
        depths: basic blocks per stage.
        widths: channels per stage.
        stem_channels: channels of the 7x7 stride-2 stem (followed by 3x3 max-pooling).
        use_iema: IEMA in every block (False: plain basic blocks - the "no IEMA" ablation).
        iema_groups: IEMA channel groups.
        iema_channel_attention: IEMA's ECA gate (False: plain EMA).
        gl_stages: indices of the stages followed by GL-Attention (``()``: the "no GL" ablation).
        gl_heads / gl_pool_size: GL-Attention heads and pooled key/value grid.
        fuse_stages: earlier stages fused into the last stage's output (``()``: no fusion).
        out_indices: stages returned; the last stage index returns the *fused* map.
    """

    def __init__(self, depths: Sequence[int] = (1, 3, 4, 3), widths: Sequence[int] = (64, 128, 256, 512),
                 stem_channels: int = 64, use_iema: bool = True, iema_groups: int = 8,
                 iema_channel_attention: bool = True, gl_stages: Sequence[int] = (2, 3), gl_heads: int = 8,
                 gl_pool_size: int = 7, fuse_stages: Sequence[int] = (1, 2), out_indices: Sequence[int] = (3, ),
                 init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg=init_cfg)
        if len(depths) != len(widths):
            raise ValueError(f"MGJRStudent: depths {tuple(depths)} and widths {tuple(widths)} differ in length")
        n = len(depths)
        for name, idx in (("gl_stages", gl_stages), ("fuse_stages", fuse_stages), ("out_indices", out_indices)):
            bad = [i for i in idx if not 0 <= i < n]
            if bad:
                raise ValueError(f"MGJRStudent: {name} {tuple(idx)} outside 0..{n - 1}")
        if n - 1 in fuse_stages:
            raise ValueError(f"MGJRStudent: fuse_stages {tuple(fuse_stages)} must not contain the last stage {n - 1}")
        self.out_indices = tuple(out_indices)
        self.fuse_stages = tuple(fuse_stages)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1))
        self.stages = nn.ModuleList()
        self.gl = nn.ModuleDict()
        in_ch = stem_channels
        for i, (depth, width) in enumerate(zip(depths, widths)):
            blocks = [IEMABasicBlock(in_ch if j == 0 else width, width, 2 if (j == 0 and i > 0) else 1, use_iema,
                                     iema_groups, iema_channel_attention) for j in range(depth)]
            self.stages.append(nn.Sequential(*blocks))
            if i in gl_stages:
                self.gl[str(i)] = GLAttention(width, num_heads=gl_heads, pool_size=gl_pool_size)
            in_ch = width
        self.fuse = nn.ModuleDict()
        for i in self.fuse_stages:
            proj = nn.Sequential(nn.Conv2d(widths[i], widths[-1], 1, bias=False), nn.BatchNorm2d(widths[-1]))
            self.fuse[str(i)] = proj
        self.out_channels = tuple(widths[i] for i in self.out_indices)
        self.num_features = widths[-1]

    def init_weights(self):
        super().init_weights()
        # Zero-init the last BN of every block and of the fusion projections / GL fuse: the network
        # starts close to a plain (shallower) ResNet, the "zero-init residual" recipe.
        for stage in self.stages:
            for block in stage:
                nn.init.zeros_(block.bn2.weight)
        for proj in self.fuse.values():
            nn.init.zeros_(proj[1].weight)
        for gl in self.gl.values():
            nn.init.zeros_(gl.fuse_bn.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if str(i) in self.gl:
                x = self.gl[str(i)](x)
            feats.append(x)
        last = feats[-1]
        for i in self.fuse_stages:
            pooled = F.adaptive_avg_pool2d(feats[i], last.shape[-2:])
            last = last + self.fuse[str(i)](pooled)
        feats[-1] = last
        return tuple(feats[i] for i in self.out_indices)
