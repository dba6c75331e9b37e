"""OpenVINO's own ``benchmark_app`` on the same IRs, run and parsed, to stand beside ``defect-bench``'s figures.

A latency or throughput of our own is only credible next to the vendor tool's on the same IR,
precision, performance hint, thread count and batch. :func:`run_benchmark_app` runs it with this
interpreter's OpenVINO and the device config this package compiles with; :func:`parse_benchmark_app`
reads its console report (OpenVINO ``tools/benchmark/main.py``); :func:`benchmark_app_figures`
puts both side by side.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runtime import ov_config
from .harness import BenchmarkError

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

    The device config is :func:`defect_plugins.deploy.runtime.ov_config` (``INFERENCE_PRECISION_HINT``
    explicit, the same performance hint and ``INFERENCE_NUM_THREADS``), handed over with
    ``-load_config``: benchmark_app accepts ``-nthreads`` only with ``-hint none``, which would drop
    the hint our own measurements use. ``-infer_precision`` repeats the precision on the command
    line; ``-api sync`` for ``LATENCY`` (one request, like :func:`defect_plugins.deploy.runtime.latency`),
    ``async`` for ``THROUGHPUT`` (its request queue, like :func:`defect_plugins.deploy.runtime.throughput`).
    The compiled model's properties that benchmark_app prints are checked against the config, so a
    figure measured at another precision or thread count cannot slip into the comparison.
    """
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
