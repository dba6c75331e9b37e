"""The CPU's practical fp32 peak: FLOP/s of large matrix products, the denominator of "fraction of peak".

Measured on the same machine with the same thread count as the model it is compared with
(:mod:`experiments.deployment.targets`), through the package's one timing loop
(:mod:`defect_plugins.deploy.runtime`), so that both figures see the same clock and load.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defect_plugins.deploy.runtime import compile_model, latency, time_calls


def _runs_for(seconds: float, once_ms: float) -> int:
    """How many timed calls fill about ``seconds`` (at least 3), given one call's duration."""
    return max(3, int(seconds * 1000.0 / max(once_ms, 1e-3)))


def _product_gflops(flop: float, stats: dict[str, float]) -> dict[str, Any]:
    """Best and median GFLOP/s of timed products (:func:`defect_plugins.deploy.runtime.time_calls` statistics)."""
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
    (:func:`defect_plugins.deploy.runtime.time_calls` / ``latency``); the best (least disturbed by other
    processes) and the median are kept, and ``gflops`` is the best over all of them.
    """
    import openvino as ov
    import openvino.opset13 as ops
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    per_size: dict[str, Any] = {}
    for n in sizes:
        flop = 2.0 * n**3
        a, b = torch.randn(n, n), torch.randn(n, n)
        once = time_calls(lambda a=a, b=b: torch.mm(a, b), runs=1, warmup=1)["mean_ms"]
        per_size[f"torch_mm_{n}"] = _product_gflops(
            flop, time_calls(lambda a=a, b=b: torch.mm(a, b), runs=_runs_for(seconds, once), warmup=1))
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
