"""Load mmengine checkpoints (``resume`` and ``load_from``) under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7 calls
``torch.load`` without the argument (``mmengine/runner/checkpoint.py``), and its checkpoints
hold a ``mmengine.logging.HistoryBuffer`` (whose statistics are pickled through
``getattr``) and numpy arrays and scalars in ``message_hub``. Instead of turning safe
loading off, every loader registered in mmengine's ``CheckpointLoader`` is wrapped so that
*only while an mmengine checkpoint is being loaded* these few types are allow-listed with
:func:`torch.serialization.safe_globals`. Anything else in a file still fails loudly.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np


def _torch_loads_weights_only_by_default() -> bool:
    import torch

    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 6)


def mmengine_checkpoint_globals() -> list[Any]:
    """The globals found in mmengine 0.10 checkpoints (``get_unsafe_globals_in_checkpoint``)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core
    allowed: list[Any] = [
        HistoryBuffer,
        getattr,  # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer, name)
        multiarray.multiarray._reconstruct,
        multiarray.multiarray.scalar,
        np.ndarray,
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtypes by their class
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")]
    return allowed


def _with_mmengine_globals(loader: Callable) -> Callable:
    if getattr(loader, "__defect_plugins_wrapped__", False):
        return loader

    @functools.wraps(loader)
    def load(*args, **kwargs):
        import torch

        with torch.serialization.safe_globals(mmengine_checkpoint_globals()):
            return loader(*args, **kwargs)

    load.__defect_plugins_wrapped__ = True
    return load


def apply() -> bool:
    """Wrap mmengine's checkpoint scheme loaders; no-op for torch < 2.6."""
    if not _torch_loads_weights_only_by_default():
        return False
    from mmengine.runner.checkpoint import CheckpointLoader

    for prefix, loader in list(CheckpointLoader._schemes.items()):
        CheckpointLoader._schemes[prefix] = _with_mmengine_globals(loader)
    return True
