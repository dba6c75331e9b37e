"""Aliases for numpy names removed in numpy 2 that pinned upstream code still calls.

``np.in1d`` (removed in numpy 2.4; ``np.isin`` is its documented replacement) is used by
mmpretrain 1.2's retrieval metrics (``evaluation/metrics/retrieval.py``). The alias is added
only when numpy lacks the name.
"""
from __future__ import annotations

import numpy as np


def _in1d(ar1, ar2, assume_unique: bool = False, invert: bool = False, **kwargs):
    return np.isin(np.asarray(ar1).ravel(), ar2, assume_unique=assume_unique, invert=invert, **kwargs)


def apply() -> bool:
    if hasattr(np, "in1d"):
        return False
    np.in1d = _in1d
    return True
