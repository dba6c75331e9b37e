"""Timing of one variant for ``defect-bench``: PyTorch eager, an OpenVINO IR, and ``DefectInferencer`` around it.

The primitives are :mod:`defect_plugins.deploy.runtime`'s (``time_calls``, ``latency``,
``throughput``, ``time_interleaved``: measured the way OpenVINO's ``benchmark_app`` does it), so
that the benchmark, the demo and the studies time alike. Inputs are random uint8 BGR images at the
export size (fixed seed): the timing of these graphs does not depend on the pixels.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import read_bgr
from defect_plugins.imaging.geometry import to_input

from ..runtime import compile_model, latency, throughput, time_calls, time_interleaved
from .harness import BenchmarkError


def torch_timing(module: Any, size: Sequence[int], batches: Sequence[int], *, runs: int,
                 warmup: int) -> dict[str, Any]:
    """``latency`` at batch 1 and the best ``throughput`` over ``batches`` of a torch module (uint8 BGR NHWC in).

    Throughput is back-to-back calls: ``images_per_s`` from the mean call, ``images_per_s_best``
    from the fastest one (the least disturbed by other jobs, like the best round of OpenVINO's queue).
    """
    import torch

    rng = np.random.default_rng(0)

    def run(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return module(torch.from_numpy(batch))

    one = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
    figures: dict[str, Any] = {"latency": time_calls(lambda: run(one), runs=runs, warmup=warmup)}
    best = None
    for batch_size in batches:
        data = rng.integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
        stats = time_calls(lambda data=data: run(data), runs=max(5, runs // batch_size), warmup=1)
        ips = batch_size / (stats["mean_ms"] / 1000.0)
        if best is None or ips > best["images_per_s"]:
            best = {"images_per_s": ips, "images_per_s_best": batch_size / (stats["min_ms"] / 1000.0),
                    "batch": batch_size, "streams": None, "jobs": 1}
    figures["throughput"] = best
    return figures


def openvino_timing(xml: str | Path, size: Sequence[int], batches: Sequence[int], *, threads: int | None, runs: int,
                    warmup: int, seconds: float) -> dict[str, Any]:
    """``latency`` at batch 1 (``LATENCY`` hint) and the best ``throughput`` over ``batches`` (``THROUGHPUT`` hint).

    Always at ``INFERENCE_PRECISION_HINT=f32`` (INT8 layers run in INT8, the rest in f32).
    """
    rng = np.random.default_rng(0)
    compiled = compile_model(xml, "f32", performance_hint="LATENCY", num_threads=threads, batch=1)
    one = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
    figures: dict[str, Any] = {"latency": latency(compiled, one, runs=runs, warmup=warmup)}
    best = None
    for batch_size in batches:
        compiled_tp = compile_model(xml, "f32", performance_hint="THROUGHPUT", num_threads=threads, batch=batch_size)
        data = rng.integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
        stats = throughput(compiled_tp, data, seconds=seconds)
        if best is None or stats["images_per_s"] > best["images_per_s"]:
            best = stats
        del compiled_tp
    figures["throughput"] = best
    return figures


def inferencer_overhead(xml: str | Path, images: Sequence[Path], *, threads: int | None, runs: int = 30,
                        warmup: int = 3, quantify: bool = True) -> dict[str, Any]:
    """What :class:`defect_plugins.deploy.DefectInferencer` adds to the IR's own latency at batch 1.

    ``predict_ms``: the whole ``predict(path)`` (read, resize, inference, post-processing with
    quantification and grading), cycling over ``images``. ``ir_ms``: the same compiled model's
    synchronous call on the same prepared inputs. ``overhead_fraction`` = (predict p50 - IR p50) /
    IR p50; the steps (``read``, ``prepare``, ``postprocess``) are also timed alone, so the JSON says
    where the overhead goes. All are timed in turn, one of each per round on the same image
    (:func:`defect_plugins.deploy.runtime.time_interleaved`), so a load that drifts affects all
    alike. ``quantify``: the inferencer's option of that name (``False``: a classifier without the
    paper's regions).
    """
    from ..inferencer import DefectInferencer

    paths = [Path(p) for p in images]
    if not paths:
        raise BenchmarkError(f"{xml}: no images to measure the inferencer's overhead on")
    inferencer = DefectInferencer(xml, precision="f32", performance_hint="LATENCY", num_threads=threads,
                                  quantify=quantify)
    size = tuple(inferencer.metadata.input_size)
    pictures = [read_bgr(p) for p in paths]
    inputs = [to_input(image, size, inferencer.metadata.resize) for image in pictures]
    request = inferencer.compiled.create_infer_request()
    outputs = []
    for batch in inputs:
        request.infer({0: batch})
        outputs.append([request.get_output_tensor(i).data.copy() for i in range(len(inferencer.compiled.outputs))])

    family, metadata, settings = inferencer.family, inferencer.metadata, inferencer.settings
    steps = {
        "predict_ms": lambda i: inferencer.predict(paths[i]),
        "ir_ms": lambda i: request.infer({0: inputs[i]}),
        "read_ms": lambda i: read_bgr(paths[i]),
        "prepare_ms": lambda i: to_input(pictures[i], size, metadata.resize),
        "postprocess_ms": lambda i: family.postprocess(pictures[i], outputs[i], metadata, settings, str(paths[i])),
    }
    # the steps in turn, each on the same image in a round, the images cycled over the rounds
    order = itertools.cycle(range(len(paths)))
    current = [0]

    def next_image() -> None:
        current[0] = next(order)

    calls = {"next": next_image, **{name: (lambda step=step: step(current[0])) for name, step in steps.items()}}
    figures = time_interleaved(calls, runs=runs, warmup=warmup)
    figures.pop("next")
    ir, whole = figures["ir_ms"]["p50_ms"], figures["predict_ms"]["p50_ms"]
    return {**figures, "images": len(paths), "quantify": quantify, "overhead_ms": whole - ir,
            "overhead_fraction": (whole - ir) / ir,
            "steps_sum_fraction": (figures["read_ms"]["p50_ms"] + figures["prepare_ms"]["p50_ms"]
                                   + figures["postprocess_ms"]["p50_ms"]) / ir}
