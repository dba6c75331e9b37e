"""experiments/deployment: the FLOP counter, the CPU's practical peak, the targets added to a defect-bench report."""
from __future__ import annotations

import pytest

from experiments.deployment.cpu_peak import cpu_peak_gflops
from experiments.deployment.flops import model_gflops
from experiments.deployment.targets import TARGETS, annotate, format_targets


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
    matmul = peak["per_size"]["openvino_matmul_128"]
    assert matmul["best_gflops"] >= matmul["median_gflops"] > 0


def _variant(best: float, metric: float | None = None, overhead: float | None = None) -> dict:
    variant = {"throughput": {"images_per_s_best": best, "images_per_s": best / 2}}
    if metric is not None:
        variant["metric"] = {"name": "accuracy", "value": metric}
    if overhead is not None:
        variant["inferencer"] = {"overhead_fraction": overhead}
    return variant


def test_annotate_adds_the_flop_rates_and_the_targets_to_a_product_report():
    report = {"families": [{"name": "cls", "speedup_int8_vs_fp32": 2.5,
                            "variants": {"torch": _variant(10.0, 0.9), "openvino_fp32": _variant(40.0, 0.9, 0.05),
                                         "openvino_int8": _variant(100.0, 0.897)}}]}
    study = annotate(report, {"cls": 0.5}, {"gflops": 25.0, "threads": 1, "best_of": "torch_mm_64"})
    assert "cpu_peak" not in report and "targets" not in report["families"][0]  # the product's report is untouched
    (family,) = study["families"]
    fp32 = family["variants"]["openvino_fp32"]
    assert fp32["achieved_gflops"] == pytest.approx(0.5 * 40.0) and fp32["fraction_of_cpu_peak"] == pytest.approx(0.8)
    assert family["targets"] == {"fp32_at_least_80pct_of_peak": True, "int8_at_least_2x_fp32": True,
                                 "int8_metric_loss_at_most_0.5pt": True, "inferencer_overhead_at_most_10pct": True}
    assert TARGETS["int8_metric_loss_at_most"] == 0.005
    family["variants"]["openvino_int8"].pop("metric")
    assert annotate(report | {"families": [family]}, {"cls": 0.5}, study["cpu_peak"])["families"][0]["targets"][
        "int8_metric_loss_at_most_0.5pt"] is None
    assert "0.500 GFLOPs/image, FP32 80.0 % of peak" in format_targets(study)
