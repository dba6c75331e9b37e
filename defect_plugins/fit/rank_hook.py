"""``FitRankRecordHook``: each mmengine training process writes what it trained on, for ``defect-fit --nproc``.

mmengine logs to a file from rank 0 only (``MMLogger``), so its log cannot show that the other ranks trained.
This hook, listed in the configs ``defect-fit`` writes (``custom_hooks``, loaded by ``custom_imports``), makes
every rank write ``WORK_DIR/ranks/rank<R>.json`` at the end of training: its rank, the world size and backend
of the process group, its torch threads, and the iterations and images of this run. It is registered in mmengine's root
``HOOKS`` registry, which mmpretrain's and mmseg's registries fall back to (mmengine's registry docs: a child
registry searches its parent), under a name of its own so it clashes with no toolkit's hook.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from .openmmlab import RANKS


@HOOKS.register_module(name="FitRankRecordHook")
class FitRankRecordHook(Hook):
    """Counts this process's training iterations and images; writes them with its rank after training."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.iterations = 0
        self.images = 0

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,  # noqa: ANN401
                         outputs: Any = None) -> None:  # noqa: ANN401
        self.iterations += 1
        inputs = data_batch.get("inputs") if isinstance(data_batch, dict) else None
        self.images += len(inputs) if inputs is not None else 0

    def after_train(self, runner: Any) -> None:  # noqa: ANN401
        import torch
        import torch.distributed as torch_dist
        from mmengine.dist import get_dist_info

        from defect_plugins.fileio import atomic_write_json

        rank, world_size = get_dist_info()
        folder = Path(runner.work_dir) / RANKS
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / f"rank{rank}.json", {
            "rank": rank, "world_size": world_size,
            "backend": torch_dist.get_backend() if torch_dist.is_initialized() else None,
            "iterations": self.iterations, "images": self.images, "threads": torch.get_num_threads()}, indent=2)
