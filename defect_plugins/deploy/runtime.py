"""Shared OpenVINO helpers: compile at an explicit precision, save atomically, time.

Why these exist:

* OpenVINO infers in bf16 by default on CPUs with AMX/AVX512-bf16. On this project's CPU that
  moved an exported anomaly score from 0.744 (PyTorch) to 0.0. :func:`compile_model` therefore
  has no default precision: every caller states ``INFERENCE_PRECISION_HINT`` (``"f32"`` for
  parity checks and for any score compared with a threshold).
* An interrupted export must not leave a ``model.xml`` without its ``model.bin`` (or with stale
  metadata): :func:`save_ir` writes into a temporary folder next to the target and moves the
  files into place, ``.xml`` last (:mod:`defect_plugins.fileio`: fsync, then ``os.replace``).
* Latency and throughput are measured the way OpenVINO's ``benchmark_app`` does it:
  synchronous requests for latency percentiles, ``ov.AsyncInferQueue`` with the
  ``THROUGHPUT`` performance hint (several streams) for throughput.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.fileio import replace, temp_sibling

from .geometry import from_model_grid, to_input, to_model_grid  # noqa: F401  (re-exported: int8, scoring)
from .metadata import RT_INFO_PATH, MetadataError, ModelMetadata, sidecar_path

PRECISION_HINTS = ("f32", "f16", "bf16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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


def read_model(model: Any):
    """An ``ov.Model`` from a path to ``.xml`` (checked: ``.bin`` next to it) or an ``ov.Model``."""
    import openvino as ov

    if isinstance(model, ov.Model):
        return model
    path = Path(model)
    if path.suffix != ".xml" or not path.is_file() or not path.with_suffix(".bin").is_file():
        raise FileNotFoundError(f"OpenVINO model not found: expected {path} and {path.with_suffix('.bin')}")
    return ov.Core().read_model(str(path))


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


def save_ir(ov_model, out_xml: str | Path, metadata: ModelMetadata, *, compress_to_fp16: bool = False) -> Path:
    """Write ``out_xml`` + ``.bin`` + ``.meta.json`` atomically, metadata also in the IR's rt_info."""
    import openvino as ov

    out_xml = Path(out_xml)
    if out_xml.suffix != ".xml":
        raise ValueError(f"output path must end in .xml, got {out_xml}")
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov_model.set_rt_info(metadata.to_json(), RT_INFO_PATH)
    tmp_dir = temp_sibling(out_xml, directory=True)  # ov.save_model writes .xml and .bin: a temporary folder
    try:
        tmp_xml = tmp_dir / out_xml.name
        ov.save_model(ov_model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        sidecar_tmp = tmp_dir / sidecar_path(out_xml).name
        sidecar_tmp.write_text(metadata.to_json() + "\n", encoding="utf-8")
        # .bin and sidecar first, .xml last: a present .xml means a complete export (each fsync'ed).
        replace(tmp_xml.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        replace(sidecar_tmp, sidecar_path(out_xml))
        replace(tmp_xml, out_xml)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_xml


def read_metadata(model: Any, *, path: str | Path | None = None) -> ModelMetadata:
    """Metadata of an exported model: from rt_info, else from the ``.meta.json`` sidecar.

    ``model`` is a path to ``.xml`` or an ``ov.Model`` already read (then ``path`` names its file,
    for the sidecar and for messages).
    """
    ov_model = read_model(model)
    path = Path(path) if path is not None else (Path(model) if isinstance(model, (str, Path)) else None)
    if ov_model.has_rt_info(RT_INFO_PATH):
        return ModelMetadata.from_json(ov_model.get_rt_info(RT_INFO_PATH).astype(str))
    if path is None or not sidecar_path(path).is_file():
        raise MetadataError(f"{path or 'the model'} carries no defect_plugins metadata (rt_info "
                            f"{'/'.join(RT_INFO_PATH)} or {sidecar_path(path or 'model.xml').name}): "
                            f"not exported by defect-export?")
    return ModelMetadata.from_json(sidecar_path(path).read_text())


def model_size_mb(model_xml: str | Path) -> float:
    """Size on disk of ``.xml`` + ``.bin`` in MB (10^6 bytes)."""
    path = Path(model_xml)
    return (path.stat().st_size + path.with_suffix(".bin").stat().st_size) / 1e6


# --------------------------------------------------------------------------- images


class ImageReadError(OSError):
    """A file could not be decoded as an image."""


def read_bgr(path: str | Path) -> np.ndarray:
    """``cv2.imread`` as uint8 BGR ``(H, W, 3)``; raises :class:`ImageReadError` naming the file."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    return image


def list_images(folder: str | Path) -> list[Path]:
    """All files under ``folder`` with an image suffix, sorted (recursively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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
