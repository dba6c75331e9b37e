"""Drift watch: a warning when the parts or the camera move away from what a model was fitted on.

A model's threshold was calibrated on held-out defect-free images; it stays right only while the line
sends images like them. This module compares, per model, the recent inspections with those reference
images on a few cheap signals:

* ``score``: the score the bundle thresholds (anomaly: the image anomaly score; classifier with an OK
  class: P(OK class)); segmentors have no continuous score and use the image statistics only;
* ``brightness`` (mean grey level), ``contrast`` (grey standard deviation) and ``sharpness`` (variance
  of the Laplacian) of the image resized to :data:`STATS_SIZE` x :data:`STATS_SIZE` first and turned
  grey (:func:`image_stats`), so the cost is about the same small figure for any camera.

The test is the **population stability index** (PSI) over bins cut at the reference's quantiles::

    PSI = sum_i (q_i - p_i) * ln(q_i / p_i)

with ``p_i`` the reference's and ``q_i`` the recent window's share of bin ``i``. It is the symmetric
Kullback-Leibler divergence of the two binned distributions. The usual reading is < 0.1 stable,
0.1-0.25 a moderate shift (``warn``), > 0.25 a significant shift (``drift``); see B. Yurdakul and
J. Naranjo, "Statistical properties of the population stability index", Journal of Risk Model
Validation 14(4), 2020. They also show that, for two samples of the *same* distribution, ``PSI``
is approximately ``(1/n + 1/m) * chi2(B - 1)`` (``n`` reference, ``m`` recent values, ``B`` bins):
with a few hundred values the fixed 0.1 is crossed by chance alone. So a signal is judged against
``max(fixed threshold, (1/n + 1/m) * chi2_{B-1}(1 - alpha))`` (:meth:`DriftConfig.limits`): the fixed
reading says how large a shift matters, the chi-square term that it is not sampling noise.
Counts are smoothed by adding 0.5 to every bin (Jeffreys), so that an empty bin gives a large but
finite term.

Cost per inspection: :func:`image_stats` is one bilinear resize to 128 x 128, one colour conversion
and one Laplacian of that small image; :meth:`DriftWatch.observe` bins each value against the reference edges
(a binary search) and keeps per-bin counts of the window in a ring buffer, so the PSI is O(bins).

Runtime only: numpy and OpenCV (imported when first needed), no torch, no station.
"""
from __future__ import annotations

import bisect
import json
import math
import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STATS_SIZE = 128  # image_stats works on the image resized to STATS_SIZE x STATS_SIZE, then grey
STATS = ("brightness", "contrast", "sharpness")
SIGNALS = ("score", *STATS)
LEVELS = ("collecting", "ok", "warn", "drift")  # worst last
REFERENCE_FILE = "drift_reference.json"
REFERENCE_FORMAT = "defect-plugins-drift-reference"
REFERENCE_VERSION = 1
SMOOTHING = 0.5  # added to every bin's count (Jeffreys) before the proportions are taken


# --------------------------------------------------------------------------- image statistics and PSI


def image_stats(image_bgr: np.ndarray) -> dict[str, float]:
    """Brightness, contrast and sharpness of an image (BGR, BGRA or grey; uint8 or uint16).

    The image is first resized to ``STATS_SIZE`` x ``STATS_SIZE`` with bilinear interpolation, then
    turned grey. Why bilinear and not area averaging: for a large image it reads only the pixels next to
    each sample (about 2 x 2 per output pixel), so the cost is about the same small figure for a
    200 x 200 and a 4096 x 4096 camera, where area averaging reads every pixel; and the samples keep the
    native pixels' fine detail, which is what a focus measure needs (area averaging would smooth away the
    difference between a sharp and a slightly blurred image). The figures are meant to be compared
    between images of the same camera (the reference's and the line's): they depend on the resolution.

    * brightness: the mean grey level (0-255);
    * contrast: the grey standard deviation;
    * sharpness: the variance of the 3 x 3 Laplacian, a common focus measure: blur removes the high
      frequencies and the value falls.
    """
    import cv2

    image = np.asarray(image_bgr)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"image_stats: expected an H x W, H x W x 3 or H x W x 4 image, got shape {image.shape}")
    if image.dtype != np.uint8:  # 16-bit cameras: the same 0-255 scale and rounding as 8-bit images
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0 if image.dtype == np.uint16 else 1.0)
    small = cv2.resize(image, (STATS_SIZE, STATS_SIZE), interpolation=cv2.INTER_LINEAR)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGRA2GRAY if small.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(small)
    _, spread = cv2.meanStdDev(cv2.Laplacian(small, cv2.CV_32F, ksize=1))  # OpenCV's is faster than numpy's var
    return {"brightness": float(mean[0, 0]), "contrast": float(std[0, 0]), "sharpness": float(spread[0, 0]) ** 2}


def quantile_edges(reference: Sequence[float] | np.ndarray, bins: int) -> np.ndarray:
    """The inner bin edges at the reference's ``1/bins ... (bins-1)/bins`` quantiles, repeated edges dropped.

    The quantiles are reference values (no interpolation), so ties (a discrete score, a saturated
    image) give fewer bins rather than bins that no reference value can fall in.

    A value ``v`` falls in bin ``searchsorted(edges, v, side="right")`` (``len(edges) + 1`` bins, the outer
    two open-ended), so values beyond the reference's range land in the first or the last bin.
    """
    values = _finite(reference)
    if values.size == 0:
        raise ValueError("quantile_edges: the reference has no finite value")
    if bins < 2:
        raise ValueError(f"quantile_edges: expected at least 2 bins, got {bins}")
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf"))
    return edges[edges > values.min()]  # an edge at the minimum would leave its lower bin empty


def bin_counts(values: Sequence[float] | np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of ``values`` (finite ones) fall in each of the ``len(edges) + 1`` bins."""
    index = np.searchsorted(edges, _finite(values), side="right")
    return np.bincount(index, minlength=len(edges) + 1).astype(np.int64)


def psi_from_counts(reference_counts: Sequence[float] | np.ndarray, recent_counts: Sequence[float] | np.ndarray
                    ) -> float:
    """``sum (q - p) ln(q / p)`` of two bin-count vectors, each smoothed by +0.5 per bin (module docstring)."""
    p = np.asarray(reference_counts, dtype=np.float64) + SMOOTHING
    q = np.asarray(recent_counts, dtype=np.float64) + SMOOTHING
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi(reference: Sequence[float] | np.ndarray, recent: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference``, bins at the reference's quantiles.

    ``PSI = sum_i (q_i - p_i) ln(q_i / p_i)`` (Yurdakul & Naranjo 2020); 0 for identical binned
    distributions, about 0.1 for a moderate and over 0.25 for a significant shift. Non-finite values
    are left out.
    """
    edges = quantile_edges(reference, bins)
    return psi_from_counts(bin_counts(reference, edges), bin_counts(recent, edges))


def chi2_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of chi-square with ``dof`` degrees of freedom (Wilson-Hilferty).

    Accurate to about 1 % for ``dof >= 3`` at the tail probabilities used here, which is ample for a
    noise floor; it keeps the runtime free of scipy.
    """
    if dof < 1:
        return 0.0
    z = statistics.NormalDist().inv_cdf(probability)
    k = 2.0 / (9.0 * dof)
    return float(dof * max(1.0 - k + z * math.sqrt(k), 0.0) ** 3)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    return array[np.isfinite(array)]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DriftConfig:
    """How a drift watch judges; the defaults suit a line inspecting a few parts a second.

    Attributes:
        window: how many recent inspections are compared with the reference (a ring buffer).
        min_count: how many a signal needs in its window before it is judged (``collecting`` before).
        bins: PSI bins, cut at the reference's quantiles (fewer when the reference has ties).
        warn_psi: the PSI from which a signal is ``warn`` (the usual 0.1).
        drift_psi: the PSI from which a signal is ``drift`` (the usual 0.25).
        alpha: the chance of a same-distribution window crossing a limit, used for the sampling-noise
            floor ``(1/n + 1/m) * chi2_{B-1}(1 - alpha)`` of both limits; 0 turns the floor off.
        signals: the signals judged (a subset of :data:`SIGNALS`).
    """

    window: int = 200
    min_count: int = 50
    bins: int = 10
    warn_psi: float = 0.1
    drift_psi: float = 0.25
    alpha: float = 0.001
    signals: tuple[str, ...] = SIGNALS

    def __post_init__(self) -> None:
        if not (isinstance(self.window, int) and self.window >= 2):
            raise ValueError(f"drift: 'window' must be an integer of at least 2, got {self.window!r}")
        if not (isinstance(self.min_count, int) and 1 <= self.min_count <= self.window):
            raise ValueError(f"drift: 'min_count' must be an integer within 1 and window ({self.window}), "
                             f"got {self.min_count!r}")
        if not (isinstance(self.bins, int) and 2 <= self.bins <= 100):
            raise ValueError(f"drift: 'bins' must be an integer within 2 and 100, got {self.bins!r}")
        if not (0 < self.warn_psi <= self.drift_psi):
            raise ValueError(f"drift: expected 0 < warn_psi <= drift_psi, got {self.warn_psi!r} and {self.drift_psi!r}")
        if not (0 <= self.alpha < 1):
            raise ValueError(f"drift: 'alpha' must be within 0 and 1 (0: no noise floor), got {self.alpha!r}")
        unknown = sorted(set(self.signals) - set(SIGNALS))
        if unknown or not self.signals:
            raise ValueError(f"drift: 'signals' must be a non-empty subset of {list(SIGNALS)}, got {self.signals!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> DriftConfig:
        """From a parsed TOML/JSON section (``{"window": 200, ...}``); missing keys keep their defaults."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"drift: expected a table of settings, got {type(data).__name__}")
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"drift: unknown settings {unknown} (known: {sorted(known)})")
        values = dict(data)
        if "signals" in values:
            values["signals"] = tuple(values["signals"])
        for key in ("warn_psi", "drift_psi", "alpha"):
            if key in values and isinstance(values[key], int) and not isinstance(values[key], bool):
                values[key] = float(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["signals"] = list(self.signals)
        return data

    def limits(self, n_reference: int, n_recent: int, n_bins: int) -> tuple[float, float]:
        """``(warn, drift)`` PSI limits for these sample sizes: the fixed ones, raised to the noise floor."""
        floor = 0.0
        if self.alpha > 0 and n_reference > 0 and n_recent > 0:
            floor = (1.0 / n_reference + 1.0 / n_recent) * chi2_quantile(1.0 - self.alpha, n_bins - 1)
        return max(self.warn_psi, floor), max(self.drift_psi, floor)


def load_drift_config(path: str | Path, section: str = "drift") -> DriftConfig:
    """The :class:`DriftConfig` of section ``section`` (dotted for nested tables) of a ``.toml`` or ``.json`` file.

    A file without that section gives the defaults.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        import tomllib

        data: Any = tomllib.loads(text)
    else:
        data = json.loads(text)
    for key in section.split(".") if section else []:
        data = data.get(key, {}) if isinstance(data, Mapping) else {}
    return DriftConfig.from_mapping(data)


# --------------------------------------------------------------------------- the reference


@dataclass
class DriftReference:
    """Per signal, the values of the reference images (a bundle's held-out good images).

    ``source`` says where they come from (``drift_reference.json``, or ``predictions.csv (scores only)``
    for bundles written before the reference existed); ``score`` what the score is (name, meaning,
    the model precision it was computed with); ``count`` the number of reference images.
    """

    values: dict[str, np.ndarray]
    source: str = REFERENCE_FILE
    score: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(SIGNALS))
        if unknown:
            raise ValueError(f"drift reference: unknown signals {unknown} (known: {list(SIGNALS)})")
        self.values = {name: _finite(v) for name, v in self.values.items() if _finite(v).size}
        if not self.count:
            self.count = max((v.size for v in self.values.values()), default=0)

    @property
    def signals(self) -> list[str]:
        """The signals it has values for, in :data:`SIGNALS` order."""
        return [name for name in SIGNALS if name in self.values]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = REFERENCE_FILE) -> DriftReference:
        """From the parsed ``drift_reference.json`` (:meth:`to_dict`)."""
        if not isinstance(data, Mapping) or data.get("format") != REFERENCE_FORMAT:
            raise ValueError(f"{source}: expected a drift reference (format {REFERENCE_FORMAT!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > REFERENCE_VERSION:
            raise ValueError(f"{source}: format_version {version!r} is not one this version reads "
                             f"(<= {REFERENCE_VERSION})")
        values = data.get("values")
        if not isinstance(values, Mapping) or not all(isinstance(v, list) for v in values.values()):
            raise ValueError(f"{source}: 'values' must map signal names to lists of numbers")
        known = {"format", "format_version", "values", "score", "count"}
        return cls(values={k: np.asarray(v, dtype=np.float64) for k, v in values.items() if k in SIGNALS},
                   source=source, score=dict(data.get("score") or {}), count=int(data.get("count") or 0),
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def load(cls, path: str | Path) -> DriftReference:
        """Read a ``drift_reference.json``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: expected a drift reference as JSON ({error})") from error
        return cls.from_dict(data, source=path.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (values rounded to 6 significant digits: plenty for quantile bins)."""
        return {"format": REFERENCE_FORMAT, "format_version": REFERENCE_VERSION, "count": self.count,
                "score": self.score, **self.extra,
                "values": {name: [float(f"{v:.6g}") for v in self.values[name]] for name in self.signals}}


# --------------------------------------------------------------------------- the watch


@dataclass(frozen=True)
class DriftState:
    """A watch's judgement: the overall ``level``, the signals that tripped, and each signal's PSI and count.

    ``level`` is the worst of the judged signals (``collecting`` while none has ``min_count`` values);
    ``tripped`` lists the signals at ``warn`` or ``drift``, worst first.
    """

    level: str
    tripped: tuple[str, ...] = ()
    psi: dict[str, float | None] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.level, "tripped": list(self.tripped), "psi": dict(self.psi), "n": dict(self.n)}


class _Signal:
    """One signal's reference bins and its window: a ring buffer of bin indices and per-bin counts.

    Plain Python lists and :mod:`bisect` rather than numpy: with ~10 bins, numpy's per-call overhead
    would cost more than the arithmetic.
    """

    def __init__(self, reference: np.ndarray, config: DriftConfig) -> None:
        self.edges = [float(edge) for edge in quantile_edges(reference, config.bins)]
        counts = bin_counts(reference, np.asarray(self.edges))
        self.n_reference = int(reference.size)
        bins = len(self.edges) + 1
        total = self.n_reference + SMOOTHING * bins
        self.p = [(float(count) + SMOOTHING) / total for count in counts]
        self.ring = [0] * config.window
        self.counts = [0] * bins
        self.n = 0  # values in the window
        self.next = 0  # ring position of the next value
        self.psi: float | None = None
        self.level = "collecting"
        self._limits = (0, 0.0, 0.0)  # (n, warn, drift): the limits depend on n until the window is full

    def add(self, value: float) -> None:
        index = bisect.bisect_right(self.edges, value)  # as numpy.searchsorted(side="right")
        if self.n == len(self.ring):
            self.counts[self.ring[self.next]] -= 1
        else:
            self.n += 1
        self.ring[self.next] = index
        self.counts[index] += 1
        self.next = (self.next + 1) % len(self.ring)

    def judge(self, config: DriftConfig) -> None:
        if self.n < config.min_count:
            self.psi, self.level = None, "collecting"
            return
        total = self.n + SMOOTHING * len(self.counts)
        value = 0.0
        for count, p in zip(self.counts, self.p):  # psi_from_counts, the reference side precomputed
            q = (count + SMOOTHING) / total
            value += (q - p) * math.log(q / p)
        self.psi = value
        if self._limits[0] != self.n:
            self._limits = (self.n, *config.limits(self.n_reference, self.n, len(self.counts)))
        _, warn, drift = self._limits
        self.level = "drift" if value >= drift else "warn" if value >= warn else "ok"


class DriftWatch:
    """The drift watch of one model: feed it every inspection, read its state.

    ``DriftWatch(reference, config)`` judges the signals the reference has and the config names.
    :meth:`observe` takes one inspection's score and :func:`image_stats` (either may be ``None``) and
    returns the new :class:`DriftState` when the level or the set of tripped signals changed, else
    ``None``: the caller logs or publishes only changes. Thread-safe (one lock; the work under it is
    a few binary searches and a 10-bin sum).
    """

    def __init__(self, reference: DriftReference, config: DriftConfig | None = None) -> None:
        self.reference = reference
        self.config = config or DriftConfig()
        self._lock = threading.Lock()
        self._signals = {name: _Signal(reference.values[name], self.config)
                         for name in self.config.signals if name in reference.values}
        self._observed = 0
        self._last = self._summary()

    @property
    def signals(self) -> list[str]:
        """The signals this watch judges."""
        return list(self._signals)

    def observe(self, score: float | None = None, stats: Mapping[str, float] | None = None) -> DriftState | None:
        """Add one inspection; the new state if it differs from the previous one (level or tripped), else None."""
        with self._lock:
            self._observed += 1
            changed = False
            for name, signal in self._signals.items():
                value = score if name == "score" else stats.get(name) if stats else None
                if value is None or not math.isfinite(value):
                    continue
                signal.add(float(value))
                signal.judge(self.config)
                changed = True
            if not changed:
                return None
            summary = self._summary()
            if summary == self._last:
                return None
            self._last = summary
            return self._judged()

    def state(self) -> dict[str, Any]:
        """A JSON-ready report: overall state, tripped signals, and per signal its PSI, count and limits."""
        with self._lock:
            current = self._judged()
            signals = {}
            for name, signal in self._signals.items():
                warn, drift = self.config.limits(signal.n_reference, max(signal.n, 1), len(signal.counts))
                signals[name] = {"state": signal.level, "psi": None if signal.psi is None else round(signal.psi, 4),
                                 "n": signal.n, "reference_n": signal.n_reference, "bins": len(signal.counts),
                                 "warn_at": round(warn, 4), "drift_at": round(drift, 4)}
            return {"state": current.level, "tripped": list(current.tripped), "signals": signals,
                    "observed": self._observed, "reference": self.reference.source,
                    "reference_count": self.reference.count, "score": dict(self.reference.score),
                    "config": self.config.to_dict()}

    def reset(self) -> None:
        """Forget the window (after a deliberate change: new camera settings, a new batch of parts)."""
        with self._lock:
            self._signals = {name: _Signal(self.reference.values[name], self.config) for name in self._signals}
            self._observed = 0
            self._last = self._summary()

    def _summary(self) -> tuple[str, tuple[str, ...]]:
        """``(level, tripped)``: what a change is judged on (cheap: no PSI rounding, no dicts)."""
        judged = [(name, s.level) for name, s in self._signals.items() if s.level != "collecting"]
        level = max((lvl for _, lvl in judged), key=LEVELS.index, default="collecting")
        tripped = sorted((name for name, lvl in judged if lvl in ("warn", "drift")),
                         key=lambda name: (-LEVELS.index(self._signals[name].level), SIGNALS.index(name)))
        return level, tuple(tripped)

    def _judged(self) -> DriftState:
        level, tripped = self._summary()
        return DriftState(level=level, tripped=tripped,
                          psi={name: None if s.psi is None else round(s.psi, 4) for name, s in self._signals.items()},
                          n={name: s.n for name, s in self._signals.items()})
