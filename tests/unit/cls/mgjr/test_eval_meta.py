"""EvalInCheckpointHook: the saved weights' own test accuracy and split in checkpoint['meta']; stage-2 check."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from defect_plugins.cls.mgjr import MGJRClassifier, WeakTeacherError, read_evaluation
from defect_plugins.cls.mgjr.eval_meta import EvalInCheckpointHook
from tests.fixtures.mgjr import TINY_STUDENT, TINY_TEACHER


def _runner_cfg(tiny_neu, work_dir, epochs=2, hook=True) -> Config:
    data, split = tiny_neu
    pipeline = [dict(type='CheckedLoadImageFromFile'), dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')]
    loader = lambda ann, shuffle: dict(  # noqa: E731
        batch_size=6, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=shuffle),
        dataset=dict(type='NEUCLSDataset', data_root='', data_prefix=str(data), ann_file=f'{split}/{ann}.txt',
                     pipeline=pipeline))
    return Config(dict(
        default_scope='mmpretrain', work_dir=str(work_dir), model=copy.deepcopy(TINY_TEACHER),
        train_dataloader=loader('train', True), val_dataloader=loader('test', False),
        test_dataloader=loader('test', False), val_evaluator=[dict(type='Accuracy', topk=(1, ))],
        test_evaluator=[dict(type='Accuracy', topk=(1, ))],
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1), val_cfg=dict(), test_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='EvalInCheckpointHook')] if hook else [],
        randomness=dict(seed=0), env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='WARNING'))


def test_runner_checkpoints_carry_the_accuracy_of_their_own_weights(tiny_neu, tmp_path):
    runner = Runner.from_cfg(_runner_cfg(tiny_neu, tmp_path / "work"))
    runner.train()
    history = runner.message_hub.get_info("eval_in_checkpoint")
    for epoch in (1, 2):
        record = read_evaluation(tmp_path / "work" / f"epoch_{epoch}.pth")
        assert record is not None and record["epoch"] == epoch and record["metric"] == "accuracy/top1"
        assert 0.0 <= record["value"] <= 100.0 and record["metrics"]["accuracy/top1"] == record["value"]
        split = record["split"]
        assert split["ann_file"].endswith("test.txt") and split["num_samples"] == 12 and split["is_test_split"]
        assert len(split["ann_file_sha256"]) == 64
    # the last record is the final validation, i.e. of the weights in epoch_2.pth
    assert history["epoch"] == 2 and read_evaluation(tmp_path / "work" / "epoch_2.pth") == history
    # the stored figure is the accuracy of those weights, re-measured
    runner.load_checkpoint(str(tmp_path / "work" / "epoch_2.pth"))
    metrics = runner.test()
    assert metrics["accuracy/top1"] == pytest.approx(history["value"])


def test_hook_leaves_checkpoints_of_other_weights_alone(tmp_path):
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    path = tmp_path / "epoch_4.pth"
    torch.save({"meta": {"epoch": 4, "iter": 40}, "state_dict": {"w": torch.ones(2)}}, path)
    hub = MessageHub.get_instance("eval_meta_test")
    hub.update_info("last_ckpt", str(path))
    runner = SimpleNamespace(epoch=3, iter=30, message_hub=hub, val_dataloader=SimpleNamespace(dataset=[0] * 5))
    hook = EvalInCheckpointHook()
    hook.after_val_epoch(runner, {"accuracy/top1": 90.0, "confusion": [[1]]})
    assert read_evaluation(path) is None  # epoch 4's weights were not the ones evaluated
    checkpoint = {"meta": {"epoch": 3, "iter": 30}}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint["meta"]["evaluation"]["value"] == 90.0 and "confusion" not in checkpoint["meta"]["evaluation"]
    other = {"meta": {"epoch": 5, "iter": 50}}
    hook.before_save_checkpoint(runner, other)
    assert "evaluation" not in other["meta"]
    with pytest.warns(UserWarning, match="no 'accuracy/top1'"):
        hook.after_val_epoch(runner, {"loss": 1.0})


def _teacher_with_accuracy(tmp_path, value):
    torch.manual_seed(0)
    teacher = MODELS.build(TINY_TEACHER)
    path = tmp_path / f"teacher_{value}.pth"
    meta = {} if value is None else {"evaluation": dict(metric="accuracy/top1", value=value, epoch=100,
                                                        split=dict(ann_file="split/test.txt", num_samples=540))}
    torch.save({"state_dict": teacher.state_dict(), "meta": meta}, path)
    return path


def _mgjr(path, **kwargs) -> MGJRClassifier:
    return MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER, teacher_checkpoint=str(path),
                             **TINY_STUDENT, **kwargs))


def test_stage_two_warns_or_refuses_a_weak_teacher(tmp_path):
    weak = _teacher_with_accuracy(tmp_path, 74.4)
    with pytest.warns(UserWarning, match=r"is weak: accuracy/top1 = 74.40 % at epoch 100 on split/test.txt .*"
                                         r"below teacher_min_accuracy=92.80 %"):
        model = _mgjr(weak, teacher_min_accuracy=92.8)
    assert model.teacher_evaluation["value"] == 74.4
    with pytest.raises(WeakTeacherError, match="below teacher_min_accuracy=92.80"):
        _mgjr(weak, teacher_min_accuracy=92.8, on_weak_teacher='error')
    strong = _teacher_with_accuracy(tmp_path, 96.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _mgjr(strong, teacher_min_accuracy=92.8, on_weak_teacher='error')
    assert not [w for w in caught if "teacher checkpoint" in str(w.message)]
    with pytest.raises(ValueError, match="on_weak_teacher must be one of"):
        _mgjr(strong, on_weak_teacher='ignore')


def test_stage_two_says_plainly_when_the_teacher_has_no_recorded_accuracy(tmp_path):
    unknown = _teacher_with_accuracy(tmp_path, None)
    with pytest.warns(UserWarning, match=r"carries no accuracy \(no meta\['evaluation'\]\).*EvalInCheckpointHook"):
        _mgjr(unknown)
    with pytest.raises(WeakTeacherError, match="carries no accuracy"):
        _mgjr(unknown, teacher_min_accuracy=90.0, on_weak_teacher='error')
