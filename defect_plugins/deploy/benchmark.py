"""Benchmark PyTorch eager, OpenVINO FP32 and OpenVINO INT8 of a model family in one run.

For every family given, the parent process loads the trained model once, exports the FP32 IR and
the INT8 IR (:func:`.export.export_model`; INT8 goes through the guard, PTQ then accuracy control,
with ``force=True`` so that it can be measured, and the JSON says whether it is inside the tolerance) and then measures each variant in
a fresh child process, so that peak memory (``resource.getrusage(...).ru_maxrss``) belongs to that
variant alone:

* latency p50/p95 at batch 1 (synchronous calls; OpenVINO with the ``LATENCY`` hint);
* throughput at the best of the batch sizes tried (PyTorch: back-to-back calls; OpenVINO:
  ``ov.AsyncInferQueue`` with the ``THROUGHPUT`` hint, OpenVINO's stream count);
* peak resident memory of the child (``VmHWM``), and the same for a child that only imports the libraries
  (``baseline``), so ``peak_rss_over_baseline_mb`` is what the model itself costs;
* model size on disk (PyTorch: its ``state_dict`` saved with ``torch.save``; OpenVINO: .xml + .bin);
* the family's metric on a labelled folder (:func:`.int8.evaluate`) and its delta to PyTorch;
* for each OpenVINO IR, the same figures from OpenVINO's own ``benchmark_app`` (same IR, precision,
  performance hint, threads and batch; :func:`run_benchmark_app`), side by side with ours;
* for each OpenVINO IR, the overhead of :class:`.inferencer.DefectInferencer` at batch 1: its whole
  ``predict(path)`` (read, resize, inference, post-processing with quantification) against the
  IR's own call on the same inputs, with each step timed alone (:func:`inferencer_overhead`).

OpenVINO is always compiled with ``INFERENCE_PRECISION_HINT="f32"`` here (INT8 layers run in INT8,
the rest in f32): the bf16 default of this CPU would make FP32 and INT8 incomparable.

Achieved fraction of the CPU's peak: model FLOPs per image (``torch.utils.flop_counter``,
multiply-add = 2 FLOPs) times images/s, over the FLOP/s of a large fp32 matmul
(``torch.mm``, 2048x2048) measured on the same machine with the same thread count.

Command line (``defect-bench``)::

    python -m defect_plugins.deploy.benchmark --family classifier --config C.py --checkpoint E.pth \\
        --calib-dir CAL --eval-dir EVAL --out work_dirs/deploy/bench
    python -m defect_plugins.deploy.benchmark --spec families.json --out work_dirs/deploy/bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from defect_plugins.fileio import atomic_path, atomic_write_json

VARIANTS = ("torch", "openvino_fp32", "openvino_int8")
SPEC_KEYS = ("family", "config", "checkpoint", "input_size", "class_names", "anomalib_model", "calib_dir", "eval_dir",
             "tolerance", "name")


class BenchmarkError(RuntimeError):
    """A benchmark step failed; the message names the family and the step."""


# --------------------------------------------------------------------------- child side


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    ``VmHWM`` from ``/proc/self/status`` where available: ``getrusage(...).ru_maxrss`` survives
    ``exec`` on Linux, so a child started from a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _child(task: dict[str, Any]) -> dict[str, Any]:
    """Measure one variant (runs in its own process)."""
    import torch

    threads = task.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    from .export import load_model
    from .int8 import evaluate, openvino_predict
    from .metadata import ModelMetadata
    from .runtime import compile_model, latency, list_images, read_metadata, throughput, time_calls

    variant = task["variant"]
    metadata = ModelMetadata.from_dict(task["metadata"])
    size = tuple(metadata.input_size)
    rng = np.random.default_rng(0)
    batches = [int(b) for b in task["batches"]]
    result: dict[str, Any] = {"variant": variant}
    if variant == "baseline":
        import openvino  # noqa: F401  (same libraries as the measured children)

        result["peak_rss_mb"] = _peak_rss_mb()
        return result
    if variant == "torch":
        loaded = load_model(metadata.family, config=task.get("config"), checkpoint=task["checkpoint"],
                            input_size=size, class_names=metadata.class_names,
                            anomalib_model=task.get("anomalib_model") or "defect_plugins.anomaly.AkfReverseDistillation")
        module = loaded.module.eval()

        def run(batch: np.ndarray):
            with torch.inference_mode():
                return module(torch.from_numpy(batch))

        one = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
        result["latency"] = time_calls(lambda: run(one), runs=task["runs"], warmup=task["warmup"])
        best = None
        for batch_size in batches:
            data = rng.integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
            stats = time_calls(lambda: run(data), runs=max(5, task["runs"] // batch_size), warmup=1)
            ips = batch_size / (stats["mean_ms"] / 1000.0)
            if best is None or ips > best["images_per_s"]:
                # best call ~ least disturbed by other jobs, like the best round of OpenVINO's queue
                best = {"images_per_s": ips, "images_per_s_best": batch_size / (stats["min_ms"] / 1000.0),
                        "batch": batch_size, "streams": None, "jobs": 1}
        result["throughput"] = best
        result["peak_rss_mb"] = _peak_rss_mb()
        predict = loaded.torch_outputs
    else:
        xml = task["xml"]
        compiled = compile_model(xml, "f32", performance_hint="LATENCY", num_threads=threads, batch=1)
        one = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
        result["latency"] = latency(compiled, one, runs=task["runs"], warmup=task["warmup"])
        best = None
        for batch_size in batches:
            compiled_tp = compile_model(xml, "f32", performance_hint="THROUGHPUT", num_threads=threads,
                                        batch=batch_size)
            data = rng.integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
            stats = throughput(compiled_tp, data, seconds=task["seconds"])
            if best is None or stats["images_per_s"] > best["images_per_s"]:
                best = stats
            del compiled_tp
        result["throughput"] = best
        result["inference_precision_hint"] = "f32"
        result["xml"] = xml
        result["ir_precision"] = read_metadata(xml).precision  # proves which export this variant timed
        if task.get("overhead_dir"):  # plain images (the calibration folder): no label maps among them
            images = list_images(task["overhead_dir"])[: min(20, task.get("eval_limit") or 20)]
            result["inferencer"] = inferencer_overhead(xml, images, threads=threads, runs=task["runs"],
                                                       warmup=task["warmup"])
            if metadata.family == "classifier":  # the regions are optional for a classifier: both figures
                result["inferencer_class_only"] = inferencer_overhead(xml, images, threads=threads, runs=task["runs"],
                                                                      warmup=task["warmup"], quantify=False)
        result["peak_rss_mb"] = _peak_rss_mb()
        predict = openvino_predict(xml, "f32")
    if task.get("eval_dir"):
        metric = evaluate(predict, metadata, task["eval_dir"], limit=task.get("eval_limit"))
        result["metric"] = {"name": metric.name, "value": metric.value, "images": metric.num_images}
    return result


def inferencer_overhead(xml: str | Path, images: Sequence[Path], *, threads: int | None, runs: int = 30,
                        warmup: int = 3, quantify: bool = True) -> dict[str, Any]:
    """What :class:`.inferencer.DefectInferencer` adds to the IR's own latency at batch 1.

    ``predict_ms``: the whole ``predict(path)`` (read, resize, inference, post-processing with
    quantification and grading), cycling over ``images``. ``ir_ms``: the same compiled model's
    synchronous call on the same prepared inputs. ``overhead_fraction`` = (predict p50 - IR p50) /
    IR p50; the steps (``read``, ``prepare``, ``postprocess``) are also timed alone, so the JSON says
    where the overhead goes. All are timed in turn, one of each per round on the same image
    (:func:`.runtime.time_interleaved`), so a load that drifts affects all alike. ``quantify``: the
    inferencer's option of that name (``False``: a classifier without the paper's regions).
    """
    import itertools

    from .geometry import to_input
    from .inferencer import DefectInferencer
    from .runtime import read_bgr, time_interleaved

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


def _run_child(task: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if task.get("threads"):
        env.setdefault("OMP_NUM_THREADS", str(task["threads"]))
    command = [sys.executable, "-m", "defect_plugins.deploy.benchmark", "--child", json.dumps(task)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{\"variant\"")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise BenchmarkError(f"{task['variant']} child failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- OpenVINO benchmark_app

# benchmark_app's console script is ``openvino.tools.benchmark.main:main``; running it with this
# interpreter guarantees the same OpenVINO build as the measurements it is compared with.
_BENCHMARK_APP = "import sys; from openvino.tools.benchmark.main import main; sys.exit(main())"
_LATENCY_NAMES = {"Median": "latency_median_ms", "Average": "latency_average_ms", "Min": "latency_min_ms",
                  "Max": "latency_max_ms"}
_OV_TYPES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
_COMPILED_KEYS = ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT")


def parse_benchmark_app(text: str) -> dict[str, Any]:
    """Figures from ``benchmark_app``'s console report (OpenVINO ``tools/benchmark/main.py``).

    Reads ``Count``, ``Duration``, the latency ``Median``/``Average``/``Min``/``Max`` (printed in
    ms, or in us below 1 ms, converted to ms), ``Throughput`` (FPS: images per second, batch
    included) and, from step 8, the compiled model's ``INFERENCE_PRECISION_HINT``,
    ``INFERENCE_NUM_THREADS``, ``NUM_STREAMS`` and ``PERFORMANCE_HINT``. Only the first latency
    block is read (later ones are per-shape groups of dynamic runs).
    """
    figures: dict[str, Any] = {}
    compiled: dict[str, Any] = {}
    for line in text.splitlines():
        body = line.split("]", 1)[1].strip() if line.startswith("[ INFO ]") else ""
        key, _, value = body.partition(":")
        key, value = key.strip(), value.strip()
        if key in _LATENCY_NAMES and _LATENCY_NAMES[key] not in figures:
            number, unit = re.fullmatch(r"([\d.]+)\s*(ms|us)", value).groups()
            figures[_LATENCY_NAMES[key]] = float(number) / (1000.0 if unit == "us" else 1.0)
        elif key == "Count":
            figures["iterations"] = int(value.split()[0])
        elif key == "Duration":
            figures["duration_ms"] = float(value.split()[0])
        elif key == "Throughput":
            figures["throughput_fps"] = float(value.split()[0])
        elif key in _COMPILED_KEYS and key not in compiled:
            match = re.search(r"Type: '(\w+)'", value)
            compiled[key] = (_OV_TYPES.get(match.group(1), match.group(1)) if match
                             else int(value) if value.isdigit() else value)
    missing = [name for name in ("latency_median_ms", "throughput_fps", "iterations") if name not in figures]
    missing += [key for key in _COMPILED_KEYS if key not in compiled]
    if missing:
        tail = "\n".join(text.splitlines()[-12:])
        raise BenchmarkError(f"benchmark_app output lacks {missing} (expected its '[ INFO ] Median: ...', "
                             f"'Throughput: ... FPS' and compiled-model property lines):\n{tail}")
    return {**figures, "compiled": compiled}


def run_benchmark_app(xml: str | Path, input_size: Sequence[int], *, batch: int, hint: str, threads: int | None,
                      seconds: float, precision: str = "f32", timeout: float = 600) -> dict[str, Any]:
    """Run OpenVINO's ``benchmark_app`` on ``xml`` with the config this package compiles with.

    The device config is :func:`.runtime.ov_config` (``INFERENCE_PRECISION_HINT`` explicit, the
    same performance hint and ``INFERENCE_NUM_THREADS``), handed over with ``-load_config``:
    benchmark_app accepts ``-nthreads`` only with ``-hint none``, which would drop the hint our
    own measurements use. ``-infer_precision`` repeats the precision on the command line; ``-api
    sync`` for ``LATENCY`` (one request, like :func:`.runtime.latency`), ``async`` for
    ``THROUGHPUT`` (its request queue, like :func:`.runtime.throughput`). The compiled model's
    properties that benchmark_app prints are checked against the config, so a figure measured
    at another precision or thread count cannot slip into the comparison.
    """
    from .runtime import ov_config

    config = ov_config(precision, hint, num_threads=threads)
    height, width = int(input_size[0]), int(input_size[1])
    args = ["-m", str(xml), "-d", "CPU", "-t", str(max(1, round(seconds))), "-shape", f"[{batch},{height},{width},3]",
            "-api", "sync" if hint == "LATENCY" else "async", "-infer_precision", precision]
    with tempfile.TemporaryDirectory(prefix="benchmark-app-") as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps({"CPU": config}), encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, "-c", _BENCHMARK_APP, *args, "-load_config", str(config_file)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise BenchmarkError(f"benchmark_app on {xml} ran past {timeout} s") from error
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-12:])
        raise BenchmarkError(f"benchmark_app on {xml} failed (exit {proc.returncode}):\n{tail}")
    parsed = parse_benchmark_app(proc.stdout)
    expected = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": hint,
                **({"INFERENCE_NUM_THREADS": int(threads)} if threads else {})}
    wrong = {key: parsed["compiled"][key] for key, value in expected.items() if parsed["compiled"][key] != value}
    if wrong:
        raise BenchmarkError(f"benchmark_app compiled {xml} with {wrong}, expected {expected}")
    return {**parsed, "batch": int(batch), "config": config,
            "command": "benchmark_app " + " ".join(args) + " -load_config CONFIG.json"}


def benchmark_app_figures(xml: str | Path, input_size: Sequence[int], ours: dict[str, Any], *,
                          threads: int | None, seconds: float, timeout: float = 600) -> dict[str, Any]:
    """benchmark_app at batch 1 (``LATENCY``) and at our best throughput batch (``THROUGHPUT``), next to ours."""
    lat = run_benchmark_app(xml, input_size, batch=1, hint="LATENCY", threads=threads, seconds=seconds,
                            timeout=timeout)
    tput = run_benchmark_app(xml, input_size, batch=ours["throughput"]["batch"], hint="THROUGHPUT",
                             threads=threads, seconds=seconds, timeout=timeout)
    return {"latency": lat, "throughput": tput,
            "side_by_side": {"p50_ms": ours["latency"]["p50_ms"], "benchmark_app_median_ms": lat["latency_median_ms"],
                             "images_per_s": ours["throughput"]["images_per_s"],
                             "benchmark_app_fps": tput["throughput_fps"], "batch": ours["throughput"]["batch"]}}


# --------------------------------------------------------------------------- parent side


def speedups(variants: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Throughput ratios between variants: FP32 over PyTorch and INT8 over FP32 (higher = faster).

    The headline ratios use ``images_per_s_best`` (best round / best call: least disturbed by
    other jobs), the ``*_whole_run`` ones the mean over the whole run.
    """
    best = {key: value["throughput"]["images_per_s_best"] for key, value in variants.items()}
    mean = {key: value["throughput"]["images_per_s"] for key, value in variants.items()}
    return {"speedup_fp32_vs_torch": best["openvino_fp32"] / best["torch"],
            "speedup_int8_vs_fp32": best["openvino_int8"] / best["openvino_fp32"],
            "speedup_fp32_vs_torch_whole_run": mean["openvino_fp32"] / mean["torch"],
            "speedup_int8_vs_fp32_whole_run": mean["openvino_int8"] / mean["openvino_fp32"]}


# Issue 11's deployment targets (one run, same machine); the 80 %-of-peak one is set for the
# classifier and the anomaly model, and reported for every family.
TARGETS = {"fp32_at_least_80pct_of_peak": 0.80, "int8_at_least_2x_fp32": 2.0, "int8_metric_loss_at_most": 0.005,
           "inferencer_overhead_at_most": 0.10}


def targets(variants: dict[str, dict[str, Any]], ratios: dict[str, float]) -> dict[str, bool | None]:
    """Which of :data:`TARGETS` a family meets (``None``: not measured, e.g. no labelled folder).

    The INT8 metric loss is FP32 IR minus INT8 IR on the same folder (higher metric = better), the
    overhead that of :class:`.inferencer.DefectInferencer` over the FP32 IR at batch 1.
    """
    fp32, int8 = variants["openvino_fp32"], variants["openvino_int8"]
    loss = None
    if "metric" in fp32 and "metric" in int8:
        loss = fp32["metric"]["value"] - int8["metric"]["value"]
    overhead = fp32.get("inferencer", {}).get("overhead_fraction")
    return {"fp32_at_least_80pct_of_peak": fp32["fraction_of_cpu_peak"] >= TARGETS["fp32_at_least_80pct_of_peak"],
            "int8_at_least_2x_fp32": ratios["speedup_int8_vs_fp32"] >= TARGETS["int8_at_least_2x_fp32"],
            "int8_metric_loss_at_most_0.5pt": None if loss is None else loss <= TARGETS["int8_metric_loss_at_most"],
            "inferencer_overhead_at_most_10pct": None if overhead is None
            else overhead <= TARGETS["inferencer_overhead_at_most"]}


def _runs_for(seconds: float, once_ms: float) -> int:
    """How many timed calls fill about ``seconds`` (at least 3), given one call's duration."""
    return max(3, int(seconds * 1000.0 / max(once_ms, 1e-3)))


def _product_gflops(flop: float, stats: dict[str, float]) -> dict[str, Any]:
    """Best and median GFLOP/s of timed products (:func:`.runtime.time_calls` statistics)."""
    return {"best_gflops": flop / (stats["min_ms"] / 1000.0) / 1e9,
            "median_gflops": flop / (stats["p50_ms"] / 1000.0) / 1e9, "runs": stats["runs"]}


def cpu_peak_gflops(threads: int | None = None, sizes: Sequence[int] = (256, 512, 1024, 2048),
                    seconds: float = 1.5) -> dict[str, Any]:
    """FLOP/s of large fp32 matrix products on this machine: the practical peak.

    Two libraries, because they differ here: ``torch.mm`` (MKL) reached about 96 GFLOP/s on one
    thread of this AMD EPYC core, while oneDNN convolutions ran faster than that in both
    frameworks, so an MKL figure alone would make "fractions of peak" exceed 100 %. Each size is
    therefore also run as an OpenVINO fp32 ``MatMul`` (oneDNN, compiled at f32). For every library
    and size, the products run for about ``seconds`` through the package's one timing loop
    (:func:`.runtime.time_calls` / :func:`.runtime.latency`); the best (least disturbed by other
    processes) and the median are kept, and ``gflops`` is the best over all of them.
    """
    import openvino as ov
    import openvino.opset13 as ops
    import torch

    from .runtime import compile_model, latency, time_calls

    if threads:
        torch.set_num_threads(int(threads))
    per_size: dict[str, Any] = {}
    for n in sizes:
        flop = 2.0 * n**3
        a, b = torch.randn(n, n), torch.randn(n, n)
        once = time_calls(lambda: torch.mm(a, b), runs=1, warmup=1)["mean_ms"]
        per_size[f"torch_mm_{n}"] = _product_gflops(
            flop, time_calls(lambda: torch.mm(a, b), runs=_runs_for(seconds, once), warmup=1))
        left = ops.parameter([n, n], ov.Type.f32)
        right = ops.constant(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
        compiled = compile_model(ov.Model([ops.matmul(left, right, False, False)], [left], "matmul"), "f32",
                                 num_threads=threads)
        data = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
        once = latency(compiled, data, runs=1, warmup=1)["mean_ms"]
        per_size[f"openvino_matmul_{n}"] = _product_gflops(
            flop, latency(compiled, data, runs=_runs_for(seconds, once), warmup=1))
    best_key = max(per_size, key=lambda key: per_size[key]["best_gflops"])
    best = per_size[best_key]
    return {"gflops": best["best_gflops"], "gflops_median": best["median_gflops"], "best_of": best_key,
            "per_size": per_size, "threads": torch.get_num_threads(), "dtype": "float32"}


def count_gflops(module: Any, *example: Any) -> float:
    """GFLOPs of ``module(*example)`` (``torch.utils.flop_counter``: conv/matmul, multiply-add = 2 FLOPs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        module(*example)
    return counter.get_total_flops() / 1e9


def model_gflops(module: Any, input_size: Sequence[int]) -> float:
    """GFLOPs of one forward pass at batch 1 of a module with this package's uint8 BGR NHWC input."""
    import torch

    return count_gflops(module, torch.randint(0, 256, (1, int(input_size[0]), int(input_size[1]), 3), dtype=torch.uint8))


def benchmark_family(spec: dict[str, Any], out_dir: Path, *, threads: int | None, batches: Sequence[int],
                     runs: int, warmup: int, seconds: float, eval_limit: int | None, subset_size: int,
                     peak: dict[str, Any], timeout: float = 1800, isolate: bool = True,
                     benchmark_app: bool = True) -> dict[str, Any]:
    """Export FP32 + INT8 and measure the three variants of one model family.

    ``isolate=False`` measures in this process (fast, for tests): peak memory figures are then
    those of the whole process, not of one variant, and the JSON says so. ``benchmark_app``: also
    run OpenVINO's ``benchmark_app`` on each IR (:func:`benchmark_app_figures`).
    """
    import torch

    from .export import export_model, load_model
    from .runtime import model_size_mb

    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise BenchmarkError(f"unknown keys {sorted(unknown)} in a family spec; expected {list(SPEC_KEYS)}")
    family = spec["family"]
    name = spec.get("name", family)
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    loaded = load_model(family, config=spec.get("config"), checkpoint=spec["checkpoint"],
                        input_size=spec.get("input_size"), class_names=spec.get("class_names"),
                        anomalib_model=spec.get("anomalib_model") or "defect_plugins.anomaly.AkfReverseDistillation")
    metadata = loaded.metadata
    torch_file = folder / "torch_state_dict.pth"
    with atomic_path(torch_file) as tmp:
        torch.save(loaded.module.state_dict(), tmp)
    fp32_xml, _ = export_model(family, folder / "model_fp32.xml", loaded=loaded, precision="FP32")
    calib = spec.get("calib_dir") or spec.get("eval_dir")
    if calib is None:
        raise BenchmarkError(f"{name}: INT8 needs calib_dir (or eval_dir)")
    tolerance = float(spec.get("tolerance", 0.01))
    int8_xml, int8_meta = export_model(family, folder / "model_int8.xml", loaded=loaded, precision="INT8",
                                       calib_dir=calib, eval_dir=spec.get("eval_dir"), tolerance=tolerance,
                                       force=True, subset_size=subset_size, eval_limit=eval_limit)
    export_s = time.perf_counter() - started
    gflops = model_gflops(loaded.module, metadata.input_size)
    del loaded
    base_task = {"metadata": metadata.to_dict(), "threads": threads, "batches": list(batches), "runs": runs,
                 "warmup": warmup, "seconds": seconds, "eval_dir": spec.get("eval_dir"), "eval_limit": eval_limit,
                 "config": spec.get("config"), "checkpoint": spec["checkpoint"],
                 "anomalib_model": spec.get("anomalib_model"), "overhead_dir": calib}
    def measure(task: dict[str, Any]) -> dict[str, Any]:
        return _run_child(task, timeout) if isolate else json.loads(json.dumps(_child(task)))

    baseline = measure({**base_task, "variant": "baseline"})
    variants: dict[str, Any] = {}
    for variant, xml, size_mb in (("torch", None, torch_file.stat().st_size / 1e6),
                                  ("openvino_fp32", fp32_xml, model_size_mb(fp32_xml)),
                                  ("openvino_int8", int8_xml, model_size_mb(int8_xml))):
        result = measure({**base_task, "variant": variant, "xml": str(xml) if xml else None})
        result["memory_isolated"] = isolate
        result["model_size_mb"] = size_mb
        result["peak_rss_over_baseline_mb"] = result["peak_rss_mb"] - baseline["peak_rss_mb"]
        # best window vs best matmul: both as little disturbed by the other jobs as we could measure
        result["achieved_gflops"] = gflops * result["throughput"]["images_per_s_best"]
        result["fraction_of_cpu_peak"] = result["achieved_gflops"] / peak["gflops"]
        if xml is not None and benchmark_app:
            result["benchmark_app"] = benchmark_app_figures(xml, metadata.input_size, result, threads=threads,
                                                            seconds=seconds, timeout=timeout)
        variants[variant] = result
    reference = variants["torch"].get("metric", {}).get("value")
    for result in variants.values():
        value = result.get("metric", {}).get("value")
        result["accuracy_delta_vs_torch"] = None if value is None or reference is None else value - reference
    ratios = speedups(variants)
    quant = int8_meta.quantization or {}
    return {
        "name": name, "family": family, "input_size": list(metadata.input_size), "gflops_per_image": gflops,
        "source": metadata.source, "baseline_peak_rss_mb": baseline["peak_rss_mb"], "variants": variants,
        **ratios,
        "speedups_use": "images_per_s_best (best round / best call); *_whole_run: mean over the whole run",
        "int8_quantization": quant, "int8_within_tolerance": bool(quant) and quant.get("drop", 1.0) <= tolerance,
        "targets": targets(variants, ratios),
        "export_seconds": export_s, "seconds": time.perf_counter() - started,
    }


def run_benchmark(specs: Sequence[dict[str, Any]], out_dir: str | Path, *, threads: int | None = None,
                  batches: Sequence[int] = (1, 4), runs: int = 30, warmup: int = 3, seconds: float = 3.0,
                  eval_limit: int | None = None, subset_size: int = 300, isolate: bool = True,
                  benchmark_app: bool = True) -> dict[str, Any]:
    """Benchmark every family in ``specs``; write ``benchmark.json`` in ``out_dir`` and return it."""
    import openvino as ov
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peak = cpu_peak_gflops(threads)
    report: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                    "threads": threads or torch.get_num_threads(), "load_average_start": list(os.getloadavg()),
                    "torch": torch.__version__, "openvino": ov.__version__},
        "cpu_peak": peak,
        "settings": {"memory_isolated": isolate, "batches": list(batches), "runs": runs, "warmup": warmup, "throughput_seconds": seconds,
                     "eval_limit": eval_limit, "calibration_subset": subset_size,
                     "openvino_inference_precision_hint": "f32",
                     "benchmark_app": benchmark_app},
        "families": [],
    }
    for spec in specs:
        report["families"].append(benchmark_family(spec, out_dir, threads=threads, batches=batches, runs=runs,
                                                   warmup=warmup, seconds=seconds, eval_limit=eval_limit,
                                                   subset_size=subset_size, peak=peak, isolate=isolate,
                                                   benchmark_app=benchmark_app))
        atomic_write_json(out_dir / "benchmark.json", report, indent=2)  # partial results survive
    report["machine"]["load_average_end"] = list(os.getloadavg())
    atomic_write_json(out_dir / "benchmark.json", report, indent=2)
    return report


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the report (one row per family and variant)."""
    header = (f"{'family':<22}{'variant':<15}{'p50 ms':>9}{'p95 ms':>9}{'img/s*':>9}{'batch':>6}{'peak MB':>9}"
              f"{'+MB':>8}{'size MB':>9}{'metric':>9}{'delta':>9}{'%peak':>7}")
    lines = [f"CPU peak (fp32 matmul): {report['cpu_peak']['gflops']:.1f} GFLOP/s, "
             f"{report['cpu_peak']['threads']} threads; OpenVINO INFERENCE_PRECISION_HINT=f32; "
             "img/s* = best round at the best batch", header,
             "-" * len(header)]
    for family in report["families"]:
        for variant, r in family["variants"].items():
            metric = r.get("metric", {}).get("value")
            delta = r.get("accuracy_delta_vs_torch")
            lines.append(
                f"{family['name']:<22}{variant:<15}{r['latency']['p50_ms']:>9.2f}{r['latency']['p95_ms']:>9.2f}"
                f"{r['throughput']['images_per_s_best']:>9.1f}{r['throughput']['batch']:>6}{r['peak_rss_mb']:>9.0f}"
                f"{r['peak_rss_over_baseline_mb']:>8.0f}{r['model_size_mb']:>9.2f}"
                f"{(f'{metric:.4f}' if metric is not None else '-'):>9}"
                f"{(f'{delta:+.4f}' if delta is not None else '-'):>9}{100 * r['fraction_of_cpu_peak']:>6.1f}%")
        for variant, r in family["variants"].items():
            if "benchmark_app" in r:
                side = r["benchmark_app"]["side_by_side"]
                lines.append(f"{'':<22}{variant:<15}ours p50 {side['p50_ms']:.2f} ms | benchmark_app median "
                             f"{side['benchmark_app_median_ms']:.2f} ms (batch 1); ours {side['images_per_s']:.1f} "
                             f"img/s | benchmark_app {side['benchmark_app_fps']:.1f} FPS (batch {side['batch']})")
        for variant, r in family["variants"].items():
            for key, what in (("inferencer", ""), ("inferencer_class_only", ", class only")):
                if key in r:
                    o = r[key]
                    lines.append(f"{'':<22}{variant:<15}DefectInferencer.predict{what} p50 {o['predict_ms']['p50_ms']:.2f}"
                                 f" ms vs IR {o['ir_ms']['p50_ms']:.2f} ms: overhead {100 * o['overhead_fraction']:.1f} %"
                                 f" (read {o['read_ms']['p50_ms']:.2f}, prepare {o['prepare_ms']['p50_ms']:.2f}, post "
                                 f"{o['postprocess_ms']['p50_ms']:.2f} ms)")
        lines.append(f"{'':<22}targets: " + ", ".join(f"{k} {v}" for k, v in family["targets"].items()))
        lines.append(f"{'':<22}FP32/torch x{family['speedup_fp32_vs_torch']:.2f}, INT8/FP32 "
                     f"x{family['speedup_int8_vs_fp32']:.2f}, INT8 within tolerance: {family['int8_within_tolerance']}, "
                     f"{family['gflops_per_image']:.3f} GFLOPs/image")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="defect-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help="JSON file: a list of family specs (keys: " + ", ".join(SPEC_KEYS) + ")")
    parser.add_argument("--family", choices=("classifier", "segmentor", "anomaly"))
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--anomalib-model")
    parser.add_argument("--calib-dir")
    parser.add_argument("--eval-dir")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("work_dirs/deploy/bench"))
    parser.add_argument("--threads", type=int, help="threads for PyTorch, OpenVINO and the peak matmul")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each OpenVINO throughput run")
    parser.add_argument("--eval-limit", type=int, help="evaluate on at most this many images")
    parser.add_argument("--subset-size", type=int, default=300, help="INT8 calibration images")
    parser.add_argument("--no-benchmark-app", action="store_true",
                        help="skip OpenVINO's benchmark_app on the same IRs (run by default, side by side)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    if args.spec:
        specs = json.loads(args.spec.read_text())
    elif args.family:
        specs = [{k: v for k, v in {"family": args.family, "config": args.config, "checkpoint": args.checkpoint,
                                     "input_size": args.input_size, "anomalib_model": args.anomalib_model,
                                     "calib_dir": args.calib_dir, "eval_dir": args.eval_dir,
                                     "tolerance": args.tolerance}.items() if v is not None}]
    else:
        parser.error("give --spec FILE or --family with --checkpoint")
    from .export import ExportError

    try:
        report = run_benchmark(specs, args.out, threads=args.threads, batches=args.batches, runs=args.runs,
                               warmup=args.warmup, seconds=args.seconds, eval_limit=args.eval_limit,
                               subset_size=args.subset_size, benchmark_app=not args.no_benchmark_app)
    except (BenchmarkError, ExportError, FileNotFoundError, ValueError) as error:
        print(f"defect-bench: error: {error}", file=sys.stderr)
        return 1
    print(format_table(report))
    print(f"written {args.out / 'benchmark.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
