"""The benchmark (defect-bench): its JSON on a tiny model, the speed-up formula, and OpenVINO's benchmark_app beside it.

The CPU-peak calibration, the FLOP counter and the deployment targets are studies now:
experiments/tests/test_deployment_targets.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from defect_plugins.deploy.bench.benchmark_app import parse_benchmark_app, run_benchmark_app
from defect_plugins.deploy.bench.cli import VARIANTS, format_table, run_benchmark, speedups
from defect_plugins.deploy.bench.harness import BenchmarkError

VARIANT_FIELDS = {"latency", "throughput", "peak_rss_mb", "peak_rss_over_baseline_mb", "model_size_mb", "metric",
                  "accuracy_delta_vs_torch", "memory_isolated"}


def test_benchmark_json_has_every_field(tiny_classifier, tmp_path):
    spec = {"family": "classifier", "config": str(tiny_classifier.config),
            "checkpoint": str(tiny_classifier.checkpoint), "calib_dir": str(tiny_classifier.data),
            "eval_dir": str(tiny_classifier.data), "tolerance": 1.0}
    report = run_benchmark([spec], tmp_path, threads=1, batches=(1, 2), runs=3, warmup=1, seconds=0.2,
                           eval_limit=6, subset_size=6, isolate=False)
    stored = json.loads((tmp_path / "benchmark.json").read_text())
    assert stored == json.loads(json.dumps(report))
    assert stored["settings"]["openvino_inference_precision_hint"] == "f32" and stored["machine"]["threads"] == 1
    assert "cpu_peak" not in stored  # a study now (experiments/deployment)
    (family,) = stored["families"]
    assert set(family["variants"]) == set(VARIANTS)
    for name, variant in family["variants"].items():
        assert VARIANT_FIELDS <= set(variant), name
        assert ({"p50_ms", "p95_ms"} <= set(variant["latency"])
                and variant["latency"]["p95_ms"] >= variant["latency"]["p50_ms"])
        assert (variant["throughput"]["images_per_s_best"] >= variant["throughput"]["images_per_s"] > 0
                and variant["throughput"]["batch"] in (1, 2))
        assert variant["model_size_mb"] > 0 and variant["metric"]["name"] == "accuracy"
    variants = family["variants"]
    assert variants["torch"]["accuracy_delta_vs_torch"] == 0.0
    # each OpenVINO variant timed its own export: swapping the IRs would swap these
    assert variants["openvino_fp32"]["ir_precision"] == "FP32" and variants["openvino_int8"]["ir_precision"] == "INT8"
    assert variants["openvino_int8"]["xml"].endswith("model_int8.xml")
    assert variants["openvino_int8"]["model_size_mb"] < variants["openvino_fp32"]["model_size_mb"]
    # the headline ratios are the measured throughputs' ratios, in the right direction
    tp = {key: value["throughput"]["images_per_s_best"] for key, value in variants.items()}
    assert family["speedup_int8_vs_fp32"] == pytest.approx(tp["openvino_int8"] / tp["openvino_fp32"])
    assert family["speedup_fp32_vs_torch"] == pytest.approx(tp["openvino_fp32"] / tp["torch"])
    assert "targets" not in family and "gflops_per_image" not in family  # studies now (experiments/deployment)
    # the inferencer's overhead: the whole predict() against the IR alone, steps timed on their own
    for name in ("openvino_fp32", "openvino_int8"):
        overhead = variants[name]["inferencer"]
        assert overhead["images"] == 6 and overhead["predict_ms"]["runs"] == 3
        assert overhead["overhead_fraction"] == pytest.approx(
            (overhead["predict_ms"]["p50_ms"] - overhead["ir_ms"]["p50_ms"]) / overhead["ir_ms"]["p50_ms"])
        assert min(overhead[k]["p50_ms"] for k in ("read_ms", "prepare_ms", "postprocess_ms", "ir_ms")) > 0
    # a classifier is also timed without the paper's regions (DefectInferencer(quantify=False))
    assert variants["openvino_fp32"]["inferencer"]["quantify"] is True
    assert variants["openvino_fp32"]["inferencer_class_only"]["quantify"] is False
    assert family["int8_quantization"]["metric"] == "accuracy" and family["int8_quantization"]["path"] == "ptq"
    # benchmark_app ran on the same IR, at f32, on one thread, at batch 1 and at our best batch
    assert "benchmark_app" not in variants["torch"]
    for name in ("openvino_fp32", "openvino_int8"):
        figures = variants[name]["benchmark_app"]
        assert f"-m {variants[name]['xml']} " in figures["latency"]["command"]
        for mode, hint in (("latency", "LATENCY"), ("throughput", "THROUGHPUT")):
            assert figures[mode]["compiled"]["INFERENCE_PRECISION_HINT"] == "f32"
            assert figures[mode]["compiled"]["INFERENCE_NUM_THREADS"] == 1
            assert figures[mode]["compiled"]["PERFORMANCE_HINT"] == hint
        assert (figures["latency"]["batch"] == 1
                and figures["throughput"]["batch"] == variants[name]["throughput"]["batch"])
        side = figures["side_by_side"]
        assert side["p50_ms"] == variants[name]["latency"]["p50_ms"] and side["benchmark_app_median_ms"] > 0
        assert side["benchmark_app_fps"] == figures["throughput"]["throughput_fps"] > 0
    table = format_table(stored)
    assert "openvino_int8" in table and "benchmark_app median" in table


def _variant(best: float, mean: float) -> dict:
    return {"throughput": {"images_per_s_best": best, "images_per_s": mean}}


def test_speedups_divide_the_faster_variant_by_the_slower_one():
    # distinct figures, so any swapped variant or inverted ratio gives another number
    ratios = speedups({"torch": _variant(10.0, 8.0), "openvino_fp32": _variant(30.0, 20.0),
                       "openvino_int8": _variant(75.0, 60.0)})
    assert ratios == {"speedup_fp32_vs_torch": 3.0, "speedup_int8_vs_fp32": 2.5,
                      "speedup_fp32_vs_torch_whole_run": 2.5, "speedup_int8_vs_fp32_whole_run": 3.0}


def _tiny_ir(path):
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter(ov.PartialShape([-1, 16, 16, 3]), ov.Type.u8, name="image")
    x = ops.transpose(ops.convert(image, "f32"), ops.constant(np.array([0, 3, 1, 2], np.int64)))
    weights = ops.constant(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32))
    y = ops.convolution(x, weights, [1, 1], [1, 1], [1, 1], [1, 1])
    ov.save_model(ov.Model([ops.reduce_mean(y, ops.constant(np.array([2, 3], np.int64)), False)], [image], "tiny"),
                  str(path), compress_to_fp16=False)
    return path


def test_benchmark_app_runs_on_a_tiny_ir_and_is_parsed(tmp_path):
    xml = _tiny_ir(tmp_path / "tiny.xml")
    result = run_benchmark_app(xml, (16, 16), batch=2, hint="THROUGHPUT", threads=1, seconds=1)
    assert result["compiled"]["INFERENCE_PRECISION_HINT"] == "f32" and result["compiled"]["INFERENCE_NUM_THREADS"] == 1
    assert result["config"]["INFERENCE_PRECISION_HINT"] == "f32" and "-infer_precision f32" in result["command"]
    assert (result["iterations"] > 0
            and 0 < result["latency_min_ms"] <= result["latency_median_ms"] <= result["latency_max_ms"])
    # FPS counts images: iterations x batch over the run (benchmark_app rounds to 2 decimals)
    assert result["throughput_fps"] == pytest.approx(2 * result["iterations"] / (result["duration_ms"] / 1000),
                                                     rel=0.05)


def test_benchmark_app_report_units_and_missing_lines():
    text = "\n".join([
        "[ INFO ]   NUM_STREAMS: 2", "[ INFO ]   INFERENCE_NUM_THREADS: 4",
        "[ INFO ]   INFERENCE_PRECISION_HINT: <Type: 'bfloat16'>", "[ INFO ]   PERFORMANCE_HINT: THROUGHPUT",
        "[ INFO ] Count:            120 iterations", "[ INFO ] Duration:         1003.20 ms",
        "[ INFO ] Latency:", "[ INFO ]    Median:        850.50 us", "[ INFO ]    Average:       1.25 ms",
        "[ INFO ]    Min:           700.00 us", "[ INFO ]    Max:           3.10 ms",
        "[ INFO ] Throughput:   239.23 FPS"])
    parsed = parse_benchmark_app(text)
    assert parsed["latency_median_ms"] == pytest.approx(0.8505) and parsed["latency_average_ms"] == pytest.approx(1.25)
    assert parsed["throughput_fps"] == 239.23 and parsed["iterations"] == 120
    assert parsed["compiled"] == {"NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": 4, "INFERENCE_PRECISION_HINT": "bf16",
                                  "PERFORMANCE_HINT": "THROUGHPUT"}
    with pytest.raises(BenchmarkError, match="throughput_fps"):
        parse_benchmark_app(text.replace("Throughput:", "Speed:"))


def test_a_variant_is_measured_in_a_child_process():
    """The harness's child (python -m defect_plugins.deploy.bench.harness) answers with one JSON line."""
    from defect_plugins.deploy.bench.harness import run_child
    from defect_plugins.deploy.metadata import ModelMetadata

    metadata = ModelMetadata(family="classifier", precision="FP32", input_size=(16, 16), class_names=["a", "b"],
                             outputs=["probs"])
    result = run_child({"variant": "baseline", "metadata": metadata.to_dict(), "batches": [1], "threads": 1},
                       timeout=300)
    assert result["variant"] == "baseline" and result["peak_rss_mb"] > 0
