"""Relational KD: losses against the formulas, the frozen teacher, student-only checkpoints, errors."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from defect_plugins.cls.distill.losses import hinton_kd_loss, rkd_angle_loss, rkd_distance_loss

PRE = dict(num_classes=6, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
TEACHER = dict(type='ImageClassifier', backbone=dict(type='SARSN', depth=18), neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=6, in_channels=512), data_preprocessor=PRE)
STUDENT = dict(backbone=dict(type='ResNet', depth=18), neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=6, in_channels=512), data_preprocessor=PRE)


def _huber(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def _direct_distance_loss(s, t):
    n = len(s)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    mu_s = sum(torch.dist(s[i], s[j]) for i, j in pairs) / len(pairs)
    mu_t = sum(torch.dist(t[i], t[j]) for i, j in pairs) / len(pairs)
    return sum(_huber(torch.dist(s[i], s[j]) / mu_s, torch.dist(t[i], t[j]) / mu_t) for i, j in pairs) / len(pairs)


def _direct_angle_loss(s, t):
    def potential(e, i, j, k):
        a, b = e[i] - e[j], e[k] - e[j]
        if a.norm() == 0 or b.norm() == 0:
            return torch.tensor(0.0)
        return torch.dot(a / a.norm(), b / b.norm())

    n = len(s)
    triplets = list(itertools.product(range(n), repeat=3))
    return sum(_huber(potential(s, i, j, k), potential(t, i, j, k)) for i, j, k in triplets) / len(triplets)


def test_rkd_losses_match_a_direct_computation():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 8), torch.randn(5, 16) * 3
    assert torch.isclose(rkd_distance_loss(student, teacher), _direct_distance_loss(student, teacher), atol=1e-5)
    assert torch.isclose(rkd_angle_loss(student, teacher), _direct_angle_loss(student, teacher), atol=1e-5)


def test_rkd_losses_vanish_for_identical_or_scaled_embeddings():
    torch.manual_seed(1)
    e = torch.randn(6, 10)
    assert rkd_distance_loss(e, e.clone()) < 1e-7 and rkd_angle_loss(e, e.clone()) < 1e-7
    assert rkd_distance_loss(e, 4 * e) < 1e-6  # distances are normalised by their mean
    assert rkd_distance_loss(e, torch.randn(6, 10)) > 1e-3


def test_hinton_kd_is_zero_for_equal_logits_and_scaled_by_t_squared():
    logits = torch.randn(4, 6)
    assert hinton_kd_loss(logits, logits.clone()) < 1e-5
    other = torch.randn(4, 6)
    kl = F.kl_div(F.log_softmax(logits / 2, 1), F.softmax(other / 2, 1), reduction='batchmean')
    assert torch.isclose(hinton_kd_loss(logits, other, 2.0), 4 * kl)


@pytest.fixture()
def teacher_checkpoint(tmp_path):
    torch.manual_seed(0)
    teacher = MODELS.build(TEACHER)
    teacher.init_weights()
    path = tmp_path / "teacher.pth"
    torch.save({"state_dict": teacher.state_dict(), "meta": {}}, path)
    return path


def _batch(n=4):
    inputs = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(n)]
    samples = [DataSample().set_gt_label(i % 6) for i in range(n)]
    return {"inputs": inputs, "data_samples": samples}


def test_teacher_is_frozen_unchanged_and_not_saved(teacher_checkpoint):
    model = MODELS.build(dict(type='RKDClassifier', teacher_config=TEACHER, teacher_checkpoint=str(teacher_checkpoint),
                              kd_weight=1.0, **STUDENT))
    saved = torch.load(teacher_checkpoint)["state_dict"]
    model.init_weights()  # must not re-initialise the teacher
    assert all(torch.equal(v, saved[k]) for k, v in model.teacher.state_dict().items())
    model.train()
    assert model.training and not model.teacher.training
    student_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(_batch(), optim)
    assert {"loss_rkd_distance", "loss_rkd_angle", "loss_kd", "loss"} <= set(log_vars)
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(torch.equal(v, saved[k]) for k, v in model.teacher.state_dict().items())  # BN stats too
    assert any(not torch.equal(v, student_before[k]) for k, v in model.backbone.state_dict().items())
    state = model.state_dict()
    assert state and not any(k.startswith("teacher.") for k in state)
    # the student-only checkpoint loads strictly into a plain ImageClassifier, and back into the RKD model
    plain = MODELS.build(dict(type='ImageClassifier', **STUDENT))
    plain.load_state_dict(state, strict=True)
    model.load_state_dict(state, strict=True)


def test_missing_teacher_checkpoint_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope" / "teacher.pth"
    with pytest.raises(FileNotFoundError, match="teacher checkpoint .*nope/teacher.pth.* not found"):
        MODELS.build(dict(type='RKDClassifier', teacher_config=TEACHER, teacher_checkpoint=str(missing), **STUDENT))
    with pytest.raises(FileNotFoundError, match="teacher config .*missing.py not found"):
        MODELS.build(dict(type='RKDClassifier', teacher_config=str(tmp_path / "missing.py"),
                          teacher_checkpoint=str(missing), **STUDENT))


def test_teacher_with_other_preprocessing_is_rejected(teacher_checkpoint):
    from defect_plugins.cls.distill import TeacherError

    other = dict(STUDENT, data_preprocessor=dict(PRE, to_rgb=False))
    with pytest.raises(TeacherError, match="data_preprocessor differ"):
        MODELS.build(dict(type='RKDClassifier', teacher_config=TEACHER, teacher_checkpoint=str(teacher_checkpoint),
                          **other))


@pytest.mark.parametrize("teacher", ["configs/neu_cls/sarsn34_neu_cls_64.py", "configs/mgjr/vit_teacher_neu_cls_64.py"])
def test_repo_relative_teacher_config_resolves_outside_the_clone(tmp_path, monkeypatch, teacher):
    """The packaged RKD / MGJR configs name their teacher as 'configs/...': from a wheel (no configs/ in
    the working folder) that is the packaged config; it is parsed, so the next error is the checkpoint."""
    from defect_plugins.cls.distill.rkd_classifier import TeacherConfigNotFoundError, TeacherError, build_teacher

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="teacher checkpoint"):
        build_teacher(teacher, str(tmp_path / "teacher.pth"))
    with pytest.raises(TeacherConfigNotFoundError, match="teacher config configs/neu_cls/nope.py not found") as error:
        build_teacher("configs/neu_cls/nope.py", str(tmp_path / "teacher.pth"))
    assert isinstance(error.value, TeacherError) and isinstance(error.value, FileNotFoundError)
