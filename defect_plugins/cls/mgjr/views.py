"""The noisy view of a batch, shared by the MGJR classifier and its noise-augmentation control.

MGJR's AGTS (Meng et al., J. Industrial Information Integration 48:100958, 2025) shows the
student a corrupted copy of each image. How the two views go through the student is the
project's choice (the abstract does not say):

* **joint** (default): clean and noisy images in one concatenated batch, one forward pass (as
  AugMix, Hendrycks et al., ICLR 2020). BatchNorm then normalises both views with the
  statistics of the mixed batch, and its running statistics - the ones used at test time, on
  clean images - average clean and noisy images.
* **split BN** (``split_bn=True``): two passes; the noisy one runs with every BatchNorm layer
  of the student switched to a second set of running statistics (separate BN statistics per
  input distribution, as AdvProp's auxiliary BN, Xie et al., CVPR 2020). The affine weight and
  bias stay shared (the project's choice: one set of learned parameters, only the statistics
  differ), so the test-time model is unchanged in size and its running statistics see clean
  images only. The second set is kept in non-persistent buffers: in training BN normalises
  with batch statistics, so the noisy running statistics never enter a loss, and checkpoints
  (and exports) stay those of the plain student. Use :meth:`NoisyViewMixin.noisy_bn` to evaluate
  with them.

The AGTS noise acts in 0-255 pixel space, so the classifier must be able to undo the data
preprocessor's normalisation; a preprocessor that does not say how it normalised is an error,
raised when the model is built.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

STUDENT_PARTS = ("backbone", "neck", "head")


class NormalisationError(TypeError):
    """The data preprocessor does not expose how it normalised the batch (needed to add pixel-space noise)."""


class _BNStats(nn.Module):
    """A second set of running statistics for one BatchNorm layer (non-persistent buffers)."""

    def __init__(self, bn: _BatchNorm):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros_like(bn.running_mean), persistent=False)
        self.register_buffer("running_var", torch.ones_like(bn.running_var), persistent=False)
        self.register_buffer("num_batches_tracked", torch.zeros_like(bn.num_batches_tracked), persistent=False)


def _swap(bn: _BatchNorm, stats: _BNStats) -> None:
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        bn._buffers[key], stats._buffers[key] = stats._buffers[key], bn._buffers[key]


def _slice(feats, start: int, stop: int | None):
    if isinstance(feats, (tuple, list)):
        return tuple(f[start:stop] for f in feats)
    return feats[start:stop]


def pixel_normalisation(preprocessor, owner: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(mean, std)`` the preprocessor normalised with, or ``(None, None)`` when it did not normalise.

    Raises NormalisationError when the preprocessor does not say (no ``_enable_normalize``, the
    flag of mmpretrain's ``ClsDataPreprocessor``), or says it normalised but has no mean/std.
    """
    name = type(preprocessor).__name__
    if not hasattr(preprocessor, "_enable_normalize"):
        raise NormalisationError(
            f"{owner}: data_preprocessor {name} has no '_enable_normalize' attribute; expected mmpretrain's "
            f"ClsDataPreprocessor (or a subclass) with 'mean'/'std' buffers, so that the AGTS noise can be added "
            f"in 0-255 pixel space")
    if not preprocessor._enable_normalize:
        return None, None
    mean, std = getattr(preprocessor, "mean", None), getattr(preprocessor, "std", None)
    if not isinstance(mean, torch.Tensor) or not isinstance(std, torch.Tensor):
        raise NormalisationError(
            f"{owner}: data_preprocessor {name} normalises (_enable_normalize=True) but has no 'mean'/'std' tensors; "
            f"expected (C, 1, 1) buffers as mmpretrain's ClsDataPreprocessor registers them")
    return mean, std


class NoisyViewMixin:
    """AGTS noisy view for an mmpretrain ``ImageClassifier`` subclass (call :meth:`init_noisy_view` in ``__init__``)."""

    def init_noisy_view(self, noise: dict | None, agts_fraction: float, split_bn: bool) -> None:
        owner = type(self).__name__
        self.noise = MODELS.build(noise if noise is not None else dict(type="AGTSNoise"))
        if not 0.0 < agts_fraction <= 1.0:
            raise ValueError(f"{owner}: agts_fraction must lie in (0, 1], got {agts_fraction}")
        self.agts_fraction = float(agts_fraction)
        pixel_normalisation(self.data_preprocessor, owner)  # fail now, not at the first training step
        self.split_bn = bool(split_bn)
        self.noisy_bn_stats = None
        if self.split_bn:
            layers = {name: module for name, module in self._student_batchnorms()}
            if not layers:
                raise ValueError(f"{owner}: split_bn=True but the student has no BatchNorm layer with running "
                                 f"statistics")
            self.noisy_bn_stats = nn.ModuleDict({name.replace(".", "__"): _BNStats(bn) for name, bn in layers.items()})

    def _student_batchnorms(self) -> Iterator[tuple[str, _BatchNorm]]:
        for part in STUDENT_PARTS:
            module = getattr(self, part, None)
            if module is None:
                continue
            for name, child in module.named_modules():
                if isinstance(child, _BatchNorm) and child.track_running_stats and child.running_mean is not None:
                    yield f"{part}.{name}" if name else part, child

    @contextlib.contextmanager
    def noisy_bn(self) -> Iterator[None]:
        """Within the block the student's BatchNorm layers use the noisy view's running statistics
        (a no-op without ``split_bn``)."""
        if self.noisy_bn_stats is None:
            yield
            return
        pairs = [(self.get_submodule(key.replace("__", ".")), stats) for key, stats in self.noisy_bn_stats.items()]
        for bn, stats in pairs:
            _swap(bn, stats)
        try:
            yield
        finally:
            for bn, stats in pairs:
                _swap(bn, stats)

    def num_noisy(self, batch: int) -> int:
        """How many images of a batch of ``batch`` get a noisy view (the first ones)."""
        return max(1, int(round(self.agts_fraction * batch)))

    def make_noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        """The student's AGTS view: ``inputs`` (as the data preprocessor left them) corrupted in pixel space."""
        mean, std = pixel_normalisation(self.data_preprocessor, type(self).__name__)
        with torch.no_grad():
            return self.noise(inputs, mean, std)

    def student_views(self, inputs: torch.Tensor, noisy: torch.Tensor | None):
        """Student features of the clean batch and of the noisy views (None without them)."""
        if noisy is None:
            return self.extract_feat(inputs), None
        if self.split_bn:
            clean = self.extract_feat(inputs)
            with self.noisy_bn():
                return clean, self.extract_feat(noisy)
        feats = self.extract_feat(torch.cat([inputs, noisy], dim=0))
        batch = inputs.shape[0]
        return _slice(feats, 0, batch), _slice(feats, batch, None)
