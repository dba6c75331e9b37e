"""ResumedFinalValidationHook: a run killed after its last checkpoint, before its final validation, records
its figures when resumed (without the hook mmengine ends at once and the seed tools find no record)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader, Dataset

from defect_plugins.engine import ResumedFinalValidationHook  # noqa: F401  (registers the hook)
from defect_plugins.runners.launcher import LauncherError, read_logged_scalars


class _Points(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, ), float(index)), labels=torch.tensor([float(index % 2)]))


class _Line(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, mode: str = "tensor"):  # noqa: ANN201
        out = self.fc(inputs)
        if mode == "loss":
            return dict(loss=nn.functional.mse_loss(out, labels))
        return [(out, labels)]


class _CountingMetric(BaseMetric):
    calls = 0

    def process(self, data_batch, data_samples) -> None:  # noqa: ANN001
        self.results.extend(float(((o - t) ** 2).mean()) for o, t in data_samples)

    def compute_metrics(self, results: list) -> dict:
        type(self).calls += 1
        return dict(score=sum(results) / len(results))


_RUNS = iter(range(1000))


def _train(work_dir: Path, *, resume: bool, hook: bool) -> None:
    # a Runner makes its scope the current one; restoring it keeps later tests' registry lookups unchanged
    with DefaultScope.overwrite_default_scope("mmengine"):
        _runner(work_dir, resume=resume, hook=hook).train()


def _runner(work_dir: Path, *, resume: bool, hook: bool) -> Runner:
    time.sleep(1.1)  # mmengine names each run's log folder by the second it started
    default_hooks = dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=4))
    if hook:
        default_hooks["final_validation"] = dict(type="ResumedFinalValidationHook")
    return Runner(
        model=_Line(), work_dir=str(work_dir), experiment_name=f"final_validation_{next(_RUNS)}",
        train_dataloader=DataLoader(_Points(), batch_size=4, shuffle=False,
                                    collate_fn=torch.utils.data.default_collate),
        val_dataloader=DataLoader(_Points(), batch_size=4, collate_fn=torch.utils.data.default_collate),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=4), val_cfg=dict(),
        val_evaluator=Evaluator(_CountingMetric()), optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        default_hooks=default_hooks, log_processor=dict(by_epoch=False), resume=resume,
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")]),
        default_scope="mmengine")


def _as_if_killed_during_the_final_validation(work_dir: Path) -> None:
    """What a kill between the last checkpoint and the end of validation leaves: no validation record."""
    for scalars in work_dir.glob("*/vis_data/scalars.json"):
        scalars.write_text("".join(line for line in scalars.read_text().splitlines(keepends=True)
                                   if '"score"' not in line))
    with pytest.raises(LauncherError, match="holds no score record"):
        read_logged_scalars(work_dir, "score")


def test_a_fresh_run_validates_once(tmp_path: Path) -> None:
    _CountingMetric.calls = 0
    _train(tmp_path, resume=False, hook=True)
    assert _CountingMetric.calls == 1
    assert "score" in read_logged_scalars(tmp_path, "score")


def test_resuming_the_final_checkpoint_records_the_final_validation(tmp_path: Path) -> None:
    _train(tmp_path, resume=False, hook=True)
    assert (tmp_path / "iter_4.pth").is_file()
    _as_if_killed_during_the_final_validation(tmp_path)
    _CountingMetric.calls = 0
    _train(tmp_path, resume=True, hook=True)
    assert _CountingMetric.calls == 1
    assert read_logged_scalars(tmp_path, "score")["score"] >= 0


def test_without_the_hook_mmengine_records_nothing_on_such_a_resume(tmp_path: Path) -> None:
    _train(tmp_path, resume=False, hook=False)
    _as_if_killed_during_the_final_validation(tmp_path)
    _CountingMetric.calls = 0
    _train(tmp_path, resume=True, hook=False)
    assert _CountingMetric.calls == 0
    # the resumed run logged nothing; the older folder's records do not pass for its final figures
    with pytest.raises(LauncherError, match="scalars.json is missing.*ResumedFinalValidationHook"):
        read_logged_scalars(tmp_path, "score")
