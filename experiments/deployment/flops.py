"""FLOPs of one forward pass of a torch module (``torch.utils.flop_counter``: conv/matmul, multiply-add = 2 FLOPs).

Used to turn ``defect-bench``'s images per second into an achieved FLOP rate
(:mod:`experiments.deployment.targets`) and by the studies' complexity tables. PyTorch's counter
covers the matmul-like ops that dominate these networks; element-wise ops are not counted.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def count_gflops(module: Any, *example: Any) -> float:
    """GFLOPs of ``module(*example)`` (``torch.utils.flop_counter``: conv/matmul, multiply-add = 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        module(*example)
    return counter.get_total_flops() / 1e9


def model_gflops(module: Any, input_size: Sequence[int]) -> float:
    """GFLOPs of one forward pass at batch 1 of a module with the package's uint8 BGR NHWC input."""
    import torch

    images = torch.randint(0, 256, (1, int(input_size[0]), int(input_size[1]), 3), dtype=torch.uint8)
    return count_gflops(module, images)
