"""experiments/neu_cls/neu_cls_seeds.py: configs x seeds through defect-train on tiny synthetic classes, paired
differences."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from experiments.neu_cls import neu_cls_seeds

CONFIG = "neu_cls/resnet18_neu_cls_64.py"  # packaged name, as a wheel user would give it
# one short epoch; the warm-up is two epochs long in the config, so the lr stays tiny: only the plumbing is tested
FAST = ["train_cfg.max_epochs=1", "train_cfg.val_interval=1", "train_dataloader.batch_size=8"]


def _tool():  # noqa: ANN202
    return neu_cls_seeds


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
            "--compare", "base:other", "--run-options", "other:seed_marker=s{seed}",
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
    # a --run-options item reaches its run only, with {seed} replaced; --compare adds its pair
    assert "seed_marker = 's3'" in log
    assert "seed_marker" not in (work / "seed3" / "base" / "train.log").read_text()
    assert report["paired"]["base - other"]["differences"]["3"] == pytest.approx(-pair["differences"]["3"])
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
    (["a=x.py", "--compare", "a"], "--compare: expected NAME:REFERENCE, got 'a'"),
    (["a=x.py", "--compare", "a:b"], "--compare 'a:b': 'b' is not one of the runs ['a']"),
    (["a=x.py", "--run-options", "b:k=1"], "--run-options 'b:k=1': 'b' is not one of the runs ['a']"),
    (["a=x.py", "--run-options", "a"], "--run-options: expected NAME:KEY=VALUE, got 'a'"),
    (["a=nowhere/x.py"], "nowhere/x.py"),
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


def test_wrapped_training_set_gets_data_and_split_on_its_innermost_dataset(tmp_path):
    """The paper-augmentation config wraps NEUCLSDataset twice (fusion around mosaic)."""
    options = _tool().data_options("neu_cls/sarsn34_paperaug_neu_cls_64.py", tmp_path / "images", tmp_path / "split")
    inner = "train_dataloader.dataset.dataset.dataset"
    assert f"{inner}.data_prefix={tmp_path / 'images'}" in options
    assert f"{inner}.ann_file={tmp_path / 'split'}/train.txt" in options
    assert f"test_dataloader.dataset.ann_file={tmp_path / 'split'}/test.txt" in options
    plain = _tool().data_options(CONFIG, tmp_path / "images", None)
    assert plain[0] == f"train_dataloader.dataset.data_prefix={tmp_path / 'images'}" and len(plain) == 3
