"""Seed statistics for the results document: mean +- sd per setting, paired per-seed differences.

A claim that A beats B needs the same seeds for both and the differences taken per seed (the
seed fixes the data draw and the initialisation), not two unrelated means. ``sd`` is the sample
standard deviation (n - 1); it is ``None`` for a single value.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence


def mean_sd(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"n", "mean", "sd"}`` of the values (sample sd, ``None`` when fewer than two)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_sd: no values")
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return {"n": len(values), "mean": mean, "sd": sd}


def paired_differences(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
    """``a - b`` per seed present in both, with their mean and sd; the seeds used are listed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"paired_differences: no common seed (a has {sorted(a)}, b has {sorted(b)})")
    diffs = {seed: float(a[seed]) - float(b[seed]) for seed in seeds}
    return {"seeds": seeds, "differences": diffs, **mean_sd(list(diffs.values()))}


def format_mean_sd(summary: Mapping, scale: float = 1.0, digits: int = 2) -> str:
    """``"97.41 +- 0.35"`` (``scale`` 100 turns fractions into percent points)."""
    mean = summary["mean"] * scale
    if summary.get("sd") is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {summary['sd'] * scale:.{digits}f}"
