"""defect-teacher (mmpretrain Runner through the launcher) and LoadTeacherWeights in anomalib's CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from defect_plugins.data import NEU_CLASSES, make_anomaly_dataset, make_classification_dataset
from defect_plugins.fit.domain_teacher import convert_checkpoint, main as teacher_main

CALLBACK = "defect_plugins.anomaly.callbacks.LoadTeacherWeights"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """defect-teacher on six tiny synthetic classes: resnet18, 1 epoch, 32 px."""
    root = tmp_path_factory.mktemp("teacher")
    data = make_classification_dataset(root / "cls", per_class=4, image_size=32, seed=0)
    out = root / "teacher.pth"
    code = teacher_main([str(data), "--out", str(out), "--backbone", "resnet18", "--epochs", "1",
                         "--image-size", "32", "--batch-size", "8"])
    assert code == 0
    return {"root": root, "data": data, "weights": out, "card": json.loads(out.with_suffix(".json").read_text())}


def test_teacher_writes_a_torchvision_state_dict_and_a_card(teacher: dict) -> None:
    state = torch.load(teacher["weights"], map_location="cpu", weights_only=True)
    torchvision.models.resnet18(weights=None, num_classes=len(NEU_CLASSES)).load_state_dict(state, strict=True)
    card = teacher["card"]
    assert card["classes"] == sorted(NEU_CLASSES) and card["epochs"] == 1 and card["backbone"] == "resnet18"
    assert sum(card["data"]["train_per_class"].values()) + sum(card["data"]["test_per_class"].values()) == 24
    assert 0.0 <= card["accuracy"]["top1"] <= 1.0
    assert Path(card["mmpretrain_checkpoint"]).is_file()  # trained by mmpretrain's Runner
    assert not list(teacher["weights"].parent.glob(".*tmp*"))


def test_teacher_resumes_a_run_cut_off_and_keeps_a_finished_one(teacher: dict, tmp_path: Path) -> None:
    from defect_plugins.fit.domain_teacher import _launcher_command

    work = tmp_path / "train"
    work.mkdir()
    assert "--resume" not in _launcher_command(tmp_path / "c.py", work)
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))  # what mmengine leaves after epoch 1
    assert _launcher_command(tmp_path / "c.py", work)[-1] == "--resume"
    # the same command again after a finished training converts the checkpoint, it does not train again
    checkpoint = Path(teacher["card"]["mmpretrain_checkpoint"])
    before = checkpoint.stat().st_mtime_ns
    assert teacher_main([str(teacher["data"]), "--out", str(teacher["weights"]), "--backbone", "resnet18",
                         "--epochs", "1", "--image-size", "32", "--batch-size", "8"]) == 0
    assert checkpoint.stat().st_mtime_ns == before
    card = json.loads(teacher["weights"].with_suffix(".json").read_text())
    assert card["accuracy"] == teacher["card"]["accuracy"]  # read from the same finished run's log
    state = torch.load(teacher["weights"], map_location="cpu", weights_only=True)
    again = convert_checkpoint(checkpoint, "resnet18", len(NEU_CLASSES))
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)


def test_teacher_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "only_one" ).mkdir()
    assert teacher_main([str(tmp_path / "missing"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "missing not found" in capsys.readouterr().err
    assert teacher_main([str(tmp_path), "--out", str(tmp_path / "t.pth")]) == 2
    assert "one sub-folder of images per class" in capsys.readouterr().err
    assert not (tmp_path / "t.pth").exists()


@pytest.mark.parametrize(("model", "extractor"), [("Patchcore", "feature_extractor"),
                                                  ("ReverseDistillation", "encoder")])
def test_teacher_loads_into_anomalib_models_from_the_cli(teacher: dict, model: str, extractor: str) -> None:
    """`anomalib fit --model M --trainer.callbacks+=LoadTeacherWeights ...` through anomalib's own CLI class."""
    from anomalib.cli import AnomalibCLI

    data_root = teacher["root"] / "ad"
    if not data_root.exists():
        make_anomaly_dataset(data_root / "steel", num_train=4, num_test_good=2, num_test_defect=1,
                             image_size=32, seed=0)
    cli = AnomalibCLI([
        "fit", "--model", model, "--model.backbone", "resnet18", "--model.pre_trained", "false",
        "--data", "MVTecAD", "--data.root", str(data_root), "--data.category", "steel",
        "--data.num_workers", "0", "--data.train_batch_size", "4", "--data.eval_batch_size", "4",
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        f"--trainer.callbacks+={CALLBACK}", f"--trainer.callbacks.weights_path={teacher['weights']}",
        "--default_root_dir", str(teacher["root"] / f"results_{model}"),
    ])
    callbacks = [c for c in cli.engine.trainer.callbacks if type(c).__name__ == "LoadTeacherWeights"]
    assert len(callbacks) == 1 and callbacks[0].loaded == [f"model.{extractor}"]
    loaded = getattr(cli.model.model, extractor).feature_extractor.state_dict()
    state = torch.load(teacher["weights"], map_location="cpu", weights_only=True)
    assert all(torch.equal(value, state[key])
               for key, value in loaded.items() if not key.endswith("num_batches_tracked"))
    assert len(loaded) > 50


def test_callback_names_a_model_without_extractor(teacher: dict) -> None:
    from defect_plugins.anomaly.callbacks import LoadTeacherWeights

    with pytest.raises(ValueError, match=r"Linear has no anomalib TimmFeatureExtractor.*teacher\.pth"):
        LoadTeacherWeights(teacher["weights"]).setup(None, torch.nn.Linear(2, 2), "fit")  # type: ignore[arg-type]
