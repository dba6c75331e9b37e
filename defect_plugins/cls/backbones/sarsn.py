"""SARSN: self-adaptive residual shrinkage network (ResNet-18/34/50/101 layout) for mmpretrain.

Sources
-------
* Zhao, Zhong, Fu, Tang, Pecht, "Deep Residual Shrinkage Networks for Fault Diagnosis",
  IEEE TII 16(7), 2020 (DRSN-CW): a residual unit whose residual branch ends with a
  channel-wise soft threshold; the threshold is ``tau_c = alpha_c * mean(|x_c|)`` with
  ``alpha_c`` from an SE-like branch (global average pooling of ``|x|``, FC, ReLU, FC, sigmoid).
* Huang et al., "Research on a Classification Method for Strip Steel Surface Defects Based on
  Knowledge Distillation and a Self-Adaptive Residual Shrinkage Network", Algorithms 16(11):516,
  2023 (RKD-SARSN): replaces soft thresholding by a "self-adaptive directional derivative
  threshold" whose slope outside the dead zone is learned per channel.

The reading implemented here (the paper's formulas are partly garbled in the published text)
-------------------------------------------------------------------------------------------
For a residual-branch output ``x`` of shape (N, C, H, W) and each sample n and channel c::

    s      = mean_{h,w} |x|                                  (GAP of the absolute value)
    z      = FC2(ReLU(FC1(s)))                               (FC1: C -> C/r, FC2: C/r -> 2C)
    alpha  = sigmoid(z[:, :C])            in (0, 1)
    delta  = 2 * sigmoid(z[:, C:])        in (0, 2)          (= 1 when the logit is 0)
    tau    = alpha * s
    y      = delta * (x - tau)   if x >  tau
           = 0                   if |x| <= tau
           = delta * (x + tau)   if x < -tau
           = delta * sign(x) * max(|x| - tau, 0)

so ``dy/dx`` is ``delta_c`` (learned, per sample and channel) outside the threshold and 0 inside;
``delta = 1`` gives DRSN's soft threshold exactly. ``delta`` is bounded to (0, 2) so the unit can
neither flip the sign of a feature nor blow it up; the bias of the ``delta`` logits starts at 0 so
training starts from DRSN. The identity shortcut is added after the shrinkage and followed by
ReLU, as in mmpretrain's ``BasicBlock`` / ``Bottleneck`` (whose convolution layout, stride
placement and downsampling this backbone inherits unchanged).

Residual initialisation: mmpretrain's ResNet zero-initialises the last BN of every unit
(``zero_init_residual``), which keeps training stable at the large learning rates of the project's
recipe. Exactly zero cannot work here: ``x = 0`` gives ``tau = 0`` and ``|x| <= tau`` everywhere,
so no gradient would ever reach the branch. SARSN therefore sets that BN's scale to a small
``residual_gamma_init`` (0.01): each unit starts close to the identity, as in ResNet, while the
(scale-equivariant) threshold still sees a non-zero input. ``zero_init_residual=False`` keeps BN's
default scale of 1 (a first SARSN-34 run with it trained poorly at lr 0.05, see the results notes).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from mmengine.model import constant_init
from torch.utils.checkpoint import checkpoint
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck, ResLayer, ResNet
from mmpretrain.registry import MODELS


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------
def directional_threshold(x: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``delta * sign(x) * relu(|x| - tau)``: the self-adaptive directional derivative threshold.

    ``tau`` and ``delta`` broadcast against ``x`` (e.g. shape (N, C, 1, 1)); ``tau >= 0``.
    """
    return delta * torch.sign(x) * torch.relu(x.abs() - tau)


class AdaptiveShrinkage(nn.Module):
    """Channel-wise threshold ``tau`` and slope ``delta`` from an SE-like branch on ``|x|``.

    Args:
        channels: number of channels C of the residual branch.
        reduction: FC1 maps C -> max(C // reduction, min_hidden) (Hu et al., SENet, use 16).
        min_hidden: lower bound on the hidden width, so narrow stages keep a usable branch.
        learn_slope: False gives DRSN's soft threshold (``delta`` fixed to 1).
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8, learn_slope: bool = True):
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.channels = channels
        self.learn_slope = learn_slope
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, 2 * channels if learn_slope else channels)
        if learn_slope:
            with torch.no_grad():
                self.fc2.bias[channels:].zero_()  # delta = 1 at the start: plain soft threshold

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(tau, delta)``, each of shape (N, C, 1, 1)."""
        mean_abs = x.abs().mean(dim=(2, 3))
        logits = self.fc2(self.relu(self.fc1(mean_abs)))
        alpha = torch.sigmoid(logits[:, : self.channels])
        if self.learn_slope:
            delta = 2.0 * torch.sigmoid(logits[:, self.channels :])
        else:
            delta = torch.ones_like(alpha)
        tau = alpha * mean_abs
        return tau[..., None, None], delta[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tau, delta = self.coefficients(x)
        return directional_threshold(x, tau, delta)


def _maybe_checkpoint(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``block._inner_forward`` under activation checkpointing when ``with_cp`` asks for it."""
    if block.with_cp and x.requires_grad:
        return checkpoint(block._inner_forward, x, use_reentrant=False)
    return block._inner_forward(x)


class ShrinkageBasicBlock(BasicBlock):
    """mmpretrain ``BasicBlock`` (conv-BN-ReLU-conv-BN) with :class:`AdaptiveShrinkage` before the sum."""

    def __init__(self, *args, reduction: int = 16, learn_slope: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.shrinkage = AdaptiveShrinkage(self.out_channels, reduction=reduction, learn_slope=learn_slope)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.drop_path(self.shrinkage(out)) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(_maybe_checkpoint(self, x))


class ShrinkageBottleneck(Bottleneck):
    """mmpretrain ``Bottleneck`` (1x1, 3x3, 1x1 conv with BN) with :class:`AdaptiveShrinkage` before the sum."""

    def __init__(self, *args, reduction: int = 16, learn_slope: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.shrinkage = AdaptiveShrinkage(self.out_channels, reduction=reduction, learn_slope=learn_slope)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.drop_path(self.shrinkage(out)) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(_maybe_checkpoint(self, x))


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------
@MODELS.register_module()
class SARSN(ResNet):
    """Self-adaptive residual shrinkage network; arguments and outputs as mmpretrain's ``ResNet``.

    Args:
        depth: 18, 34 (basic units) or 50, 101 (bottleneck units).
        shrinkage_reduction: reduction ratio r of the threshold branch.
        learn_slope: False turns every unit into DRSN-CW soft thresholding (ablation).
        zero_init_residual: start every unit near the identity (last BN scale ``residual_gamma_init``).
        residual_gamma_init: that scale (see the module docstring); must be > 0.
        **kwargs: everything mmpretrain's ``ResNet`` accepts (``out_indices``, ``frozen_stages``...).
    """

    arch_settings = {
        18: (ShrinkageBasicBlock, (2, 2, 2, 2)),
        34: (ShrinkageBasicBlock, (3, 4, 6, 3)),
        50: (ShrinkageBottleneck, (3, 4, 6, 3)),
        101: (ShrinkageBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth: int, shrinkage_reduction: int = 16, learn_slope: bool = True,
                 zero_init_residual: bool = True, residual_gamma_init: float = 0.01, **kwargs):
        if depth not in self.arch_settings:
            raise KeyError(f"invalid depth {depth} for SARSN: expected one of {sorted(self.arch_settings)}")
        if residual_gamma_init <= 0:
            raise ValueError(f"residual_gamma_init must be > 0 (0 would switch the shrinkage units off), got {residual_gamma_init}")
        self.shrinkage_reduction = shrinkage_reduction
        self.learn_slope = learn_slope
        # ResNet's own exact-zero init is never used (it would switch the shrinkage off)
        super().__init__(depth=depth, zero_init_residual=False, **kwargs)
        self.residual_gamma_init = residual_gamma_init if zero_init_residual else None

    def init_weights(self) -> None:
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get("type") == "Pretrained":
            return
        if self.residual_gamma_init is not None:
            for module in self.modules():
                if isinstance(module, ShrinkageBottleneck):
                    constant_init(module.norm3, self.residual_gamma_init)
                elif isinstance(module, ShrinkageBasicBlock):
                    constant_init(module.norm2, self.residual_gamma_init)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(reduction=self.shrinkage_reduction, learn_slope=self.learn_slope, **kwargs)


# --------------------------------------------------------------------------------------------
# factory functions
# --------------------------------------------------------------------------------------------
def sarsn18(**kwargs) -> SARSN:
    return SARSN(depth=18, **kwargs)


def sarsn34(**kwargs) -> SARSN:
    return SARSN(depth=34, **kwargs)


def sarsn50(**kwargs) -> SARSN:
    return SARSN(depth=50, **kwargs)


def sarsn101(**kwargs) -> SARSN:
    return SARSN(depth=101, **kwargs)
