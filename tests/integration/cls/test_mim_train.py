"""End to end through tools/mim_train.sh / mim_test.sh (mmpretrain's own train.py/test.py, mmengine Runner):
train two iterations, save, resume, a two-process CPU (gloo) RKD run, and evaluation with mmpretrain metrics."""
from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


def _run(repo_root: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PORT=str(random.randint(29600, 29999)))
    result = subprocess.run([str(a) for a in args], cwd=repo_root, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def _write_configs(repo_root: Path, data: Path, split: Path, work: Path) -> tuple[Path, Path]:
    data_cfg = f"""
data_prefix = '{data}'
train_dataloader = dict(batch_size=6, dataset=dict(data_prefix=data_prefix, ann_file='{split}/train.txt'))
val_dataloader = dict(batch_size=6, dataset=dict(data_prefix=data_prefix, ann_file='{split}/test.txt'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1), logger=dict(interval=1))
"""
    teacher = work / "sarsn18_ial_tiny.py"
    teacher.write_text(f"_base_ = ['{repo_root}/configs/neu_cls/sarsn34_ial_neu_cls_64.py']\n"
                       "model = dict(backbone=dict(depth=18))\n" + data_cfg)
    student = work / "rkd_tiny.py"
    student.write_text(f"_base_ = ['{repo_root}/configs/neu_cls/rkd_sarsn34_resnet34_neu_cls_64.py']\n"
                       f"model = dict(backbone=dict(depth=18), teacher_config='{teacher}',\n"
                       f"             teacher_checkpoint='{work}/teacher/epoch_2.pth', kd_weight=1.0)\n" + data_cfg)
    return teacher, student


@pytest.fixture(scope="module")
def trained_teacher(repo_root, tiny_cls_data, tiny_cls_split, tmp_path_factory):
    """One process: train two iterations, save, then resume for a second epoch (SARSN-18 + adaptive loss)."""
    work = tmp_path_factory.mktemp("mim")
    teacher_cfg, student_cfg = _write_configs(repo_root, tiny_cls_data, tiny_cls_split, work)
    train = repo_root / "tools/mim_train.sh"
    first = _run(repo_root, train, "mmpretrain", teacher_cfg, "--work-dir", work / "teacher")
    second = _run(repo_root, train, "mmpretrain", teacher_cfg, "--work-dir", work / "teacher", "--resume",
                  "--cfg-options", "train_cfg.max_epochs=2", "train_cfg.val_interval=10")
    return work, student_cfg, first.stdout + first.stderr, second.stdout + second.stderr


def test_train_two_iterations_save_and_resume(trained_teacher):
    work, _, first_log, second_log = trained_teacher
    # 12 images, batch 6 -> two iterations; mmpretrain's metrics; adaptive class weights logged and checkpointed
    assert "Epoch(train) [1][2/2]" in first_log and "imbalance-adaptive class weights" in first_log
    assert "accuracy/top1" in first_log and "single-label/f1-score_classwise" in first_log
    ckpt1 = torch.load(work / "teacher/epoch_1.pth", weights_only=False)
    assert len(ckpt1["meta"]["class_weights"][0]) == 6 and "head.loss_module.class_weights" in ckpt1["state_dict"]
    assert "resumed epoch: 1, iter: 2" in second_log
    ckpt2 = torch.load(work / "teacher/epoch_2.pth", weights_only=False)
    assert ckpt2["meta"]["epoch"] == 2 and ckpt2["meta"]["iter"] == 4


def test_two_process_cpu_rkd_run_and_mim_test(repo_root, trained_teacher):
    work, student_cfg, _, _ = trained_teacher
    dist = _run(repo_root, repo_root / "tools/mim_train.sh", "mmpretrain", student_cfg, "2",
                "--work-dir", work / "student", "--cfg-options", "train_cfg.val_interval=10")
    log = dist.stdout + dist.stderr
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    assert "loss_rkd_angle" in log and "loss_rkd_distance" in log and "loss_kd" in log
    state = torch.load(work / "student/epoch_1.pth", weights_only=False)["state_dict"]
    assert state and not any(k.startswith("teacher.") for k in state)  # student-only checkpoint
    tested = _run(repo_root, repo_root / "tools/mim_test.sh", "mmpretrain", student_cfg, work / "student/epoch_1.pth",
                  "--work-dir", work / "student_test")
    assert "accuracy/top1" in tested.stdout + tested.stderr
