"""tools/akf_rd_mvtec.py: the paper's per-category protocol through anomalib's Engine, on two synthetic categories."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torchvision

from defect_plugins.data import make_anomaly_dataset

TOOL = Path(__file__).resolve().parents[2] / "tools" / "akf_rd_mvtec.py"


def _tool():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("akf_rd_mvtec", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_two_categories_end_to_end_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    root = tmp_path / "mvtec"
    for seed, category in enumerate(("steel_a", "steel_b")):
        make_anomaly_dataset(root / category, num_train=4, num_test_good=2, num_test_defect=1, image_size=32,
                             seed=seed)
    teacher = tmp_path / "resnet18.pth"  # offline teacher: a torchvision state dict
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), teacher)
    out = tmp_path / "out"
    common = ["--root", str(root), "--out", str(out), "--models", "akf_rd", "rd", "--backbone", "resnet18",
              "--teacher-weights", str(teacher), "--image-size", "32", "--epochs", "1", "--batch-size", "4",
              "--num-workers", "0", "--accelerator", "cpu", "--lr", "0.005"]

    assert tool.main([*common, "--categories", "steel_a"]) == 0
    first = json.loads((out / "results.json").read_text())
    assert sorted(first["runs"]) == ["akf_rd:akf_oce/steel_a", "rd/steel_a"]

    capsys.readouterr()
    assert tool.main([*common, "--categories", "steel_a", "steel_b"]) == 0
    log = capsys.readouterr().out
    assert "akf_rd:akf_oce/steel_a: done before, kept" in log and "rd/steel_a: done before, kept" in log
    second = json.loads((out / "results.json").read_text())
    assert sorted(second["runs"]) == ["akf_rd:akf_oce/steel_a", "akf_rd:akf_oce/steel_b", "rd/steel_a", "rd/steel_b"]
    assert second["runs"]["rd/steel_a"] == first["runs"]["rd/steel_a"]  # not re-run
    for run in second["runs"].values():
        assert {"image_AUROC", "pixel_AUROC", "pixel_AUPRO"} <= set(run["metrics"])
        assert 0.0 <= run["metrics"]["image_AUROC"] <= 1.0

    table = (out / "table.md").read_text()
    assert "| steel_a |" in table and "| steel_b |" in table and "| **mean** |" in table
    assert "paper's AKF-RD (akf_oce): 99.0 / 97.9 / 94.8" in table and "no per-category paper column" in table
    mean_rd = [line for line in table.splitlines() if line.startswith("| **mean** |")][0].split("|")[3]
    expected = sum(second["runs"][f"rd/{c}"]["metrics"]["image_AUROC"] for c in ("steel_a", "steel_b")) / 2
    assert mean_rd.strip().startswith(f"{100 * expected:.1f} /")

    # other settings in the same folder are refused, naming the key; nothing is rewritten
    before = (out / "results.json").read_bytes()
    assert tool.main([*[a if a != "1" else "2" for a in common], "--categories", "steel_a"]) == 2
    assert "settings.epochs" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


def test_corrupt_results_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text("{not json")
    (tmp_path / "r" / "c").mkdir(parents=True)
    assert tool.main(["--root", str(tmp_path / "r"), "--categories", "c", "--out", str(tmp_path / "out")]) == 2
    assert "results.json: not JSON" in capsys.readouterr().err
