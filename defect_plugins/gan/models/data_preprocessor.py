"""Batching and scaling of unpaired image pairs for :class:`~defect_plugins.gan.models.CycleGAN`.

The dataset yields uint8 ``(3, H, W)`` tensors per domain; this preprocessor stacks them, moves
them to the model's device and maps ``[0, 255]`` to ``[-1, 1]``, the range of the generators'
tanh output (Zhu et al. 2017). Channel order is left as loaded (BGR from OpenCV): training,
sample grids and ``defect-migrate translate`` all read and write with OpenCV, so it never flips.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from mmpretrain.registry import MODELS


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8-valued images in ``[0, 255]`` -> float in ``[-1, 1]``."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in ``[-1, 1]`` -> uint8 in ``[0, 255]`` (rounded, clipped)."""
    return ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


@MODELS.register_module()
class UnpairedDataPreprocessor(BaseDataPreprocessor):
    """``dict(inputs=dict(a=..., b=...))`` of uint8 images -> the same dict of float batches in ``[-1, 1]``."""

    def forward(self, data: dict, training: bool = False) -> dict[str, Any]:
        data = self.cast_data(data)
        inputs = data.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError("UnpairedDataPreprocessor: expected data['inputs'] to be a dict of image batches "
                             f"per domain ('a', 'b'), got {type(inputs).__name__}")
        batches = {}
        for domain, images in inputs.items():
            if isinstance(images, Sequence):  # pseudo_collate gives a list of (3, H, W) tensors
                images = torch.stack(list(images))
            if images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"UnpairedDataPreprocessor: domain {domain!r} batch must be (N, 3, H, W), "
                                 f"got {tuple(images.shape)}")
            batches[domain] = to_unit_range(images)
        return dict(inputs=batches, data_samples=data.get("data_samples"))
