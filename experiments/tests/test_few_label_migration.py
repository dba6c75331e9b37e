"""experiments/migration/few_label_migration.py end to end on tiny synthetic lines, and the paired seed statistics
it reports."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from experiments.lib.stats import format_mean_sd, mean_sd, paired_differences
from experiments.migration import few_label_migration


def _tool():  # noqa: ANN202
    return few_label_migration


def test_paired_differences_are_taken_per_seed():
    a = {0: 0.90, 1: 0.80, 2: 0.85}
    b = {0: 0.85, 1: 0.80, 2: 0.70, 7: 0.10}  # seed 7 has no partner: left out
    result = paired_differences(a, b)
    assert result["seeds"] == [0, 1, 2]
    assert result["differences"] == pytest.approx({0: 0.05, 1: 0.0, 2: 0.15})
    assert result["mean"] == pytest.approx(0.2 / 3)
    mean = 0.2 / 3
    assert result["sd"] == pytest.approx(math.sqrt(((0.05 - mean) ** 2 + mean ** 2 + (0.15 - mean) ** 2) / 2))
    assert mean_sd([0.5])["sd"] is None
    assert format_mean_sd(mean_sd([0.9, 0.92]), 100) == "91.00 +- 1.41"
    with pytest.raises(ValueError, match="no common seed"):
        paired_differences({0: 1.0}, {1: 1.0})


@pytest.fixture(scope="module")
def new_line(tmp_path_factory) -> Path:
    """Domain B stand-in: NEU-layout class folders, another seed and size than the synthetic line A."""
    from defect_plugins.data import make_classification_dataset

    return make_classification_dataset(tmp_path_factory.mktemp("few") / "neu", per_class=5, image_size=40, seed=3)


def test_experiment_runs_end_to_end_and_keeps_finished_runs(new_line, tmp_path):
    tool = _tool()
    work = tmp_path / "work"
    argv = ["--neu", str(new_line), "--work-dir", str(work), "--seeds", "0", "--conditions", "a", "c",
            "--labels-per-class", "2", "--synthetic-per-class", "2", "--size", "32", "--gan-iters", "1",
            "--gan-batch", "1", "--gan-channels", "4", "--cls-iters", "2", "--warmup", "1"]
    assert tool.main(argv) == 0
    report = json.loads((work / "results.json").read_text())
    assert [(r["condition"], r["seed"]) for r in report["runs"]] == [("a", 0), ("c", 0)]
    assert all(0.0 <= r["top1"] <= 1.0 for r in report["runs"])
    assert set(report["paired"]) == {"c-a"}
    # the CycleGAN saw B's training images only, and the translation kept A's class folders
    split_train = (work / "split" / "train.txt").read_text().splitlines()
    assert len(list((work / "target_b_unlabelled").iterdir())) == len(split_train)
    assert sorted(p.name for p in (work / "source_a_to_b").iterdir() if p.is_dir()) == \
        sorted(p.name for p in (work / "source_a").iterdir() if p.is_dir())
    # few labels: 2 per class, all from the training split, never from the test split
    few = [line.rsplit(" ", 1)[0] for line in (work / "seed0" / "few_labels.txt").read_text().splitlines()]
    assert len(few) == 12 and set(few) <= {line.rsplit(" ", 1)[0] for line in split_train}
    # finished steps are kept: a second call trains nothing and reports the same figures
    stamp = (work / "seed0" / "c" / "result.json").stat().st_mtime_ns
    assert tool.main(argv) == 0
    assert (work / "seed0" / "c" / "result.json").stat().st_mtime_ns == stamp
    assert json.loads((work / "results.json").read_text())["runs"] == report["runs"]


def test_bad_target_folder_is_named(tmp_path, capsys):
    tool = _tool()
    (tmp_path / "neu" / "crazing").mkdir(parents=True)
    assert tool.main(["--neu", str(tmp_path / "neu"), "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "class folder(s)" in err and "inclusion" in err and str(tmp_path / "neu") in err
