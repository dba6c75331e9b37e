"""SE-ResNet-18/34: mmpretrain's ``SEResNet`` with basic units, for the SE-ResNet / SARSN ablation.

mmpretrain's ``SEResNet`` (Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018) only has
bottleneck depths (50, 101, 152). The RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023,
Fig. 15) compares SE-ResNet with SARSN at the ResNet-34 layout too, so this module adds the two
basic-unit depths and nothing else: :class:`SEBasicBlock` is mmpretrain's ``BasicBlock`` with
mmpretrain's own ``SELayer`` (reduction 16, hidden width rounded up to a multiple of 8) placed where
mmpretrain's ``SEBottleneck`` places it, after the last BN of the residual branch and before the
identity sum. Use mmpretrain's ``SEResNet`` for depth 50 and more.
"""
from __future__ import annotations

import torch
import torch.utils.checkpoint as cp
from mmpretrain.models.backbones.resnet import BasicBlock, ResLayer
from mmpretrain.models.backbones.seresnet import SEResNet
from mmpretrain.models.utils.se_layer import SELayer
from mmpretrain.registry import MODELS


class SEBasicBlock(BasicBlock):
    """mmpretrain ``BasicBlock`` (conv-BN-ReLU-conv-BN) with an ``SELayer`` before the identity sum."""

    def __init__(self, in_channels: int, out_channels: int, se_ratio: int = 16, **kwargs):
        super().__init__(in_channels, out_channels, **kwargs)
        self.se_layer = SELayer(out_channels, ratio=se_ratio)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.se_layer(self.norm2(self.conv2(out)))
        return self.drop_path(out) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class SEResNetBasic(SEResNet):
    """SE-ResNet with basic units (depth 18 or 34); arguments and outputs as mmpretrain's ``SEResNet``.

    ResNet's ``zero_init_residual`` zeroes each unit's last BN, so each unit starts as the identity,
    exactly as in mmpretrain's ResNet-34 baseline.
    """

    arch_settings = {
        18: (SEBasicBlock, (2, 2, 2, 2)),
        34: (SEBasicBlock, (3, 4, 6, 3)),
    }

    def __init__(self, depth: int, se_ratio: int = 16, **kwargs):
        if depth not in self.arch_settings:
            raise KeyError(f"invalid depth {depth} for SEResNetBasic: expected one of {sorted(self.arch_settings)} "
                           "(use mmpretrain's SEResNet for 50, 101, 152)")
        super().__init__(depth, se_ratio=se_ratio, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(se_ratio=self.se_ratio, **kwargs)


__all__ = ["SEBasicBlock", "SEResNetBasic"]
