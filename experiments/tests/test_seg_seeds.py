"""experiments/arcd/seg_seeds.py: mmseg configs x seeds through defect-train on the tiny strips, figures and
paired differences."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.arcd import seg_seeds
from tests.fixtures.seg import REPO, cli_options, tiny_options
from tests.fixtures.seg_autouse import _mmseg_scope, _one_thread  # noqa: F401


def _tool():  # noqa: ANN202
    return seg_seeds


def test_stage1_then_two_stage2_runs_paired_and_kept(strip_data: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    stage1 = tmp_path / "stage1"
    assert tool.main([f"base={REPO / 'configs/arcd/arcd_stage1_recon_strip.py'}", "--work-dir", str(stage1),
                      "--seeds", "0", "--key", "recon_loss",
                      "--cfg-options", *cli_options(tiny_options(strip_data, 1))]) == 0
    run = json.loads((stage1 / "seed0" / "base" / "result.json").read_text())
    figures = run["metrics"]
    assert figures["recon_loss"] == pytest.approx(figures["L2"] + 0.01 * (1 - figures["SSIM"]), rel=1e-6)
    assert "| base | 1 |" in (stage1 / "table.md").read_text()

    stage2 = tmp_path / "stage2"
    options = tiny_options(strip_data, 2)
    argv = [f"arcd={REPO / 'configs/arcd/arcd_stage2_unet_strip.py'}",
            f"calm={REPO / 'configs/arcd/arcd_stage2_unet-calm_strip.py'}", "--work-dir", str(stage2),
            "--seeds", "0", "--reference", "arcd",
            "--run-options", f"arcd:model.reconstructor_checkpoint={stage1}/seed{{seed}}/base/iter_2.pth",
            f"calm:model.reconstructor_checkpoint={stage1}/seed{{seed}}/base/iter_2.pth",
            "calm:model.neck.in_channels=[64,32,16,8,4]",  # the tiny widths (fixtures.seg.tiny_options(neck=True))
            "--cfg-options", *cli_options(options)]
    assert tool.main(argv) == 0
    report = json.loads((stage2 / "results.json").read_text())
    runs = {r["name"]: r["metrics"] for r in report["runs"]}
    for figures in runs.values():
        # ClassIoUMetric puts the per-class IoU next to mmseg's means; PixelAUROC its mean
        assert {"mIoU", "mAcc", "mAUROC"} <= set(figures)
        per_class = [v for k, v in figures.items() if k.startswith("IoU.")]
        assert per_class and 0.0 <= min(per_class) <= max(per_class) <= 100.0
    pair = report["paired"]["mIoU"]["calm - arcd"]
    assert pair["n"] == 1 and pair["mean"] == pytest.approx(runs["calm"]["mIoU"] - runs["arcd"]["mIoU"])
    table = (stage2 / "table.md").read_text()
    assert "| calm - arcd |" in table and "IoU." in table.splitlines()[0]
    # same data order for the pair: the sampler's seed is the run's seed, in both runs
    for name in ("arcd", "calm"):
        assert "seed=0" in (stage2 / "seed0" / name / "train.log").read_text().split("train_dataloader")[1][:600]

    # finished runs are kept: a second call trains nothing and gives the same report
    stamp = (stage2 / "seed0" / "calm" / "result.json").stat().st_mtime_ns
    capsys.readouterr()
    assert tool.main(argv) == 0
    assert (stage2 / "seed0" / "calm" / "result.json").stat().st_mtime_ns == stamp
    assert json.loads((stage2 / "results.json").read_text())["paired"] == report["paired"]


def test_bad_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    assert tool.main(["a=x.py", "--work-dir", str(tmp_path), "--reference", "b"]) == 2
    assert "--reference 'b' is not one of the runs ['a']" in capsys.readouterr().err
    assert tool.main(["a=x.py", "--work-dir", str(tmp_path), "--compare", "a:c"]) == 2
    assert "'c' is not one of the runs" in capsys.readouterr().err
    assert tool.main(["a", "--work-dir", str(tmp_path)]) == 2
    assert "expected NAME=CONFIG, got 'a'" in capsys.readouterr().err
