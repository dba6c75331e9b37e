"""Multi-level teacher feature fusion for AKF reverse distillation.

Two fusions of the teacher's levels ``f_1 .. f_L`` (shallow to deep):

* :class:`ConcatFusion` -- the "traditional" fusion of reverse distillation
  (Deng & Li, CVPR 2022; anomalib ``reverse_distillation/components/bottleneck.py``,
  class ``OCBE``): every shallower level is brought to the deepest level's size
  by strided 3x3 conv + BN + ReLU and all levels are concatenated at once.
* :class:`AsymptoticKnowledgeFusion` -- AKF from Zhao, Wang, Zhu, Xue (2025),
  "渐进式融合知识蒸馏的工业异常检测方法" (asymptotic fusion knowledge
  distillation), after AFPN (Yang et al., 2024) but one-directional: the
  running result is fused with the *adjacent* deeper level only, step by step
  from shallow to deep; non-adjacent levels never meet directly.

One AKF step ``k`` (``k = 1 .. L-1``, ``r_1 = f_1``)::

    a = CBR_down(r_k)        # 3x3 conv stride H_k/H_{k+1} + BN + ReLU -> shape of f_{k+1}
    b = CBR_lat(f_{k+1})     # 3x3 conv stride 1 + BN + ReLU          -> shape of f_{k+1}
    (w_a, w_b) = softmax over the two inputs of per-position logits
    r_{k+1} = w_a * a + w_b * b

The paper's fusion equations are lost from the text we have, so this is a reconstruction.
``lateral=False`` (model argument ``akf_lateral``) is the more literal reading: the raw deeper
level is weighted as it is (``b = f_{k+1}``) and only the running result is resampled; it has no
``CBR_lat`` (for wide_resnet50_2 the two lateral units hold 11.8 M parameters). The default
(``lateral=True``) is the reading the project was first built and measured with.

Three ways to obtain the weights (``weight_mode``):

* ``"positional"`` (**the paper's** ``W_n``; called ``"fixed"`` before, a name still accepted
  with a ``DeprecationWarning``; the weights are *learned*, only not input-conditioned):
  learnable logits with the shape ``C x H x W`` of ``f_{k+1}`` for each input of the step, so
  the contribution of each level is set per channel and per pixel. They tie the model to one
  input size; a different size raises a ``ValueError`` that names the expected size.
* ``"adaptive"`` (input-conditioned, AFPN/ASFF style): a 1x1 conv compresses each input to a
  few channels, a 1x1 conv on their concatenation gives one logit map per input
  (``1 x H x W``). Works at any input size.
* ``"adaptive_channels"``: as ``"adaptive"`` but the head gives ``C`` logit maps per input
  (``C x H x W``, the shape of the paper's ``W_n``, now computed from the input). Any size.

The softmax keeps the two weights of a position summing to one (as in AFPN's
adaptive spatial fusion, Yang et al., 2024), which keeps the fused map's scale stable; with
zero-initialised logits every step starts as the plain average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import warnings

import torch
from torch import nn

__all__ = ["WEIGHT_MODES", "AsymptoticKnowledgeFusion", "ConcatFusion", "FusionStep", "conv_bn_relu",
           "normalize_weight_mode"]

WeightMode = Literal["positional", "adaptive", "adaptive_channels", "fixed"]
WEIGHT_MODES = ("positional", "adaptive", "adaptive_channels")
_DEPRECATED_WEIGHT_MODES = {"fixed": "positional"}


def normalize_weight_mode(weight_mode: str) -> str:
    """Return the current name of ``weight_mode``; ``"fixed"`` gives ``"positional"`` and a ``DeprecationWarning``.

    Raises:
        ValueError: naming the accepted modes, for any other name.
    """
    if weight_mode in _DEPRECATED_WEIGHT_MODES:
        new = _DEPRECATED_WEIGHT_MODES[weight_mode]
        warnings.warn(
            f"akf_weights={weight_mode!r} is deprecated, use {new!r} (same model, same state dict: the per-position "
            "weights are learnable, not fixed).",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    if weight_mode not in WEIGHT_MODES:
        msg = f"weight_mode must be one of {list(WEIGHT_MODES)} (or the deprecated 'fixed'), got {weight_mode!r}."
        raise ValueError(msg)
    return weight_mode


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (no bias) + BatchNorm + ReLU, the resampling unit of both fusions."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FusionStep(nn.Module):
    """Fuse the running result with the adjacent deeper level (one AKF step).

    Args:
        running_channels: Channels of the running result ``r_k``.
        deeper_channels: Channels of the deeper level ``f_{k+1}``; also the
            channels of the fused output.
        stride: Spatial ratio between ``r_k`` and ``f_{k+1}`` (2 for ResNets).
        weight_mode: ``"positional"`` (paper), ``"adaptive"`` or ``"adaptive_channels"``
            (input-conditioned, ``1`` or ``C`` logit maps per input); ``"fixed"`` is the
            deprecated name of ``"positional"``.
        deeper_size: ``(H, W)`` of ``f_{k+1}``; required for ``"positional"``.
        compress_channels: Channels of the 1x1 compression in the adaptive
            modes (AFPN uses 8).
        lateral: 3x3 conv + BN + ReLU on the deeper level before weighting (default);
            ``False`` weights the raw deeper level (the literal reading).
    """

    def __init__(
        self,
        running_channels: int,
        deeper_channels: int,
        stride: int,
        weight_mode: WeightMode = "positional",
        deeper_size: tuple[int, int] | None = None,
        compress_channels: int = 8,
        lateral: bool = True,
    ) -> None:
        super().__init__()
        weight_mode = normalize_weight_mode(weight_mode)
        self.down = conv_bn_relu(running_channels, deeper_channels, stride=stride)
        # nn.Identity keeps the literal variant's state dict free of lateral tensors
        self.lateral = conv_bn_relu(deeper_channels, deeper_channels, stride=1) if lateral else nn.Identity()
        self.weight_mode = weight_mode
        if weight_mode == "positional":
            if deeper_size is None:
                msg = "FusionStep with weight_mode='positional' needs deeper_size=(H, W) of the deeper level."
                raise ValueError(msg)
            self.deeper_size = (int(deeper_size[0]), int(deeper_size[1]))
            # W_n of the paper: one C x H x W logit tensor per input of the step.
            self.weight_logits = nn.Parameter(torch.zeros(2, deeper_channels, *self.deeper_size))
        else:  # "adaptive" (1 logit map per input) or "adaptive_channels" (C per input)
            self.deeper_size = None
            self.maps_per_input = 1 if weight_mode == "adaptive" else deeper_channels
            self.compress_a = nn.Sequential(
                nn.Conv2d(deeper_channels, compress_channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(compress_channels),
                nn.ReLU(inplace=True),
            )
            self.compress_b = nn.Sequential(
                nn.Conv2d(deeper_channels, compress_channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(compress_channels),
                nn.ReLU(inplace=True),
            )
            self.weight_head = nn.Conv2d(2 * compress_channels, 2 * self.maps_per_input, kernel_size=1)

    def level_weights(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the per-position weights of the running result and of the deeper level."""
        if self.weight_mode == "positional":
            weights = torch.softmax(self.weight_logits, dim=0)
            return weights[0].unsqueeze(0), weights[1].unsqueeze(0)
        logits = self.weight_head(torch.cat([self.compress_a(a), self.compress_b(b)], dim=1))
        if self.maps_per_input == 1:
            weights = torch.softmax(logits, dim=1)
            return weights[:, 0:1], weights[:, 1:2]
        # (N, 2C, H, W) -> (N, 2, C, H, W): softmax over the two inputs per channel and position
        weights = torch.softmax(logits.unflatten(1, (2, self.maps_per_input)), dim=1)
        return weights[:, 0], weights[:, 1]

    def forward(self, running: torch.Tensor, deeper: torch.Tensor) -> torch.Tensor:
        """Fuse ``running`` (level k result) with ``deeper`` (level k+1)."""
        a = self.down(running)
        b = self.lateral(deeper)
        if a.shape[-2:] != b.shape[-2:]:
            msg = (
                f"AKF fusion step: the running result resamples to {tuple(a.shape[-2:])} but the deeper level is "
                f"{tuple(b.shape[-2:])}; the input height and width must be multiples of the backbone's reduction."
            )
            raise ValueError(msg)
        if self.deeper_size is not None and tuple(b.shape[-2:]) != self.deeper_size:
            msg = (
                f"AKF positional (per-position) weights were built for a deeper-level map of {self.deeper_size}, "
                f"got {tuple(b.shape[-2:])}: feed images of the size the model was built for "
                "(image_size), or use akf_weights='adaptive' for variable sizes."
            )
            raise ValueError(msg)
        w_a, w_b = self.level_weights(a, b)
        return w_a * a + w_b * b


class AsymptoticKnowledgeFusion(nn.Module):
    """Progressive shallow-to-deep fusion of adjacent teacher levels (AKF).

    Args:
        channels: Channels of the teacher levels, shallow first (``encoder.out_dims``).
        reductions: Down-sampling factor of each level (``encoder.reductions``), e.g. ``[4, 8, 16]``.
        weight_mode: ``"positional"`` -- the paper's learnable ``C x H x W`` weight per
            level and position (needs ``image_size``); ``"adaptive"`` /
            ``"adaptive_channels"`` -- ``1 x H x W`` / ``C x H x W`` weights computed from
            the features (AFPN style), any input size. ``"fixed"``: deprecated name of
            ``"positional"``.
        image_size: ``(H, W)`` of the model input; required for ``"positional"``.
        lateral: conv on the deeper level of each step (default) or none (literal reading).

    The output has the deepest level's channels and size.
    """

    def __init__(
        self,
        channels: Sequence[int],
        reductions: Sequence[int],
        weight_mode: WeightMode = "positional",
        image_size: tuple[int, int] | None = None,
        lateral: bool = True,
    ) -> None:
        super().__init__()
        weight_mode = normalize_weight_mode(weight_mode)
        if len(channels) < 2 or len(channels) != len(reductions):
            msg = (
                f"AKF needs at least two levels with one reduction each, "
                f"got channels={channels}, reductions={reductions}."
            )
            raise ValueError(msg)
        if weight_mode == "positional" and image_size is None:
            msg = "AsymptoticKnowledgeFusion with weight_mode='positional' (the paper's) needs image_size=(H, W)."
            raise ValueError(msg)
        self.channels = [int(c) for c in channels]
        self.reductions = [int(r) for r in reductions]
        self.out_channels = self.channels[-1]
        self.steps = nn.ModuleList()
        for k in range(len(self.channels) - 1):
            stride = self.reductions[k + 1] // self.reductions[k]
            deeper_size = None
            if image_size is not None:
                deeper_size = (image_size[0] // self.reductions[k + 1], image_size[1] // self.reductions[k + 1])
            self.steps.append(
                FusionStep(self.channels[k], self.channels[k + 1], stride, weight_mode, deeper_size, lateral=lateral),
            )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse ``features`` (shallow first) into one map of the deepest level's shape."""
        if len(features) != len(self.steps) + 1:
            msg = f"AKF was built for {len(self.steps) + 1} teacher levels, got {len(features)}."
            raise ValueError(msg)
        running = features[0]
        for step, deeper in zip(self.steps, features[1:], strict=True):
            running = step(running, deeper)
        return running


class ConcatFusion(nn.Module):
    """Traditional reverse-distillation fusion: resample all levels to the deepest, concatenate.

    Level ``k`` goes through ``log2(r_L / r_k)`` strided 3x3 conv + BN + ReLU
    units whose channels double each time (as in RD's ``OCBE``: for ResNets
    ``C_k -> 2 C_k -> 4 C_k = C_L``), the deepest level is passed as is, and
    the results are concatenated: ``L * C_L`` channels at the deepest size.
    """

    def __init__(self, channels: Sequence[int], reductions: Sequence[int]) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        self.reductions = [int(r) for r in reductions]
        self.out_channels = self.channels[-1] * len(self.channels)
        self.branches = nn.ModuleList()
        for channel, reduction in zip(self.channels[:-1], self.reductions[:-1], strict=True):
            ratio = self.reductions[-1] // reduction
            units: list[nn.Module] = []
            current = channel
            while ratio > 1:
                nxt = min(current * 2, self.channels[-1]) if ratio > 2 else self.channels[-1]  # noqa: PLR2004
                units.append(conv_bn_relu(current, nxt, stride=2))
                current, ratio = nxt, ratio // 2
            self.branches.append(nn.Sequential(*units))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate the resampled levels along channels."""
        resampled = [branch(feature) for branch, feature in zip(self.branches, features[:-1], strict=True)]
        return torch.cat([*resampled, features[-1]], dim=1)
