"""experiments/akf_rd/akf_rd_mvtec.py: the paper's per-category protocol through anomalib's Engine, on two
synthetic categories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from defect_plugins.data import make_anomaly_dataset
from experiments.akf_rd import akf_rd_mvtec


def _tool():  # noqa: ANN202
    return akf_rd_mvtec


def test_two_categories_two_seeds_end_to_end_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    root = tmp_path / "mvtec"
    for seed, category in enumerate(("steel_a", "steel_b")):
        make_anomaly_dataset(root / category, num_train=4, num_test_good=2, num_test_defect=1, image_size=32,
                             seed=seed)
    shutil.rmtree(root / "steel_b" / "ground_truth")  # no masks: read by anomalib's Folder, image metrics only
    teacher = tmp_path / "resnet18.pth"  # offline teacher: a torchvision state dict
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), teacher)
    out = tmp_path / "out"
    common = ["--root", str(root), "--out", str(out), "--models", "akf_rd", "rd", "--backbone", "resnet18",
              "--teacher-weights", str(teacher), "--image-size", "32", "--epochs", "1", "--batch-size", "4",
              "--num-workers", "0", "--accelerator", "cpu", "--lr", "0.005", "--reference", "rd"]

    # seed 0 on one category, with PatchCore, the export of every model and their OpenVINO latency
    assert tool.main([*common, "--categories", "steel_a", "--seeds", "0", "--latency", "--latency-runs", "2",
                      "--models", "akf_rd", "rd", "patchcore"]) == 0
    first = json.loads((out / "results.json").read_text())
    assert sorted(first["runs"]) == ["akf_rd:akf_oce/steel_a/seed0", "patchcore/steel_a/seed0", "rd/steel_a/seed0"]
    assert first["runs"]["patchcore/steel_a/seed0"]["epochs_run"] == 1  # one pass, then validation
    assert first["runs"]["rd/steel_a/seed0"]["epochs_run"] == 1
    for name in ("akf_rd:akf_oce", "rd", "patchcore"):
        run = first["runs"][f"{name}/steel_a/seed0"]
        assert Path(run["ir"]).is_file() and Path(run["ir"]).with_suffix(".bin").is_file()
        assert run["train_s_per_epoch"] > 0
        assert first["latency_ms"]["steel_a"][name] > 0

    capsys.readouterr()
    assert tool.main([*common, "--categories", "steel_a", "steel_b", "--seeds", "0", "1"]) == 0
    log = capsys.readouterr().out
    assert "akf_rd:akf_oce/steel_a/seed0: done before, kept" in log and "rd/steel_a/seed0: done before, kept" in log
    second = json.loads((out / "results.json").read_text())
    expected = ["patchcore/steel_a/seed0", *(f"{n}/{c}/seed{s}" for n in ("akf_rd:akf_oce", "rd")
                                             for c in ("steel_a", "steel_b") for s in (0, 1))]
    assert sorted(second["runs"]) == sorted(expected)
    assert second["runs"]["rd/steel_a/seed0"] == first["runs"]["rd/steel_a/seed0"]  # not re-run
    for key, run in second["runs"].items():
        assert run["train_s_per_epoch"] > 0
        assert 0.0 <= run["metrics"]["image_AUROC"] <= 1.0
        pixel = {"pixel_AUROC", "pixel_AUPRO"} & set(run["metrics"])
        assert pixel == (set() if "/steel_b/" in key else {"pixel_AUROC", "pixel_AUPRO"})

    assert second["settings"]["scores"] == "rank-preserving" and second["settings"]["root"] == str(root.resolve())
    table = (out / "table.md").read_text()
    assert "| steel_a |" in table and "| steel_b |" in table and "| **mean** |" in table
    assert "paper's AKF-RD (akf_oce): 99.0 / 97.9 / 94.8" in table and "no per-category paper column" in table
    mean_rd = [line for line in table.splitlines() if line.startswith("| **mean** |")][0].split("|")[3]
    expected = sum(run["metrics"]["image_AUROC"] for key, run in second["runs"].items() if key.startswith("rd/")) / 4
    assert mean_rd.strip() == f"{100 * expected:.1f} / n/a / n/a"  # steel_b has no masks: no pixel mean
    # the paired difference on the category mean, seed by seed, as the table prints it
    diffs = []
    for seed in (0, 1):
        akf, rd = ([second["runs"][f"{n}/{c}/seed{seed}"]["metrics"]["image_AUROC"] for c in ("steel_a", "steel_b")]
                   for n in ("akf_rd:akf_oce", "rd"))
        diffs.append(100 * (sum(akf) - sum(rd)) / 2)
    row = [line for line in table.splitlines() if line.startswith("| mean | AKF-RD (akf_oce) |") and "[" in line][0]
    assert f"[{diffs[0]:+.1f}, {diffs[1]:+.1f}]" in row
    assert "| steel_a | RD | 2 |" in table and "| steel_b | RD | 2 |" in table

    # other settings in the same folder are refused, naming the key; nothing is rewritten
    before = (out / "results.json").read_bytes()
    assert tool.main([*[a if a != "1" else "2" for a in common], "--categories", "steel_a"]) == 2
    assert "settings.epochs" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before

    # the same protocol with a random-init teacher, paired with the given teacher's runs (--against)
    random_out = tmp_path / "random"
    other = ["--root", str(root), "--backbone", "resnet18", "--image-size", "32", "--batch-size", "4",
             "--num-workers", "0", "--accelerator", "cpu", "--lr", "0.005", "--random-teacher", "--models", "rd",
             "--categories", "steel_a", "--seeds", "0", "--against", f"given={out}"]
    assert tool.main([*other, "--epochs", "1", "--out", str(random_out)]) == 0
    random_run = json.loads((random_out / "results.json").read_text())
    assert random_run["settings"]["teacher_weights"] == "random init" and not random_run["settings"]["pre_trained"]
    row = [line for line in (random_out / "table.md").read_text().split("against the same model in 'given'")[1]
           .splitlines() if line.startswith("| steel_a | RD |")][0]
    expected = 100 * (random_run["runs"]["rd/steel_a/seed0"]["metrics"]["image_AUROC"]
                      - second["runs"]["rd/steel_a/seed0"]["metrics"]["image_AUROC"])
    assert f"[{expected:+.1f}]" in row
    # --against refuses a folder whose protocol differs in more than the teacher
    assert tool.main([*other, "--epochs", "2", "--out", str(tmp_path / "r2")]) == 2
    assert "settings.epochs" in capsys.readouterr().err


def test_run_names_and_labels_of_the_optimizer_choice() -> None:
    tool = _tool()
    names = tool.run_names(["akf_rd", "rd", "patchcore"], ["akf_oce", "akf_literal"], ["paper", "rd"])
    assert names == ["akf_rd:akf_oce", "akf_rd:akf_literal", "akf_rd:akf_oce@rd", "akf_rd:akf_literal@rd", "rd",
                     "patchcore"]
    assert tool.label("akf_rd:akf_oce@rd") == "AKF-RD (akf_oce, RD's Adam)"
    assert tool.label("akf_rd:akf_oce") == "AKF-RD (akf_oce)" and tool.label("patchcore") == "PatchCore"


def test_bad_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    (tmp_path / "r" / "c").mkdir(parents=True)
    base = ["--root", str(tmp_path / "r"), "--categories", "c", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        tool.main([*base, "--reference", "patchcore"])
    assert "--reference ['patchcore']: not among this run's models" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([*base, "--seeds", "0", "0"])
    assert "--seeds must be distinct" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_results_of_the_older_layout_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    (tmp_path / "r" / "c").mkdir(parents=True)
    args = ["--root", str(tmp_path / "r"), "--categories", "c", "--out", str(tmp_path / "out")]
    settings = tool.settings_of(tool.parse_args(args))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text(json.dumps({"settings": settings, "runs": {"rd/c": {}}}))
    assert tool.main(args) == 2
    assert "run keys must read MODEL/CATEGORY/seedN" in capsys.readouterr().err


def test_corrupt_results_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = _tool()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text("{not json")
    (tmp_path / "r" / "c").mkdir(parents=True)
    assert tool.main(["--root", str(tmp_path / "r"), "--categories", "c", "--out", str(tmp_path / "out")]) == 2
    assert "results.json: not JSON" in capsys.readouterr().err


def test_every_model_scores_with_the_rank_preserving_post_processor(tmp_path: Path) -> None:
    from defect_plugins.anomaly import RankPreservingPostProcessor
    from experiments.lib.mvtec_layout import mvtec_layout_datamodule

    tool = _tool()
    make_anomaly_dataset(tmp_path / "c", num_train=2, num_test_good=2, num_test_defect=2, image_size=32, seed=0)
    shutil.rmtree(tmp_path / "c" / "ground_truth")
    args = tool.parse_args(["--root", str(tmp_path), "--categories", "c", "--out", str(tmp_path / "out"),
                            "--backbone", "resnet18", "--random-teacher", "--image-size", "32"])
    for name in ("akf_rd:akf_oce", "rd", "patchcore"):
        assert type(tool.build_model(name, args).post_processor) is RankPreservingPostProcessor
    # without masks (anomalib's Folder) the whole test folder is scored and validates, as MVTecAD's default
    datamodule = mvtec_layout_datamodule(tmp_path / "c", batch_size=2, seed=3)
    datamodule.setup()
    test_images = [f for f in (tmp_path / "c" / "test").rglob("*") if f.is_file()]
    assert len(datamodule.test_data) == len(datamodule.val_data) == len(test_images)


def test_a_model_run_once_is_not_rerun_and_stands_for_every_seed(tmp_path: Path) -> None:
    tool = _tool()
    (tmp_path / "r" / "c").mkdir(parents=True)
    args = ["--root", str(tmp_path / "r"), "--categories", "c", "--models", "rd", "patchcore", "--seeds", "0", "1",
            "2", "--once", "patchcore", "--reference", "patchcore", "--out", str(tmp_path / "out")]
    settings = tool.settings_of(tool.parse_args(args))

    def run(auroc: float) -> dict:
        return {"metrics": {"image_AUROC": auroc}, "train_s_per_epoch": 1.0}

    runs = {f"rd/c/seed{seed}": run(value) for seed, value in enumerate((0.70, 0.72, 0.74))}
    runs["patchcore/c/seed0"] = run(0.60)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text(json.dumps({"settings": settings, "runs": runs, "latency_ms": {}}))
    assert tool.main(args) == 0  # every run it would train is there: PatchCore's seeds 1 and 2 are not asked for
    assert set(json.loads((tmp_path / "out" / "results.json").read_text())["runs"]) == set(runs)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "PatchCore, which ran once" in table
    row = [line for line in table.splitlines() if line.startswith("| c | RD |") and "[" in line][0]
    assert "+12.0 +- 2.0 [+10.0, +12.0, +14.0]" in row


def test_latency_is_not_retimed_when_an_ir_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Results copied from another machine keep their interleaved latency; the missing IR is named."""
    tool = _tool()
    (tmp_path / "r" / "c").mkdir(parents=True)
    args = ["--root", str(tmp_path / "r"), "--categories", "c", "--models", "rd", "patchcore", "--seeds", "0",
            "--latency", "--out", str(tmp_path / "out")]
    settings = tool.settings_of(tool.parse_args(args))
    present = tmp_path / "patchcore.xml"
    present.write_text("<net/>")  # never compiled: timing must not start with RD's IR gone
    runs = {"rd/c/seed0": {"metrics": {"image_AUROC": 0.7}, "train_s_per_epoch": 1.0,
                           "ir": str(tmp_path / "gone" / "rd.xml")},
            "patchcore/c/seed0": {"metrics": {"image_AUROC": 0.6}, "train_s_per_epoch": 1.0, "ir": str(present)}}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text(
        json.dumps({"settings": settings, "runs": runs, "latency_ms": {"c": {"patchcore": 37.4}}}))
    assert tool.main(args) == 0
    assert "not timing c: no OpenVINO IR on disk for rd" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "results.json").read_text())["latency_ms"] == {"c": {"patchcore": 37.4}}


def test_the_mean_over_categories_weighs_each_category_once(tmp_path: Path) -> None:
    tool = _tool()
    settings = tool.settings_of(tool.parse_args(["--root", str(tmp_path), "--categories", "a", "b", "--out", "o"]))
    runs = {"rd/a/seed0": {"metrics": {"image_AUROC": 0.60}}, "rd/a/seed1": {"metrics": {"image_AUROC": 0.70}},
            "rd/b/seed0": {"metrics": {"image_AUROC": 0.90}}}  # category b has one seed done so far
    table = tool.render_table({"settings": settings, "runs": runs}, ["rd"], ["a", "b"]).splitlines()
    assert "| **mean** | 77.5 / n/a / n/a |" in table  # (65 + 90) / 2, not (60 + 70 + 90) / 3
