"""Hook that updates :class:`~defect_plugins.cls.losses.ImbalanceAdaptiveLoss` weights during training.

The loss gathers (true, predicted) confusion counts on every training batch; this hook, every
``interval`` epochs (or iterations with ``by_epoch=False``), sums the counts over all processes
(``mmengine.dist.all_reduce``, so every rank gets the same weights), recomputes the per-class
weights, resets the counts and logs the weights (``train/class_weight/<class>`` in the message
hub, hence in the text/JSON logs). The weights are buffers of the loss, so checkpoints carry
them; the hook also writes them to ``checkpoint['meta']['class_weights']`` for reading without
building the model. Unless the loss was given ``imbalance_ratio`` or ``class_counts``, the class
counts ``n_c`` are taken from the training set's labels (``dataset.get_gt_labels()``) before
training starts, and the loss sets ``K_c = n_max / n_c`` (``k_mode='per_class'``) or one
``K = n_max / n_min`` (``k_mode='global'``) from them.
"""
from __future__ import annotations

import numpy as np
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from defect_plugins.cls.losses.imbalance_adaptive import ImbalanceAdaptiveLoss


def _adaptive_losses(model) -> list[ImbalanceAdaptiveLoss]:
    if is_model_wrapper(model):
        model = model.module
    return [m for m in model.modules() if isinstance(m, ImbalanceAdaptiveLoss)]


@HOOKS.register_module()
class ImbalanceAdaptiveWeightHook(Hook):
    """Recompute imbalance-adaptive class weights from the running confusion counts.

    Args:
        interval: update every ``interval`` epochs (``by_epoch``) or iterations.
        by_epoch: count epochs (default) or iterations.
    """

    priority = "NORMAL"

    def __init__(self, interval: int = 1, by_epoch: bool = True):
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self.by_epoch = by_epoch

    def before_train(self, runner) -> None:
        losses = _adaptive_losses(runner.model)
        if not losses:
            raise RuntimeError("ImbalanceAdaptiveWeightHook: the model has no ImbalanceAdaptiveLoss "
                               "(set head.loss=dict(type='ImbalanceAdaptiveLoss', ...))")
        if any(loss.auto_imbalance_ratio for loss in losses):
            dataset = runner.train_dataloader.dataset
            if not hasattr(dataset, "get_gt_labels"):
                raise RuntimeError(f"ImbalanceAdaptiveWeightHook: the training set ({type(dataset).__name__}) has no "
                                   "get_gt_labels() to count the classes from; give the loss class_counts=[...]")
            labels = np.asarray(dataset.get_gt_labels())
            classes = dataset.metainfo.get("classes")
            for loss in losses:
                if not loss.auto_imbalance_ratio:
                    continue
                counts = np.bincount(labels, minlength=loss.num_classes)
                if counts.size != loss.num_classes:
                    raise RuntimeError(f"ImbalanceAdaptiveWeightHook: training labels go up to {labels.max()}, but the "
                                       f"loss has num_classes={loss.num_classes}")
                ratios = loss.set_class_counts(counts).tolist()
                names = classes if classes and len(classes) == loss.num_classes else range(loss.num_classes)
                runner.logger.info(
                    f"ImbalanceAdaptiveWeightHook: k_mode={loss.k_mode}, K = " + ", ".join(
                        f"{name}={ratio:.3f} (n={count})"
                        for name, ratio, count in zip(names, ratios, counts.tolist())))

    def _update(self, runner) -> None:
        classes = runner.train_dataloader.dataset.metainfo.get("classes")
        for number, loss in enumerate(_adaptive_losses(runner.model)):
            counts = loss.confusion.clone()
            all_reduce(counts)  # sum over processes; no-op when not distributed
            weights = loss.update_weights(counts)
            names = classes if classes and len(classes) == loss.num_classes else range(loss.num_classes)
            suffix = "" if number == 0 else f"_{number}"
            for name, value in zip(names, weights.tolist()):
                runner.message_hub.update_scalar(f"train/class_weight{suffix}/{name}", value)
            runner.logger.info("imbalance-adaptive class weights: " + ", ".join(
                f"{name}={value:.4f}" for name, value in zip(names, weights.tolist())))

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self._update(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner, self.interval):
            self._update(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        losses = _adaptive_losses(runner.model)
        checkpoint.setdefault("meta", {})["class_weights"] = [
            loss.class_weights.detach().cpu().tolist() for loss in losses]


__all__ = ["ImbalanceAdaptiveWeightHook"]
