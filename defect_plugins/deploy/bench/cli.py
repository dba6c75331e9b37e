"""``defect-bench``: the command, one family's run, the report (what is measured: :mod:`defect_plugins.deploy.bench`).

The parent process loads and exports each family once, then measures the variants in children
(:mod:`.harness`), runs ``benchmark_app`` beside them (:mod:`.benchmark_app`) and writes
``benchmark.json`` after every family (partial results survive a failure). Command line::

    defect-bench --family classifier --config C.py --checkpoint E.pth \\
        --calib-dir CAL --eval-dir EVAL --out work_dirs/deploy/bench
    defect-bench --spec families.json --out work_dirs/deploy/bench

(``python -m defect_plugins.deploy.bench ...`` is the same.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from defect_plugins.fileio import atomic_path, atomic_write_json

from ..metadata import FAMILIES
from .benchmark_app import benchmark_app_figures
from .harness import DEFAULT_ANOMALIB_MODEL, BenchmarkError, measure_variant, run_child

VARIANTS = ("torch", "openvino_fp32", "openvino_int8")
SPEC_KEYS = ("family", "config", "checkpoint", "input_size", "class_names", "anomalib_model", "calib_dir", "eval_dir",
             "tolerance", "name")


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


def benchmark_family(spec: dict[str, Any], out_dir: Path, *, threads: int | None, batches: Sequence[int],
                     runs: int, warmup: int, seconds: float, eval_limit: int | None, subset_size: int,
                     timeout: float = 1800, isolate: bool = True, benchmark_app: bool = True) -> dict[str, Any]:
    """Export FP32 + INT8 and measure the three variants of one model family.

    ``isolate=False`` measures in this process (fast, for tests): peak memory figures are then
    those of the whole process, not of one variant, and the JSON says so. ``benchmark_app``: also
    run OpenVINO's ``benchmark_app`` on each IR (:func:`.benchmark_app.benchmark_app_figures`).
    """
    import torch

    from ..export import export_model, load_model
    from ..runtime import model_size_mb

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
                        anomalib_model=spec.get("anomalib_model") or DEFAULT_ANOMALIB_MODEL)
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
    del loaded
    base_task = {"metadata": metadata.to_dict(), "threads": threads, "batches": list(batches), "runs": runs,
                 "warmup": warmup, "seconds": seconds, "eval_dir": spec.get("eval_dir"), "eval_limit": eval_limit,
                 "config": spec.get("config"), "checkpoint": spec["checkpoint"],
                 "anomalib_model": spec.get("anomalib_model"), "overhead_dir": calib}

    def measure(task: dict[str, Any]) -> dict[str, Any]:
        return run_child(task, timeout) if isolate else json.loads(json.dumps(measure_variant(task)))

    baseline = measure({**base_task, "variant": "baseline"})
    variants: dict[str, Any] = {}
    for variant, xml, size_mb in (("torch", None, torch_file.stat().st_size / 1e6),
                                  ("openvino_fp32", fp32_xml, model_size_mb(fp32_xml)),
                                  ("openvino_int8", int8_xml, model_size_mb(int8_xml))):
        result = measure({**base_task, "variant": variant, "xml": str(xml) if xml else None})
        result["memory_isolated"] = isolate
        result["model_size_mb"] = size_mb
        result["peak_rss_over_baseline_mb"] = result["peak_rss_mb"] - baseline["peak_rss_mb"]
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
        "name": name, "family": family, "input_size": list(metadata.input_size), "source": metadata.source,
        "baseline_peak_rss_mb": baseline["peak_rss_mb"], "variants": variants,
        **ratios,
        "speedups_use": "images_per_s_best (best round / best call); *_whole_run: mean over the whole run",
        "int8_quantization": quant, "int8_within_tolerance": bool(quant) and quant.get("drop", 1.0) <= tolerance,
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
    report: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                    "threads": threads or torch.get_num_threads(), "load_average_start": list(os.getloadavg()),
                    "torch": torch.__version__, "openvino": ov.__version__},
        "settings": {"memory_isolated": isolate, "batches": list(batches), "runs": runs, "warmup": warmup,
                     "throughput_seconds": seconds, "eval_limit": eval_limit, "calibration_subset": subset_size,
                     "openvino_inference_precision_hint": "f32", "benchmark_app": benchmark_app},
        "families": [],
    }
    for spec in specs:
        report["families"].append(benchmark_family(spec, out_dir, threads=threads, batches=batches, runs=runs,
                                                   warmup=warmup, seconds=seconds, eval_limit=eval_limit,
                                                   subset_size=subset_size, isolate=isolate,
                                                   benchmark_app=benchmark_app))
        atomic_write_json(out_dir / "benchmark.json", report, indent=2)  # partial results survive
    report["machine"]["load_average_end"] = list(os.getloadavg())
    atomic_write_json(out_dir / "benchmark.json", report, indent=2)
    return report


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of the report (one row per family and variant)."""
    header = (f"{'family':<22}{'variant':<15}{'p50 ms':>9}{'p95 ms':>9}{'img/s*':>9}{'batch':>6}{'peak MB':>9}"
              f"{'+MB':>8}{'size MB':>9}{'metric':>9}{'delta':>9}")
    lines = [f"{report['machine']['threads']} threads; OpenVINO INFERENCE_PRECISION_HINT=f32; "
             "img/s* = best round at the best batch", header, "-" * len(header)]
    for family in report["families"]:
        for variant, r in family["variants"].items():
            metric = r.get("metric", {}).get("value")
            delta = r.get("accuracy_delta_vs_torch")
            lines.append(
                f"{family['name']:<22}{variant:<15}{r['latency']['p50_ms']:>9.2f}{r['latency']['p95_ms']:>9.2f}"
                f"{r['throughput']['images_per_s_best']:>9.1f}{r['throughput']['batch']:>6}{r['peak_rss_mb']:>9.0f}"
                f"{r['peak_rss_over_baseline_mb']:>8.0f}{r['model_size_mb']:>9.2f}"
                f"{(f'{metric:.4f}' if metric is not None else '-'):>9}"
                f"{(f'{delta:+.4f}' if delta is not None else '-'):>9}")
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
                    lines.append(f"{'':<22}{variant:<15}DefectInferencer.predict{what} p50 "
                                 f"{o['predict_ms']['p50_ms']:.2f} ms vs IR {o['ir_ms']['p50_ms']:.2f} ms: overhead "
                                 f"{100 * o['overhead_fraction']:.1f} % (read {o['read_ms']['p50_ms']:.2f}, prepare "
                                 f"{o['prepare_ms']['p50_ms']:.2f}, post {o['postprocess_ms']['p50_ms']:.2f} ms)")
        lines.append(f"{'':<22}FP32/torch x{family['speedup_fp32_vs_torch']:.2f}, INT8/FP32 "
                     f"x{family['speedup_int8_vs_fp32']:.2f}, INT8 within tolerance: {family['int8_within_tolerance']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``defect-bench`` arguments."""
    parser = argparse.ArgumentParser(prog="defect-bench", description="Benchmark PyTorch eager, OpenVINO FP32 and "
                                     "OpenVINO INT8 of a model family in one run.")
    parser.add_argument("--spec", type=Path,
                        help="JSON file: a list of family specs (keys: " + ", ".join(SPEC_KEYS) + ")")
    parser.add_argument("--family", choices=FAMILIES)
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--anomalib-model")
    parser.add_argument("--calib-dir")
    parser.add_argument("--eval-dir")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=Path("work_dirs/deploy/bench"))
    parser.add_argument("--threads", type=int, help="threads for PyTorch and OpenVINO")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each OpenVINO throughput run")
    parser.add_argument("--eval-limit", type=int, help="evaluate on at most this many images")
    parser.add_argument("--subset-size", type=int, default=300, help="INT8 calibration images")
    parser.add_argument("--no-benchmark-app", action="store_true",
                        help="skip OpenVINO's benchmark_app on the same IRs (run by default, side by side)")
    return parser


def specs_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The family specs of a command line: the ``--spec`` file, or one spec from ``--family`` and its options."""
    if args.spec:
        specs = json.loads(args.spec.read_text())
    elif args.family:
        specs = [{k: v for k, v in {"family": args.family, "config": args.config, "checkpoint": args.checkpoint,
                                     "input_size": args.input_size, "anomalib_model": args.anomalib_model,
                                     "calib_dir": args.calib_dir, "eval_dir": args.eval_dir,
                                     "tolerance": args.tolerance}.items() if v is not None}]
    else:
        parser.error("give --spec FILE or --family with --checkpoint")
    return specs


def main(argv: Sequence[str] | None = None) -> int:
    """``defect-bench``: 0 with the table printed and ``benchmark.json`` written, 1 with the failed step on stderr."""
    from ..export import ExportError

    parser = build_parser()
    args = parser.parse_args(argv)
    specs = specs_from_args(parser, args)
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
