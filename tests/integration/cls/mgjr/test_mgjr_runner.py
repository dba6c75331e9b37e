"""MGJR end to end through tools/mim_train.sh / mim_test.sh (mmengine Runner, mmpretrain metrics):
stage 1 (ViT teacher) and stage 2 (joint training) for two iterations each, then OpenVINO export
of the student (defect-export) with f32 parity."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

TINY_MODELS = """
model = dict(backbone=dict(depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_channels=16, iema_groups=4, gl_heads=4),
             head=dict(in_channels=128))
"""


def _run(repo_root: Path, *args, timeout: int = 400) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([str(a) for a in args], cwd=repo_root, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def trained(repo_root, tiny_neu, tmp_path_factory):
    data, split = tiny_neu
    work = tmp_path_factory.mktemp("mgjr_mim")
    data_cfg = f"""
data_prefix = '{data}'
train_dataloader = dict(batch_size=6, dataset=dict(data_prefix=data_prefix, ann_file='{split}/train.txt'))
val_dataloader = dict(batch_size=6, dataset=dict(data_prefix=data_prefix, ann_file='{split}/test.txt'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
"""
    teacher_cfg = work / "teacher_tiny.py"
    teacher_cfg.write_text(
        f"_base_ = ['{repo_root}/configs/mgjr/vit_teacher_neu_cls_64.py']\n"
        "model = dict(backbone=dict(patch_size=16, model_kwargs=dict(depth=2, embed_dim=48, num_heads=3)),\n"
        "             head=dict(in_channels=48))\n" + data_cfg)
    mgjr_cfg = work / "mgjr_tiny.py"
    mgjr_cfg.write_text(f"_base_ = ['{repo_root}/configs/mgjr/mgjr_neu_cls_64.py']\n" + TINY_MODELS
                        + f"model.update(teacher_config='{teacher_cfg}', "
                          f"teacher_checkpoint='{work}/teacher/epoch_1.pth')\n"
                        + data_cfg)
    train = repo_root / "tools/mim_train.sh"
    teacher_log = _run(repo_root, train, "mmpretrain", teacher_cfg, "--work-dir", work / "teacher")
    mgjr_log = _run(repo_root, train, "mmpretrain", mgjr_cfg, "--work-dir", work / "mgjr")
    return work, mgjr_cfg, teacher_log, mgjr_log


def test_teacher_then_joint_training_two_iterations_each(trained, repo_root):
    work, mgjr_cfg, teacher_log, mgjr_log = trained
    # 12 training images, batch 6 -> two iterations per stage; mmpretrain's Accuracy on the test split
    assert "Epoch(train) [1][2/2]" in teacher_log and "accuracy/top1" in teacher_log
    assert "Epoch(train) [1][2/2]" in mgjr_log and "accuracy/top1" in mgjr_log
    for term in ("loss_task", "loss_coarse_feat", "loss_coarse_logit", "loss_anchor_feat", "loss_anchor_logit"):
        assert term in mgjr_log
    # the teacher's checkpoint carries its test accuracy (EvalInCheckpointHook), which stage 2 checked
    from defect_plugins.cls.mgjr import read_evaluation

    record = read_evaluation(work / "teacher/epoch_1.pth")
    assert record["epoch"] == 1 and 0.0 <= record["value"] <= 100.0 and record["split"]["num_samples"] == 12
    assert "teacher_min_accuracy" in mgjr_log or "is weak" in mgjr_log
    state = torch.load(work / "mgjr/epoch_1.pth", weights_only=False)["state_dict"]
    assert "projector.weight" in state and not any(k.startswith("teacher.") for k in state)
    tested = _run(repo_root, repo_root / "tools/mim_test.sh", "mmpretrain", mgjr_cfg, work / "mgjr/epoch_1.pth",
                  "--work-dir", work / "test")
    assert "accuracy/top1" in tested


def test_student_export_parity_at_f32(trained, tiny_neu, tmp_path, capsys):
    """The MGJR student goes through defect-export like any classifier (teacher and projector dropped)."""
    from defect_plugins.deploy.export import main
    from defect_plugins.deploy.export.families.classifier import load_network
    from defect_plugins.deploy.runtime import read_metadata

    work, mgjr_cfg, _, _ = trained
    out = tmp_path / "ov" / "mgjr_student.xml"
    assert main(["classifier", "--config", str(mgjr_cfg), "--checkpoint", str(work / "mgjr/epoch_1.pth"),
                 "--out", str(out), "--input-size", "64", "64", "--eval-dir", str(tiny_neu[0]), "--parity", "4"]) == 0
    printed = capsys.readouterr().out
    worst = float(re.search(r"max \|diff\| \{'probs': ([0-9.e+-]+)\}", printed).group(1))
    assert worst < 1e-4 and "INFERENCE_PRECISION_HINT=f32" in printed
    assert out.is_file() and out.with_suffix(".bin").is_file() and read_metadata(out).family == "classifier"
    model, _ = load_network(str(mgjr_cfg), str(work / "mgjr/epoch_1.pth"))
    assert type(model).__name__ == "ImageClassifier" and not hasattr(model, "teacher")
    # bad inputs: a clear error, nothing half-written
    bad = tmp_path / "bad" / "m.xml"
    assert main(["classifier", "--config", str(mgjr_cfg), "--checkpoint", str(tmp_path / "missing.pth"),
                 "--out", str(bad)]) == 1
    assert not bad.exists()
