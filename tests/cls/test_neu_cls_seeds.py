"""tools/neu_cls_seeds.py: configs x seeds through defect-train on tiny synthetic classes, paired differences."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "neu_cls_seeds.py"
CONFIG = "neu_cls/resnet18_neu_cls_64.py"  # packaged name, as a wheel user would give it
# one short epoch; the warm-up is two epochs long in the config, so the lr stays tiny: only the plumbing is tested
FAST = ["train_cfg.max_epochs=1", "train_cfg.val_interval=1", "train_dataloader.batch_size=8"]


def _tool():
    spec = importlib.util.spec_from_file_location("neu_cls_seeds", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    from defect_plugins.cls.datasets.split import write_split
    from defect_plugins.data import NEU_CLASSES, make_classification_dataset

    root = tmp_path_factory.mktemp("seeds")
    images = make_classification_dataset(root / "neu", per_class=4, image_size=32, seed=5)
    write_split(images, root / "split", list(NEU_CLASSES), train_ratio=0.5, seed=0)
    return images, root / "split"


def test_two_configs_paired_and_kept(data, tmp_path, capsys):
    tool = _tool()
    images, split = data
    work = tmp_path / "work"
    argv = [f"base={CONFIG}", f"other={CONFIG}", "--work-dir", str(work), "--reference", "base", "--seeds", "3",
            "--data", str(images), "--split", str(split), "--cfg-options", *FAST]
    assert tool.main(argv) == 0
    report = json.loads((work / "results.json").read_text())
    assert [(r["name"], r["seed"]) for r in report["runs"]] == [("base", 3), ("other", 3)]
    assert all(0.0 <= r["top1"] <= 1.0 for r in report["runs"])
    pair = report["paired"]["other - base"]
    assert pair["seeds"] == [3] and pair["n"] == 1
    runs = {(r["name"], r["seed"]): r["top1"] for r in report["runs"]}
    assert pair["differences"]["3"] == pytest.approx(runs["other", 3] - runs["base", 3])
    assert report["top1"]["base"]["n"] == 1
    assert "| other - base |" in capsys.readouterr().out
    # the run saw its seed and the given split
    log = (work / "seed3" / "other" / "train.log").read_text()
    assert "randomness = dict(deterministic=False, seed=3)" in log and f"{split}/train.txt" in log
    # finished runs are kept: a second call trains nothing and gives the same figures
    stamp = (work / "seed3" / "other" / "result.json").stat().st_mtime_ns
    assert tool.main(argv) == 0
    assert (work / "seed3" / "other" / "result.json").stat().st_mtime_ns == stamp
    assert json.loads((work / "results.json").read_text())["runs"] == report["runs"]
    # --per-class adds recall per class, G-mean and the minimum from the kept checkpoints, training nothing
    train_log = (work / "seed3" / "base" / "train.log").stat().st_mtime_ns
    assert tool.main([*argv[:-len(FAST) - 1], "--per-class", "--cfg-options", *FAST]) == 0
    assert (work / "seed3" / "base" / "train.log").stat().st_mtime_ns == train_log
    report = json.loads((work / "results.json").read_text())
    for run in report["runs"]:
        assert len(run["recall"]) == 6 and all(0.0 <= r <= 1.0 for r in run["recall"])
        assert run["min_recall"] == min(run["recall"])
        assert run["g_mean"] == pytest.approx(math.prod(run["recall"]) ** (1 / 6))
    assert set(report["g_mean"]) == {"base", "other"}
    assert "G-mean %" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["resnet18"], "expected NAME=CONFIG, got 'resnet18'"),
    (["a=x.py", "a=y.py"], "run name 'a' given twice"),
    (["a=x.py", "--reference", "b"], "--reference 'b' is not one of the runs ['a']"),
])
def test_bad_arguments_are_named(argv, message, tmp_path, capsys):
    assert _tool().main([*argv, "--work-dir", str(tmp_path / "w")]) == 2
    assert message in capsys.readouterr().err


def test_missing_split_file_is_named(tmp_path, capsys):
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "train.txt").write_text("")
    assert _tool().main([f"a={CONFIG}", "--work-dir", str(tmp_path / "w"), "--split", str(tmp_path / "split")]) == 2
    err = capsys.readouterr().err
    assert "test.txt not found" in err and str(tmp_path / "split") in err
    assert not (tmp_path / "w").exists()  # nothing written before the arguments are known to be good
