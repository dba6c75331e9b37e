"""Parameter counts without unused modules ("live" parameters).

A plain ``sum(p.numel() for p in model.parameters())`` counts modules that are built but never
run. anomalib 2.7's reverse distillation is one case: its ``OCBE`` builds ``conv4`` / ``bn4``
(anomalib ``reverse_distillation/components/bottleneck.py``) that its ``forward`` never calls,
so an AKF-RD vs RD comparison made that way credits AKF-RD with parameters RD does not use.

:func:`live_parameters` runs one forward pass with hooks on every module and counts the
parameters *owned directly* (``recurse=False``) by the modules that ran; a parameter shared by
several modules is counted once. :func:`count_parameters` splits the live count into the parts
of a reverse-distillation model (teacher ``encoder``, ``bottleneck``, ``decoder``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["count_parameters", "live_parameters"]


def _modules_that_run(module: nn.Module, *inputs: Any) -> set[int]:  # noqa: ANN401
    """``id`` of every sub-module that runs in one ``module(*inputs)`` (eval mode, no gradients)."""
    ran: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda mod, _args: ran.add(id(mod))) for m in module.modules()]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return ran


def _split(module: nn.Module, ran: set[int]) -> dict[str, int]:
    total = {id(p): p.numel() for p in module.parameters()}
    live = {id(p): p.numel() for m in module.modules() if id(m) in ran for p in m.parameters(recurse=False)}
    return {"live": sum(live.values()), "total": sum(total.values()),
            "unused": sum(total.values()) - sum(live.values())}


def live_parameters(module: nn.Module, *inputs: Any) -> dict[str, int]:  # noqa: ANN401
    """``{"live": n, "total": n, "unused": n}`` of ``module`` after one ``module(*inputs)``."""
    return _split(module, _modules_that_run(module, *inputs))


def count_parameters(torch_model: nn.Module, image_size: tuple[int, int] = (64, 64)) -> dict[str, dict[str, int]]:
    """Live / total / unused parameters of a reverse-distillation torch model and of its parts.

    ``torch_model`` is the ``.model`` of an anomalib ``ReverseDistillation`` or of an
    ``AkfReverseDistillation`` (attributes ``encoder``, ``bottleneck``, ``decoder``). Each part
    is counted by running the whole model once on a random ``(1, 3, H, W)`` batch.
    """
    ran = _modules_that_run(torch_model, torch.rand(1, 3, *image_size))
    counts = {name: _split(getattr(torch_model, name), ran) for name in ("encoder", "bottleneck", "decoder")}
    counts["model"] = _split(torch_model, ran)
    return counts
