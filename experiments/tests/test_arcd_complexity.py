"""experiments/arcd/arcd_complexity.py: the width-128 reconstructors reproduce the thesis' Table 4.2 sizes, thop's
counting rules, JSON rows."""
from __future__ import annotations

import json

import pytest
import torch

from experiments.arcd.arcd_complexity import THESIS_TABLE_4_2, count_thop_style, main, measure, reconstructor_variants
from tests.fixtures.seg_autouse import _mmseg_scope, _one_thread  # noqa: F401


@pytest.mark.parametrize("name", sorted(THESIS_TABLE_4_2))
def test_width_128_reconstructors_reproduce_table_4_2(name):
    """69.05 / 135.58 / 57.26 M parameters and 160.38 / 283.59 / 137.85 GFLOPs at 256x256 (thop), within 1 %."""
    cfg = dict(reconstructor_variants(128))[name]
    got = measure(cfg, 256)  # built and traced on the meta device: no memory, no arithmetic
    params, gflops = THESIS_TABLE_4_2[name]
    assert got["params_m"] == pytest.approx(params, rel=0.01)
    assert got["gflops"] == pytest.approx(gflops, rel=0.01)
    if name == "recon128_mflm":  # thop leaves out the positional embeddings: 64 per channel of the five blocks
        assert got["params_all_m"] - got["params_m"] == pytest.approx(64 * 128 * (1 + 2 + 4 + 8 + 8) / 1e6)
    else:
        assert got["params_all_m"] == got["params_m"]


def test_counter_follows_thop_rules():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    out = count_thop_style(conv, torch.zeros(1, 3, 10, 10))
    assert out["macs"] == 10 * 10 * 8 * 3 * 9 + 2 * 8 * 100  # conv MACs (no bias) + 2 per normalised element
    assert out["params"] == out["params_all"] == 8 * 3 * 9 + 8 + 16


def test_complexity_tool_writes_json_rows(tmp_path):
    out = tmp_path / "cx.json"
    main(["--size", "64", "--recon-bases", "8", "--no-discriminators", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["size"] == 64 and "thop" in data["convention"]
    names = [r["name"] for r in data["rows"]]
    assert names == ["recon8_base", "recon8_mdc", "recon8_mflm", "recon8_compact_base"]
    assert all({"name", "params_m", "gflops"} <= set(r) for r in data["rows"])
