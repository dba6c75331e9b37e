"""Pure-PyTorch stand-in for the few ``mmcv.ops`` names mmseg imports at module level.

mmcv-lite ships ``mmcv/ops`` without the compiled ``mmcv._ext``, so ``import mmcv.ops`` fails
and with it ``import mmseg.models`` (unguarded imports in mmseg 1.2.2:
``models/utils/point_sample.py``, ``utils/mask_classification.py`` and
``models/decode_heads/san_head.py`` need ``point_sample``; ``models/losses/focal_loss.py``
needs ``sigmoid_focal_loss``). All other mmseg imports of ``mmcv.ops`` sit in try/except.

When ``mmcv._ext`` is importable (full mmcv) nothing is done. Otherwise a lightweight
``mmcv.ops`` package is registered whose ``__path__`` is mmcv's real ``ops`` folder, so
pure-PyTorch submodules such as ``mmcv.ops.point_sample`` load from mmcv's own file, and
``sigmoid_focal_loss`` is served by :func:`torchvision.ops.sigmoid_focal_loss`. Any other
name raises ``ModuleNotFoundError`` naming the missing compiled extension, which mmseg's guarded
imports already handle.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

PROVIDED_NAMES = ("point_sample", "sigmoid_focal_loss")


def sigmoid_focal_loss(
    pred,
    target,
    gamma: float = 2.0,
    alpha: float = 0.25,
    weight=None,
    reduction: str = "mean",
):
    """``mmcv.ops.sigmoid_focal_loss`` semantics on top of torchvision's implementation.

    ``pred`` is ``(N, C)`` logits, ``target`` is ``(N,)`` class indices where the value ``C``
    means "no class" (all-zero one-hot), ``weight`` is an optional per-class ``(C,)`` factor,
    as in mmcv's CUDA kernel (mmcv/ops/csrc/common/sigmoid_focal_loss_cuda_kernel.cuh).
    """
    import torch
    from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

    num_classes = pred.size(1)
    one_hot = torch.nn.functional.one_hot(target.long().clamp(max=num_classes), num_classes + 1)
    one_hot = one_hot[:, :num_classes].to(pred.dtype)
    loss = tv_sigmoid_focal_loss(pred, one_hot, alpha=alpha, gamma=gamma, reduction="none")
    if weight is not None:
        loss = loss * weight.view(1, -1).to(loss)
    if reduction == "mean":
        return loss.sum() / pred.size(0)  # mmcv divides by N, not by N*C
    if reduction == "sum":
        return loss.sum()
    return loss


def _compiled_ops_available() -> bool:
    return importlib.util.find_spec("mmcv._ext") is not None


def _missing_name(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    # ModuleNotFoundError, not AttributeError: it is what a failed ``import mmcv.ops`` raised
    # before, and what mmseg's guarded ``try: from mmcv.ops import X`` blocks catch.
    raise ModuleNotFoundError(
        f"mmcv.ops.{name} needs mmcv's compiled extension (mmcv._ext), which mmcv-lite does not "
        f"ship; defect_plugins provides only {', '.join(PROVIDED_NAMES)} as pure-PyTorch fallbacks"
    )


def apply() -> bool:
    """Register the fallback ``mmcv.ops`` if, and only if, mmcv's compiled ops are absent."""
    if importlib.util.find_spec("mmcv") is None or _compiled_ops_available():
        return False
    existing = sys.modules.get("mmcv.ops")
    if existing is not None and getattr(existing, "__defect_plugins_fallback__", False):
        return True
    if existing is not None:  # imported successfully earlier by someone else: leave it
        return False

    import mmcv

    ops_dir = Path(mmcv.__file__).parent / "ops"
    fallback = types.ModuleType("mmcv.ops", __doc__)
    fallback.__path__ = [str(ops_dir)]  # submodules resolve to mmcv's own pure-PyTorch files
    fallback.__package__ = "mmcv.ops"
    fallback.__defect_plugins_fallback__ = True
    fallback.__getattr__ = _missing_name
    fallback.sigmoid_focal_loss = sigmoid_focal_loss
    sys.modules["mmcv.ops"] = fallback
    mmcv.ops = fallback
    fallback.point_sample = importlib.import_module("mmcv.ops.point_sample").point_sample
    return True
