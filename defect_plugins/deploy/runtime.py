"""Shared OpenVINO helpers: compile at an explicit precision, read and save IRs, predict, time.

Why these exist:

* OpenVINO infers in bf16 by default on CPUs with AMX/AVX512-bf16. On this project's CPU that
  moved an exported anomaly score from 0.744 (PyTorch) to 0.0. :func:`compile_model` therefore
  has no default precision: every caller states ``INFERENCE_PRECISION_HINT`` (``"f32"`` for
  parity checks and for any score compared with a threshold).
* An export's files are read checked and replaced whole (:mod:`.ir_files`, re-exported here):
  ``save_ir`` switches a new export in with one rename, ``read_model`` refuses files that do not
  match the SHA-256 recorded at export.
* :func:`openvino_predict` is the one way an IR's raw outputs are taken for a metric (the INT8
  guard, the held-out figures, the benchmark, parity checks): f32 unless told otherwise.
* Latency and throughput are measured the way OpenVINO's ``benchmark_app`` does it:
  synchronous requests for latency percentiles, ``ov.AsyncInferQueue`` with the
  ``THROUGHPUT`` performance hint (several streams) for throughput.

Images are read by :mod:`defect_plugins.imaging` (``read_bgr`` and ``ImageReadError`` are
re-exported here, where runtime code has always found them).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from defect_plugins.imaging.files import ImageReadError, read_bgr  # noqa: F401  (re-exported)

from .ir_files import (model_size_mb, read_metadata, read_model, save_ir, verify_ir,  # noqa: F401  (re-exported)
                       versions_dir)
from .metadata import MetadataError, ModelIntegrityError, ModelMetadata  # noqa: F401  (re-exported)

PRECISION_HINTS = ("f32", "f16", "bf16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")

Predict = Callable[[np.ndarray], Sequence[np.ndarray]]  # uint8 (N, H, W, 3) BGR -> outputs in order


def ov_config(precision: str, performance_hint: str = "LATENCY", *, num_streams: int | None = None,
              num_threads: int | None = None) -> dict[str, str]:
    """The OpenVINO CPU config used everywhere in this package (precision always explicit)."""
    if precision not in PRECISION_HINTS:
        raise ValueError(f"precision must be one of {PRECISION_HINTS}, got {precision!r}")
    if performance_hint not in PERFORMANCE_HINTS:
        raise ValueError(f"performance_hint must be one of {PERFORMANCE_HINTS}, got {performance_hint!r}")
    config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": performance_hint}
    if num_streams is not None:
        config["NUM_STREAMS"] = str(int(num_streams))
    if num_threads is not None:
        config["INFERENCE_NUM_THREADS"] = str(int(num_threads))
    return config


# --------------------------------------------------------------------------- compiling


def compile_model(model: Any, precision: str, *, performance_hint: str = "LATENCY", device: str = "CPU",
                  num_streams: int | None = None, num_threads: int | None = None, batch: int | None = None):
    """Compile an IR (path or ``ov.Model``) with an explicit ``INFERENCE_PRECISION_HINT``.

    ``batch`` fixes a dynamic batch dimension (OpenVINO plans memory better for static shapes).
    """
    import openvino as ov

    ov_model = read_model(model)
    if batch is not None:
        shape = ov_model.input(0).get_partial_shape()
        if shape[0].is_dynamic or shape[0].get_length() != batch:
            ov_model = ov_model.clone()
            shape[0] = batch
            ov_model.reshape({ov_model.input(0): shape})
    config = ov_config(precision, performance_hint, num_streams=num_streams, num_threads=num_threads)
    return ov.Core().compile_model(ov_model, device, config)


def f32_compile(model: Any, **kwargs: Any):
    """:func:`compile_model` at f32: for parity checks and thresholded scores."""
    return compile_model(model, "f32", **kwargs)


def compiled_predict(compiled: Any) -> Predict:
    """A :data:`Predict` function over one infer request of a compiled model (outputs in model order)."""
    request = compiled.create_infer_request()

    def predict(batch: np.ndarray) -> list[np.ndarray]:
        result = request.infer({0: batch})
        return [np.asarray(result[output]) for output in compiled.outputs]

    return predict


def openvino_predict(model: Any, precision: str = "f32") -> Predict:
    """A :data:`Predict` function for an IR path or ``ov.Model`` at an explicit precision (default f32)."""
    return compiled_predict(compile_model(model, precision))


# --------------------------------------------------------------------------- timing


def percentiles_ms(times_s: Iterable[float]) -> dict[str, float]:
    """p50 / p95 / mean / min of a list of durations in seconds, in milliseconds."""
    values = np.asarray(list(times_s), dtype=np.float64) * 1000.0
    if values.size == 0:
        raise ValueError("no timings")
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "mean_ms": float(values.mean()), "min_ms": float(values.min()), "runs": int(values.size)}


def time_calls(call: Callable[[], Any], *, runs: int = 30, warmup: int = 3) -> dict[str, float]:
    """Latency percentiles of ``call()`` (any framework)."""
    return time_interleaved({"call": call}, runs=runs, warmup=warmup)["call"]


def time_interleaved(calls: dict[str, Callable[[], Any]], *, runs: int = 30,
                     warmup: int = 3) -> dict[str, dict[str, float]]:
    """Latency percentiles of several calls timed in turn (one of each per round).

    Figures that are compared with each other (a whole ``predict`` against the model call inside
    it) then see the same moments of a machine whose load drifts, instead of one after the other.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: percentiles_ms(values) for name, values in times.items()}


def latency(compiled, inputs: np.ndarray, *, runs: int = 30, warmup: int = 3) -> dict[str, float]:
    """Synchronous single-request latency percentiles of a compiled model on ``inputs``."""
    request = compiled.create_infer_request()
    return time_calls(lambda: request.infer({0: inputs}), runs=runs, warmup=warmup)


def throughput(compiled, inputs: np.ndarray, *, seconds: float = 3.0, jobs: int = 0, min_requests: int = 8,
               rounds: int = 5) -> dict[str, Any]:
    """Images per second with ``ov.AsyncInferQueue`` (``jobs=0``: OpenVINO's optimal request count).

    Runs ``rounds`` rounds of about ``seconds / rounds`` each (at least ``min_requests`` requests
    in all) after one warm-up round. ``images_per_s`` is the whole run, ``images_per_s_best`` the
    best round: on a machine shared with other jobs the best round is the least disturbed one.
    """
    import openvino as ov

    if jobs <= 0:
        jobs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, jobs)
    for _ in range(jobs):  # warm-up: every request once
        queue.start_async({0: inputs})
    queue.wait_all()
    batch = int(inputs.shape[0])
    per_round = max(1, -(-min_requests // rounds))
    done, rates = 0, []
    start = time.perf_counter()
    for _ in range(rounds):
        round_start, count = time.perf_counter(), 0
        while count < per_round or time.perf_counter() - round_start < seconds / rounds:
            queue.start_async({0: inputs})
            count += 1
        queue.wait_all()
        rates.append(count * batch / (time.perf_counter() - round_start))
        done += count
    elapsed = time.perf_counter() - start
    try:
        streams = int(compiled.get_property("NUM_STREAMS"))
    except RuntimeError:
        streams = None
    return {"images_per_s": done * batch / elapsed, "images_per_s_best": max(rates), "batch": batch, "jobs": jobs,
            "streams": streams, "requests": done, "seconds": elapsed}
