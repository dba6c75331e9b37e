"""The deployment targets, checked on a ``defect-bench`` run: fraction of the CPU's peak, INT8 speed-up and loss.

    python experiments/deployment/targets.py --spec families.json --out work_dirs/deploy/bench [--threads 1]

Runs the product benchmark (:func:`defect_plugins.deploy.bench.cli.run_benchmark`: its
``benchmark.json`` as ``defect-bench`` writes it), then adds what only this study needs and writes
``targets.json`` next to it:

* ``cpu_peak``: the practical fp32 peak of this machine at the same thread count
  (:func:`experiments.deployment.cpu_peak.cpu_peak_gflops`);
* per family ``gflops_per_image`` (:func:`experiments.deployment.flops.model_gflops` of the PyTorch
  reference, multiply-add = 2 FLOPs), and per variant ``achieved_gflops`` (that times the best
  round's images per second) and ``fraction_of_cpu_peak`` (best window over best matmul: both as
  little disturbed by other jobs as could be measured);
* per family ``targets``: which of :data:`TARGETS` it meets (``None``: not measured).

The 80 %-of-peak target was set for the classifier and the anomaly model and is reported for every family.
"""
from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from defect_plugins.fileio import atomic_write_json  # noqa: E402
from experiments.deployment.cpu_peak import cpu_peak_gflops  # noqa: E402
from experiments.deployment.flops import model_gflops  # noqa: E402

TARGETS = {"fp32_at_least_80pct_of_peak": 0.80, "int8_at_least_2x_fp32": 2.0, "int8_metric_loss_at_most": 0.005,
           "inferencer_overhead_at_most": 0.10}


def targets(variants: dict[str, dict[str, Any]], ratios: dict[str, float]) -> dict[str, bool | None]:
    """Which of :data:`TARGETS` a family meets (``None``: not measured, e.g. no labelled folder).

    ``variants`` need ``fraction_of_cpu_peak`` (:func:`annotate`). The INT8 metric loss is FP32 IR
    minus INT8 IR on the same folder (higher metric = better), the overhead that of
    ``DefectInferencer`` over the FP32 IR at batch 1; ``ratios`` are the report's speed-ups.
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


def annotate(report: dict[str, Any], gflops: dict[str, float], peak: dict[str, Any]) -> dict[str, Any]:
    """A copy of a ``defect-bench`` report with the CPU peak, FLOP rates and :func:`targets` added.

    ``gflops``: GFLOPs per image by family name (the report's ``name``).
    """
    report = copy.deepcopy(report)
    report["cpu_peak"] = peak
    for family in report["families"]:
        family["gflops_per_image"] = gflops[family["name"]]
        for result in family["variants"].values():
            result["achieved_gflops"] = family["gflops_per_image"] * result["throughput"]["images_per_s_best"]
            result["fraction_of_cpu_peak"] = result["achieved_gflops"] / peak["gflops"]
        family["targets"] = targets(family["variants"], family)
    return report


def family_gflops(spec: dict[str, Any]) -> float:
    """GFLOPs per image of a family spec's PyTorch reference at its export size."""
    from defect_plugins.deploy.export import load_model

    loaded = load_model(spec["family"], config=spec.get("config"), checkpoint=spec["checkpoint"],
                        input_size=spec.get("input_size"), class_names=spec.get("class_names"),
                        **({"anomalib_model": spec["anomalib_model"]} if spec.get("anomalib_model") else {}))
    return model_gflops(loaded.module, loaded.metadata.input_size)


def format_targets(report: dict[str, Any]) -> str:
    """The study's lines: CPU peak, then per family its FLOPs, the FP32 fraction of peak and the targets."""
    lines = [f"CPU peak (fp32 matmul): {report['cpu_peak']['gflops']:.1f} GFLOP/s, "
             f"{report['cpu_peak']['threads']} threads ({report['cpu_peak']['best_of']})"]
    for family in report["families"]:
        fp32 = family["variants"]["openvino_fp32"]
        lines.append(f"{family['name']:<22}{family['gflops_per_image']:.3f} GFLOPs/image, FP32 "
                     f"{100 * fp32['fraction_of_cpu_peak']:.1f} % of peak; targets: "
                     + ", ".join(f"{k} {v}" for k, v in family["targets"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run defect-bench on the specs, then the CPU peak and the FLOPs; write ``targets.json``."""
    from defect_plugins.deploy.bench.cli import build_parser, format_table, run_benchmark, specs_from_args

    parser = build_parser()
    parser.prog = "experiments/deployment/targets.py"
    parser.add_argument("--peak-seconds", type=float, default=1.5, help="seconds per matrix size of the CPU peak")
    args = parser.parse_args(argv)
    specs = specs_from_args(parser, args)
    report = run_benchmark(specs, args.out, threads=args.threads, batches=args.batches, runs=args.runs,
                           warmup=args.warmup, seconds=args.seconds, eval_limit=args.eval_limit,
                           subset_size=args.subset_size, benchmark_app=not args.no_benchmark_app)
    gflops = {spec.get("name", spec["family"]): family_gflops(spec) for spec in specs}
    study = annotate(report, gflops, cpu_peak_gflops(args.threads, seconds=args.peak_seconds))
    atomic_write_json(Path(args.out) / "targets.json", study, indent=2)
    print(format_table(report))
    print(format_targets(study))
    print(f"written {Path(args.out) / 'benchmark.json'} and {Path(args.out) / 'targets.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
