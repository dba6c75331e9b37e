"""Thresholds a production line can use: set from a false-reject target, reported with exact confidence intervals.

Convention for all three families: each image gets a **defect score**, higher = more defective,
and an image is rejected when ``score >= threshold``. The line states what it can afford in
rejected good parts (``max_false_reject``, e.g. 1 %); :func:`threshold_for_false_reject` sets the
threshold on held-out defect-free calibration images so that at most that share of them is
rejected, and :func:`false_reject` / :func:`recall` measure both sides on the test part, each as a
:class:`Rate` with its Clopper-Pearson interval (a rate of 0 out of 30 is not a rate of 0).

numpy and the standard library only (no scipy: the runtime-only install has none); the interval
is computed from the exact binomial distribution by bisection.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CalibrationError", "Rate", "clopper_pearson", "false_reject", "rate", "recall", "recall_by_group",
           "required_calibration_images", "supported_target", "threshold_for_false_reject"]

_TOLERANCE = 1e-12  # bisection stops when the bracket is this narrow (the interval ends are good to 1e-10)
_EPS = 1e-9  # float slack in products such as 0.07 * 100 (7.000000000000001)
_CLEAN_TARGETS = tuple(sorted(m * 10.0 ** e for e in range(-6, 0) for m in (1, 2, 5)))  # 1e-6 .. 0.5


class CalibrationError(ValueError):
    """Scores or a target that cannot give a threshold; the message says what is missing and what would work."""


# ----------------------------------------------------------------------------------------------- intervals


def _log_binomial_coefficients(n: int) -> np.ndarray:
    """``log C(n, i)`` for ``i = 0 .. n`` (log-gamma: exact terms without overflowing for large n)."""
    top = math.lgamma(n + 1)
    return np.array([top - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)])


def _binomial_sum(log_coefficients: np.ndarray, n: int, p: float, first: int, last: int) -> float:
    """``P(first <= X <= last)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1``: the sum of the exact terms."""
    i = np.arange(first, last + 1)
    log_terms = log_coefficients[first:last + 1] + i * math.log(p) + (n - i) * math.log1p(-p)
    return math.fsum(np.exp(log_terms).tolist())


def _bisect(increasing: Any, target: float) -> float:
    """The ``p`` in (0, 1) where the increasing function ``increasing(p)`` crosses ``target``."""
    low, high = 0.0, 1.0
    while high - low > _TOLERANCE:
        middle = 0.5 * (low + high)
        if increasing(middle) < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided ``confidence`` interval of a binomial proportion ``k / n``.

    Clopper & Pearson, "The use of confidence or fiducial limits illustrated in the case of the
    binomial", Biometrika 26 (1934) 404-413: with ``alpha = 1 - confidence``, the lower end is the
    ``p`` with ``P(X >= k; n, p) = alpha / 2`` (the ``Beta(alpha/2; k, n-k+1)`` quantile) and the
    upper end the ``p`` with ``P(X <= k; n, p) = alpha / 2`` (the ``Beta(1-alpha/2; k+1, n-k)``
    quantile); the lower end is 0 for ``k = 0`` and the upper end 1 for ``k = n``. Each end is
    found by bisection on the binomial tail summed from its exact terms, to 1e-10. ``n = 0``
    gives ``(0, 1)``: no observation, no information.

    Raises:
        ValueError: ``k`` or ``n`` negative or ``k > n``, or ``confidence`` outside (0, 1).
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n or not 0 <= k <= n:
        raise ValueError(f"clopper_pearson: expected integers 0 <= k <= n, got k={k!r}, n={n!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"clopper_pearson: confidence must lie in (0, 1), got {confidence!r}")
    k, n = int(k), int(n)
    if n == 0:
        return 0.0, 1.0
    tail = (1.0 - confidence) / 2.0
    log_coefficients = _log_binomial_coefficients(n)
    lower = 0.0 if k == 0 else _bisect(lambda p: _binomial_sum(log_coefficients, n, p, k, n), tail)
    # P(X <= k) falls as p grows: bisect on its complement's sign by negating
    upper = 1.0 if k == n else _bisect(lambda p: -_binomial_sum(log_coefficients, n, p, 0, k), -tail)
    return lower, upper


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n`` images, the share and its Clopper-Pearson interval."""

    k: int
    n: int
    value: float  # k / n; nan when n == 0
    lower: float
    upper: float
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``value`` is ``None`` when ``n == 0`` (JSON has no NaN)."""
        return {"k": self.k, "n": self.n, "value": None if math.isnan(self.value) else self.value,
                "lower": self.lower, "upper": self.upper, "confidence": self.confidence}


def rate(k: int, n: int, confidence: float = 0.95) -> Rate:
    """``k`` of ``n`` as a :class:`Rate` with its :func:`clopper_pearson` interval."""
    lower, upper = clopper_pearson(k, n, confidence)
    return Rate(k=int(k), n=int(n), value=k / n if n else math.nan, lower=lower, upper=upper, confidence=confidence)


# ----------------------------------------------------------------------------------------------- thresholds


def _check_target(max_false_reject: float) -> float:
    value = float(max_false_reject)
    if not 0 < value < 1:
        raise CalibrationError(f"max_false_reject must lie in (0, 1) (a share of good images, 0.01 = 1 %), "
                               f"got {max_false_reject!r}")
    return value


def required_calibration_images(max_false_reject: float) -> int:
    """The fewest defect-free calibration images that can resolve ``max_false_reject``: ``ceil(1 / max_false_reject)``.

    Why this count: :func:`threshold_for_false_reject` lets ``floor(max_false_reject * n)`` of the
    ``n`` calibration images be rejected. Below ``1 / max_false_reject`` images that is zero: the
    threshold lands just above the highest score, and all the calibration then shows is "no image
    rejected", which holds for a threshold far looser than the target and for one far stricter
    alike (0 of 50 rejected is compatible with a true rate up to 7 %, Clopper-Pearson 95 %). From
    ``ceil(1 / max_false_reject)`` images on, one image is allowed over, and the threshold sits at an
    order statistic of the score distribution near the target quantile. This is the least that can
    work, not plenty: the test part's :func:`false_reject` interval says how precisely the rate is
    known (1 of 100: 0.03 % to 5.4 %).

    Raises:
        CalibrationError: ``max_false_reject`` outside (0, 1).
    """
    return math.ceil(1.0 / _check_target(max_false_reject) - _EPS)


def supported_target(n: int) -> float | None:
    """The strictest clean target (1, 2 or 5 times a power of ten) that ``n`` calibration images can resolve.

    ``None`` below two images (no target under 1 can be resolved with one image or none).
    """
    for target in _CLEAN_TARGETS:
        if required_calibration_images(target) <= n:
            return target
    return None


def _scores(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise CalibrationError(f"{what}: {bad.size} score(s) are not finite (first at index {bad[0]}: "
                               f"{scores[bad[0]]}); expected finite defect scores")
    return scores


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if math.isnan(value):
        raise CalibrationError("threshold is NaN; expected a number (reject when score >= threshold)")
    return value


def threshold_for_false_reject(good_scores: Sequence[float] | np.ndarray, max_false_reject: float) -> float:
    """The threshold that rejects at most ``floor(max_false_reject * n)`` of ``n`` defect-free calibration images.

    With the scores sorted ascending and ``k = floor(max_false_reject * n)``, the threshold is the
    smallest float strictly above the ``(n - k)``-th smallest score (``numpy.nextafter``): the
    ``n - k`` lowest scores are accepted, and of the ``k`` highest only those strictly above it are
    rejected, so ties at that score never push more than ``k`` over. This is the empirical quantile
    of the calibration images; on new defect-free images from the same process, the expected
    false-reject rate of this order statistic is ``(k + 1) / (n + 1)`` (exchangeable scores without
    ties; the split-conformal argument, Vovk, Gammerman & Shafer, "Algorithmic Learning in a Random
    World", 2005), slightly above ``k / n``: the test part's :func:`false_reject` is the figure to report.

    Raises:
        CalibrationError: a score that is not finite, a target outside (0, 1), or fewer images than
            :func:`required_calibration_images` (the message names the count needed and a looser
            target the present count supports).
    """
    target = _check_target(max_false_reject)
    scores = np.sort(_scores(good_scores, "defect-free calibration scores"))
    n, needed = scores.size, required_calibration_images(target)
    if n < needed:
        looser = supported_target(n)
        instead = (f", or use max_false_reject={looser:g}, which {n} images support" if looser is not None
                   else " (no target below 1 can be set with fewer than 2 images)")
        raise CalibrationError(
            f"a false-reject rate of at most {target:g} ({target * 100:g} %) needs at least {needed} defect-free "
            f"calibration images (one allowed rejection among them; with fewer, the threshold is the highest "
            f"score, which says nothing about a rate that low); there are {n}. Add {needed - n} defect-free "
            f"image(s) to the calibration part{instead}")
    allowed = min(max(1, math.floor(target * n + _EPS)), n - 1)
    return float(np.nextafter(scores[n - allowed - 1], np.inf))


# ----------------------------------------------------------------------------------------------- rates


def false_reject(good_scores: Sequence[float] | np.ndarray, threshold: float) -> Rate:
    """Defect-free images rejected (``score >= threshold``) of all defect-free images, with its interval."""
    scores = _scores(good_scores, "defect-free scores")
    return rate(int(np.count_nonzero(scores >= _check_threshold(threshold))), scores.size)


def recall(defect_scores: Sequence[float] | np.ndarray, threshold: float) -> Rate:
    """Defective images rejected (``score >= threshold``) of all defective images; ``1 - recall`` is the escape rate."""
    scores = _scores(defect_scores, "defective-image scores")
    return rate(int(np.count_nonzero(scores >= _check_threshold(threshold))), scores.size)


def recall_by_group(scores_by_group: Mapping[str, Sequence[float] | np.ndarray], threshold: float) -> dict[str, Rate]:
    """:func:`recall` per group (defect type or class), groups sorted by name."""
    return {group: recall(scores_by_group[group], threshold) for group in sorted(scores_by_group)}
