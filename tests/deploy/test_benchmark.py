"""The benchmark's JSON has every field, on a tiny model."""
from __future__ import annotations

import json

import pytest

from defect_plugins.deploy.benchmark import VARIANTS, cpu_peak_gflops, format_table, model_gflops, run_benchmark

VARIANT_FIELDS = {"latency", "throughput", "peak_rss_mb", "peak_rss_over_baseline_mb", "model_size_mb", "metric",
                  "accuracy_delta_vs_torch", "achieved_gflops", "fraction_of_cpu_peak", "memory_isolated"}


def test_benchmark_json_has_every_field(tiny_classifier, tmp_path):
    spec = {"family": "classifier", "config": str(tiny_classifier.config), "checkpoint": str(tiny_classifier.checkpoint),
            "calib_dir": str(tiny_classifier.data), "eval_dir": str(tiny_classifier.data), "tolerance": 1.0}
    report = run_benchmark([spec], tmp_path, threads=1, batches=(1, 2), runs=3, warmup=1, seconds=0.2,
                           eval_limit=6, subset_size=6, isolate=False)
    stored = json.loads((tmp_path / "benchmark.json").read_text())
    assert stored == json.loads(json.dumps(report))
    assert stored["cpu_peak"]["gflops"] > 0 and stored["settings"]["openvino_inference_precision_hint"] == "f32"
    (family,) = stored["families"]
    assert set(family["variants"]) == set(VARIANTS)
    for name, variant in family["variants"].items():
        assert VARIANT_FIELDS <= set(variant), name
        assert {"p50_ms", "p95_ms"} <= set(variant["latency"]) and variant["latency"]["p95_ms"] >= variant["latency"]["p50_ms"]
        assert variant["throughput"]["images_per_s_best"] >= variant["throughput"]["images_per_s"] > 0 and variant["throughput"]["batch"] in (1, 2)
        assert variant["model_size_mb"] > 0 and variant["metric"]["name"] == "accuracy"
        assert variant["fraction_of_cpu_peak"] > 0
    assert family["variants"]["torch"]["accuracy_delta_vs_torch"] == 0.0
    assert family["variants"]["openvino_int8"]["model_size_mb"] < family["variants"]["openvino_fp32"]["model_size_mb"]
    for key in ("speedup_fp32_vs_torch", "speedup_int8_vs_fp32", "speedup_fp32_vs_torch_whole_run", "int8_within_tolerance", "targets",
                "gflops_per_image", "int8_quantization"):
        assert key in family
    assert family["int8_quantization"]["metric"] == "accuracy"
    assert "openvino_int8" in format_table(stored)


def test_flops_and_peak_are_measured():
    import torch

    conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    class Wrapper(torch.nn.Module):
        def forward(self, images):
            return conv(images.permute(0, 3, 1, 2).float())

    # 2 FLOPs per multiply-add: 2 * 8 * 3 * 3 * 3 * 16 * 16 for a 16x16 image
    assert model_gflops(Wrapper(), (16, 16)) * 1e9 == pytest.approx(2 * 8 * 27 * 256)
    peak = cpu_peak_gflops(threads=1, sizes=(64, 128), seconds=0.05)
    assert peak["gflops"] >= peak["per_size"]["torch_mm_64"]["best_gflops"] > 0
    assert peak["per_size"]["openvino_matmul_128"]["best_gflops"] > 0
