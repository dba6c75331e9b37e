"""Load a local weights file into anomalib's ``TimmFeatureExtractor`` (offline teachers).

Factories without internet cannot use ``pre_trained=True`` (timm downloads
from a hub; anomalib issues #2439, #2506). This loader accepts a torchvision or
timm ResNet ``state_dict`` (optionally wrapped in ``{"state_dict": ...}`` /
``{"model": ...}`` and/or prefixed with ``module.`` / ``backbone.``; an mmpretrain
checkpoint of a ResNet classifier qualifies as it is), loads it
with ``strict=False`` because the feature extractor stops before the last stage
and has no classifier, and then *checks* the result: every tensor of the
feature extractor must be found with the right shape, otherwise a
``ValueError`` names the file and the first offending keys.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["load_teacher_weights"]

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "backbone.", "model.", "encoder.")
# Buffers that may legitimately be absent from older/other exports.
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        msg = f"Teacher weights file {path} does not hold a state_dict of tensors (got {type(obj).__name__})."
        raise ValueError(msg)
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        name = str(key)
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        state[name] = value
    return state


def _load_file(path: Path) -> object:
    """``torch.load(weights_only=True)``; mmengine checkpoints with mmengine's allow-listed globals only.

    A checkpoint written by mmengine's Runner (an mmpretrain classifier trained on the line's own
    defect classes, say) pickles its message hub next to the weights; those few classes are
    allowed (:func:`defect_plugins.compat.checkpoint_loading.mmengine_checkpoint_globals`), any
    other pickled object is still refused.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # torch raises several types for corrupt/non-torch files
        try:
            from defect_plugins.compat.checkpoint_loading import mmengine_checkpoint_globals

            with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - report the first, plainer error
            msg = f"Could not read teacher weights file {path} with torch.load(weights_only=True): {first}"
            raise ValueError(msg) from first


def load_teacher_weights(module: nn.Module, weights_path: str | Path) -> list[str]:
    """Load ``weights_path`` into ``module`` (a timm ``features_only`` ResNet) and verify it.

    Args:
        module: Target network, e.g. ``TimmFeatureExtractor(...).feature_extractor``.
        weights_path: ``.pth``/``.pt`` file with a torchvision or timm state dict.

    Returns:
        Keys of the file that were not used (e.g. ``layer4.*``, ``fc.*``).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a state dict, a tensor of ``module`` is
            missing from it, or a shape differs.
    """
    path = Path(weights_path).expanduser()
    if not path.is_file():
        msg = f"Teacher weights file not found: {path} (teacher_weights expects a torchvision or timm state_dict)."
        raise FileNotFoundError(msg)
    obj = _load_file(path)
    state = _unwrap(obj, path)
    target = module.state_dict()
    missing = [k for k in target if k not in state and not k.endswith(_OPTIONAL_SUFFIXES)]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(target)} teacher tensors missing (e.g. {missing[:3]})")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[:3]})")
        msg = (
            f"Teacher weights file {path} does not match the teacher backbone: {'; '.join(parts)}. "
            "Is it a state_dict of the same backbone (torchvision or timm names)?"
        )
        raise ValueError(msg)
    module.load_state_dict({k: v for k, v in state.items() if k in target}, strict=False)
    # say which file went in (the anomalib CLI logs INFO): a run whose log does not show it cannot be told
    # from one with a random teacher
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    logger.info("teacher weights loaded: %s (sha256 %s, %d tensors)", path, digest[:16], len(target))
    return [k for k in state if k not in target]
