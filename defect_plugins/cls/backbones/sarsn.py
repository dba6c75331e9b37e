"""SARSN: self-adaptive residual shrinkage network (ResNet-18/34/50/101 layout) for mmpretrain.

Sources
-------
* Zhao, Zhong, Fu, Tang, Pecht, "Deep Residual Shrinkage Networks for Fault Diagnosis",
  IEEE TII 16(7), 2020 (DRSN-CW): a residual unit whose residual branch ends with a
  channel-wise soft threshold; the threshold is ``tau_c = alpha_c * mean(|x_c|)`` with
  ``alpha_c`` from an SE-like branch (global average pooling of ``|x|``, FC, ReLU, FC, sigmoid).
* Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (SE): squeeze by global average
  pooling, excitation by FC, ReLU, FC, sigmoid, then channel-wise re-weighting.
* Huang et al., "Research on a Classification Method for Strip Steel Surface Defects Based on
  Knowledge Distillation and a Self-Adaptive Residual Shrinkage Network", Algorithms 16(11):516,
  2023 (RKD-SARSN): SE re-weighting (its Eqs. 5-7) and a "self-adaptive directional derivative
  threshold" (its Eqs. 10-11) whose slope outside the dead zone is learned per channel; its
  Fig. 6 draws the network on a 64 x 64 input (stem output 64 x 64 x 64, last stage 512 x 16 x 16
  for basic units) and its Fig. 15 ablates SE-ResNet against SARSN.

The paper's formulas are partly garbled in the published text. Four readings are implemented,
chosen with ``SARSN(shrinkage=...)`` (``AdaptiveShrinkage(variant=...)``). For a residual-branch
output ``x`` of shape (N, C, H, W), per sample n and channel c, with FC1: C -> max(C/r, 8)::

    s = mean_{h,w} |x|                 soft(x, tau) = sign(x) * max(|x| - tau, 0)

``'sarsn'`` (default; the project's reading since the first version): SE merged into the threshold
    branch (Eqs. 5-7 and 10-11 folded into one 2C-wide head)::

        z = FC2(ReLU(FC1(s)))                  (FC2: -> 2C)
        alpha = sigmoid(z[:C]),  delta = 2 * sigmoid(z[C:]) in (0, 2),  tau = alpha * s
        y = delta * soft(x, tau)

``'sarsn_se'``: explicit SE re-weighting (Eqs. 5-7) followed by the self-adaptive threshold
    (Eqs. 10-11) on the re-weighted map, each with its own FC pair::

        e  = sigmoid(FC_se2(ReLU(FC_se1(mean_{h,w} x))))      (Eq. 5 squeeze, Eq. 6 excitation)
        x' = e * x                                            (Eq. 7 scale)
        y  = 'sarsn' applied to x'                            (Eqs. 10-11)

``'delta_alpha'``: the slope ``delta`` of Eqs. 10-11 *is* the SE excitation ``alpha`` (the reading
    that matches the paper's SE-ResNet / SARSN ablation, Fig. 15): one C-wide head::

        alpha = sigmoid(FC2(ReLU(FC1(s)))),  y = alpha * soft(x, alpha * s)

``'drsn'``: DRSN-CW's soft threshold, no slope (``delta = 1``): ``y = soft(x, alpha * s)``.

In every reading ``dy/dx`` is the slope outside the threshold and 0 inside. ``delta`` of
``'sarsn'`` / ``'sarsn_se'`` is bounded to (0, 2) so the unit can neither flip the sign of a
feature nor blow it up, and it is exactly 1 at initialisation for any input: the weights *and*
the bias of the delta logits start at zero (re-applied by :meth:`SARSN.init_weights` after any
``init_cfg``), so training starts from DRSN's soft threshold while the gradient of those weights
(``dL/dz_delta x hidden``) is non-zero. The identity shortcut is added after the shrinkage and
followed by ReLU, as in mmpretrain's ``BasicBlock`` / ``Bottleneck`` (whose convolution layout,
stride placement and downsampling this backbone inherits unchanged).

Stem (``SARSN(stem=...)``)
--------------------------
``'imagenet'`` (default): mmpretrain's ResNet stem, 7x7 stride-2 convolution + 3x3 stride-2
max-pool, stage strides (1, 2, 2, 2): a 64 px input ends at 2 x 2 in the last stage.
``'paper'`` (Fig. 6): one 3x3 stride-1 convolution (+ BN + ReLU), no max-pool, and stage strides
(1, 2, 2, 1) unless ``strides`` is given: 64 x 64 x 64 after the stem and a 16 x 16 last stage
(512 x 16 x 16 for basic units). Fig. 6 fixes the two ends, not which stages downsample; (1, 2, 2, 1)
downsamples as early as those ends allow, the cheapest choice. It costs about 24x the
multiply-accumulates of the ImageNet stem at 64 px (SARSN-34: 7.2 G against 0.30 G, measured with
``experiments/neu_cls/sarsn_complexity.py``).

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
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import constant_init
from torch.utils.checkpoint import checkpoint
from mmpretrain.models.backbones.resnet import BasicBlock, Bottleneck, ResLayer, ResNet
from mmpretrain.registry import MODELS

SHRINKAGE_VARIANTS = ("sarsn", "sarsn_se", "delta_alpha", "drsn")
STEMS = ("imagenet", "paper")
PAPER_STEM_STRIDES = (1, 2, 2, 1)  # 64 px: 64 -> 64 -> 32 -> 16 -> 16 (Fig. 6's two ends)


def resolve_shrinkage(variant: str, learn_slope: bool | None = None, owner: str = "SARSN") -> str:
    """Check ``variant`` against :data:`SHRINKAGE_VARIANTS`, folding in the older ``learn_slope`` flag.

    ``learn_slope=False`` (the flag of the first version) means ``'drsn'``; it contradicts any
    variant with a slope other than ``'sarsn'`` (its old default). ``learn_slope=True`` contradicts ``'drsn'``.
    """
    if variant not in SHRINKAGE_VARIANTS:
        raise ValueError(f"{owner}: shrinkage={variant!r} is not a known variant: expected one of {SHRINKAGE_VARIANTS}")
    if learn_slope is None:
        return variant
    if learn_slope is False:
        if variant not in ("sarsn", "drsn"):
            raise ValueError(f"{owner}: learn_slope=False (= shrinkage='drsn') contradicts shrinkage={variant!r}; "
                             "set shrinkage only")
        return "drsn"
    if variant == "drsn":
        raise ValueError(f"{owner}: learn_slope=True contradicts shrinkage='drsn' (no slope); set shrinkage only")
    return variant


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------
def directional_threshold(x: torch.Tensor, tau: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """``delta * sign(x) * relu(|x| - tau)``: the self-adaptive directional derivative threshold (Eqs. 10-11).

    ``tau`` and ``delta`` broadcast against ``x`` (e.g. shape (N, C, 1, 1)); ``tau >= 0``.
    """
    return delta * torch.sign(x) * torch.relu(x.abs() - tau)


class AdaptiveShrinkage(nn.Module):
    """Channel-wise threshold ``tau`` and slope ``delta`` from SE-like branches (see the module docstring).

    Args:
        channels: number of channels C of the residual branch.
        reduction: FC1 maps C -> max(C // reduction, min_hidden) (Hu et al., SENet, use 16); the SE
            branch of ``'sarsn_se'`` uses the same width.
        min_hidden: lower bound on the hidden width, so narrow stages keep a usable branch.
        learn_slope: older flag, ``False`` = ``variant='drsn'``; leave ``None`` and set ``variant``.
        variant: ``'sarsn'`` (merged 2C head), ``'sarsn_se'`` (explicit SE, Eqs. 5-7, then the
            threshold, Eqs. 10-11), ``'delta_alpha'`` (slope = SE excitation) or ``'drsn'`` (slope 1).
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8, learn_slope: bool | None = None,
                 variant: str = "sarsn"):
        super().__init__()
        self.variant = resolve_shrinkage(variant, learn_slope, owner="AdaptiveShrinkage")
        hidden = max(channels // reduction, min_hidden)
        self.channels = channels
        self.learn_slope = self.variant in ("sarsn", "sarsn_se")  # delta has logits of its own
        if self.variant == "sarsn_se":
            self.se_fc1 = nn.Linear(channels, hidden)
            self.se_fc2 = nn.Linear(hidden, channels)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, 2 * channels if self.learn_slope else channels)
        self.reset_slope()

    @torch.no_grad()
    def reset_slope(self) -> None:
        """Zero the weights and the bias of the delta logits: ``delta = 2 * sigmoid(0) = 1`` for any input."""
        if self.learn_slope:
            self.fc2.weight[self.channels:].zero_()
            self.fc2.bias[self.channels:].zero_()

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """SE excitation ``e`` of shape (N, C, 1, 1) of ``'sarsn_se'``: squeeze (Eq. 5), excitation (Eq. 6)."""
        if self.variant != "sarsn_se":
            raise RuntimeError(f"AdaptiveShrinkage(variant={self.variant!r}) has no separate SE branch "
                               "(only 'sarsn_se' has one)")
        squeezed = x.mean(dim=(2, 3))
        return torch.sigmoid(self.se_fc2(self.relu(self.se_fc1(squeezed))))[..., None, None]

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(tau, delta)``, each of shape (N, C, 1, 1), for the tensor the threshold is applied to.

        For ``'sarsn_se'`` that tensor is the SE-re-weighted map ``excitation(x) * x`` (see :meth:`forward`).
        """
        mean_abs = x.abs().mean(dim=(2, 3))
        logits = self.fc2(self.relu(self.fc1(mean_abs)))
        alpha = torch.sigmoid(logits[:, : self.channels])
        if self.learn_slope:
            delta = 2.0 * torch.sigmoid(logits[:, self.channels :])
        elif self.variant == "delta_alpha":
            delta = alpha
        else:  # drsn
            delta = torch.ones_like(alpha)
        tau = alpha * mean_abs
        return tau[..., None, None], delta[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "sarsn_se":
            x = self.excitation(x) * x  # Eq. 7: channel-wise re-weighting
        tau, delta = self.coefficients(x)
        return directional_threshold(x, tau, delta)


def _maybe_checkpoint(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``block._inner_forward`` under activation checkpointing when ``with_cp`` asks for it."""
    if block.with_cp and x.requires_grad:
        return checkpoint(block._inner_forward, x, use_reentrant=False)
    return block._inner_forward(x)


class ShrinkageBasicBlock(BasicBlock):
    """mmpretrain ``BasicBlock`` (conv-BN-ReLU-conv-BN) with :class:`AdaptiveShrinkage` before the sum."""

    def __init__(self, *args, reduction: int = 16, shrinkage: str = "sarsn", **kwargs):
        super().__init__(*args, **kwargs)
        self.shrinkage = AdaptiveShrinkage(self.out_channels, reduction=reduction, variant=shrinkage)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.drop_path(self.shrinkage(out)) + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(_maybe_checkpoint(self, x))


class ShrinkageBottleneck(Bottleneck):
    """mmpretrain ``Bottleneck`` (1x1, 3x3, 1x1 conv with BN) with :class:`AdaptiveShrinkage` before the sum."""

    def __init__(self, *args, reduction: int = 16, shrinkage: str = "sarsn", **kwargs):
        super().__init__(*args, **kwargs)
        self.shrinkage = AdaptiveShrinkage(self.out_channels, reduction=reduction, variant=shrinkage)

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
        stem: ``'imagenet'`` (mmpretrain's 7x7/2 + max-pool, default) or ``'paper'`` (Fig. 6: 3x3
            stride-1, no max-pool, stage strides (1, 2, 2, 1) unless ``strides`` is given).
        shrinkage: ``'sarsn'`` (default), ``'sarsn_se'``, ``'delta_alpha'`` or ``'drsn'``; see the
            module docstring for the formula each follows.
        shrinkage_reduction: reduction ratio r of the threshold (and SE) branches.
        learn_slope: older flag; ``False`` is ``shrinkage='drsn'``. Leave ``None`` and set ``shrinkage``.
        zero_init_residual: start every unit near the identity (last BN scale ``residual_gamma_init``).
        residual_gamma_init: that scale (see the module docstring); must be > 0.
        **kwargs: everything mmpretrain's ``ResNet`` accepts (``out_indices``, ``frozen_stages``,
            ``strides``...); ``deep_stem=True`` cannot go with ``stem='paper'``.
    """

    arch_settings = {
        18: (ShrinkageBasicBlock, (2, 2, 2, 2)),
        34: (ShrinkageBasicBlock, (3, 4, 6, 3)),
        50: (ShrinkageBottleneck, (3, 4, 6, 3)),
        101: (ShrinkageBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth: int, stem: str = "imagenet", shrinkage: str = "sarsn", shrinkage_reduction: int = 16,
                 learn_slope: bool | None = None, zero_init_residual: bool = True, residual_gamma_init: float = 0.01,
                 **kwargs):
        if depth not in self.arch_settings:
            raise KeyError(f"invalid depth {depth} for SARSN: expected one of {sorted(self.arch_settings)}")
        if residual_gamma_init <= 0:
            raise ValueError(f"residual_gamma_init must be > 0 (0 would switch the shrinkage units off), "
                             f"got {residual_gamma_init}")
        if stem not in STEMS:
            raise ValueError(f"SARSN: stem={stem!r} is not a known stem: expected one of {STEMS}")
        if stem == "paper":
            if kwargs.get("deep_stem"):
                raise ValueError("SARSN: stem='paper' (one 3x3 stride-1 convolution) cannot go with deep_stem=True")
            kwargs.setdefault("strides", PAPER_STEM_STRIDES[: kwargs.get("num_stages", 4)])
        self.stem_type = stem
        self.shrinkage = resolve_shrinkage(shrinkage, learn_slope)
        self.shrinkage_reduction = shrinkage_reduction
        # ResNet's own exact-zero init is never used (it would switch the shrinkage off)
        super().__init__(depth=depth, zero_init_residual=False, **kwargs)
        self.residual_gamma_init = residual_gamma_init if zero_init_residual else None

    @property
    def learn_slope(self) -> bool:
        """Whether the units have a slope ``delta`` other than 1 (every variant but ``'drsn'``)."""
        return self.shrinkage != "drsn"

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.stem_type != "paper":
            super()._make_stem_layer(in_channels, stem_channels)
            return
        # Fig. 6: the stem keeps the input resolution (64 x 64 x 64 on a 64 px input)
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels, kernel_size=3, stride=1, padding=1,
                                      bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()

    def init_weights(self) -> None:
        super().init_weights()
        if isinstance(self.init_cfg, dict) and self.init_cfg.get("type") == "Pretrained":
            return
        for module in self.modules():
            if isinstance(module, AdaptiveShrinkage):
                module.reset_slope()  # delta = 1 whatever init_cfg did to the Linear layers
        if self.residual_gamma_init is not None:
            for module in self.modules():
                if isinstance(module, ShrinkageBottleneck):
                    constant_init(module.norm3, self.residual_gamma_init)
                elif isinstance(module, ShrinkageBasicBlock):
                    constant_init(module.norm2, self.residual_gamma_init)

    def make_res_layer(self, **kwargs) -> ResLayer:
        return ResLayer(reduction=self.shrinkage_reduction, shrinkage=self.shrinkage, **kwargs)
