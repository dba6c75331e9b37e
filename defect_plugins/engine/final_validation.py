"""Validate a run that resumes from its final checkpoint, so that its last figures are recorded.

mmengine's train loops (``EpochBasedTrainLoop.run`` and ``IterBasedTrainLoop.run`` in
``mmengine/runner/loops.py``, 0.10.x) validate inside the loop, after ``CheckpointHook`` has saved the
checkpoint of the last epoch or iteration. A run killed in between (during the final validation: a
timeout, a lost machine) resumes at ``max_iters``, leaves the loop at once and ends without the
validation record that ``scalars.json`` readers such as ``experiments/arcd/seg_seeds.py`` and
``experiments/neu_cls/neu_cls_seeds.py`` report; resuming again would change nothing. This hook runs the
validation loop once after training in exactly that case: the run entered training already finished.
Upstream tracks the general gap (a validation cut off mid-training is skipped on resume) as
open-mmlab/mmengine issue #1394; only the final one decides this project's figures.

Usage in a config (``default_hooks`` entries merge through ``_base_``, ``custom_hooks`` lists do not)::

    default_hooks = dict(final_validation=dict(type='ResumedFinalValidationHook'))
"""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

__all__ = ["ResumedFinalValidationHook"]


@HOOKS.register_module()
class ResumedFinalValidationHook(Hook):
    """Run ``runner.val_loop`` after training when training resumed with nothing left to train."""

    priority = "LOWEST"  # after every other after_train hook

    def __init__(self) -> None:
        self._resumed_finished = False

    def before_train(self, runner: Runner) -> None:
        loop = runner.train_loop  # both loop kinds count iterations (max_iters = max_epochs x batches)
        self._resumed_finished = loop.iter > 0 and loop.iter >= loop.max_iters

    def after_train(self, runner: Runner) -> None:
        if self._resumed_finished and runner.val_loop is not None:
            runner.logger.info("resumed from the final checkpoint: running the final validation")
            runner.val_loop.run()
