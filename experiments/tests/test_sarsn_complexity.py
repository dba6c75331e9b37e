"""experiments/neu_cls/sarsn_complexity.py: parameter counts match the model, the paper stem costs what its maps
imply, JSON out."""
from __future__ import annotations

import json

import pytest


def test_rows_count_parameters_and_the_paper_stem_multiplies_the_work(tmp_path, capsys):
    from experiments.neu_cls.sarsn_complexity import MODELS_TABLE, main, model_complexity

    imagenet, paper = model_complexity("sarsn34"), model_complexity("sarsn34-paperstem")
    assert imagenet["last_stage"] == [512, 2, 2] and paper["last_stage"] == [512, 16, 16]
    # the 7x7 stem conv (3*64*49 weights) becomes a 3x3 one (3*64*9): 7680 parameters fewer, nothing else
    assert round((imagenet["params_M"] - paper["params_M"]) * 1e6) == 3 * 64 * (49 - 9)
    # stage 1-3 maps are 16x larger, stage 4 64x: the paper stem costs more than 16x the MACs
    assert paper["macs_G"] > 16 * imagenet["macs_G"]
    out = tmp_path / "c.json"
    assert main(["--models", "resnet34", "seresnet34", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| resnet34 | imagenet | - | 21.29 |" in printed and "| seresnet34 |" in printed
    data = json.loads(out.read_text())
    assert [r["model"] for r in data["rows"]] == ["resnet34", "seresnet34"] and "MACs" in data["convention"]
    assert data["rows"][0]["macs_G"] == pytest.approx(data["rows"][1]["macs_G"], rel=0.01)  # SE adds ~no MACs
    assert set(MODELS_TABLE) >= {"resnet50", "seresnet50", "drsn34", "drsn50", "sarsn50", "sarsn50-paperstem"}
    with pytest.raises(KeyError, match="unknown model 'resnet18'"):
        model_complexity("resnet18")
