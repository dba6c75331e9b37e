"""A model's own test accuracy, and the split it was measured on, stored in its checkpoint.

MGJR (Meng et al., J. Industrial Information Integration 48:100958, 2025) distils a ViT teacher
into a CNN student; a teacher weaker than its student can only pull the student down (measured
here: a 74 % teacher lowered a 93 % student to 84-90 %). Stage 2 should therefore know how good
its teacher is without re-evaluating it. This bookkeeping is the project's own, not the paper's:

* :class:`EvalInCheckpointHook` (``custom_hooks=[dict(type='EvalInCheckpointHook')]`` in the
  teacher config) records the Runner's validation metrics - top-1 by default - with the epoch /
  iteration they belong to and a description of the data they were measured on (annotation
  file, its SHA-256, image folder, number of images, whether it is also the config's test
  split), in ``runner.message_hub`` (info ``eval_in_checkpoint``) and in
  ``checkpoint['meta']['evaluation']``.

  mmengine saves an epoch's checkpoint *before* that epoch's validation runs, so
  ``before_save_checkpoint`` alone would store the previous validation's figures (or none) in
  each checkpoint. The hook therefore writes the record in ``before_save_checkpoint`` only when
  it belongs to the very weights being saved (same epoch and iteration), and otherwise, in
  ``after_val_epoch``, rewrites the last checkpoint (``message_hub`` info ``last_ckpt``)
  atomically with the record added, again only if that checkpoint holds the weights just
  evaluated. A checkpoint never carries figures of other weights.
* :func:`read_evaluation` reads the record back; :func:`check_teacher_accuracy` is the stage-2
  check used by :class:`~defect_plugins.cls.mgjr.classifier.MGJRClassifier`.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpretrain.registry import HOOKS

from defect_plugins.cls.distill.rkd_classifier import TeacherError
from defect_plugins.fileio import atomic_write_bytes

META_KEY = "evaluation"
INFO_KEY = "eval_in_checkpoint"
ON_WEAK_TEACHER = ("warn", "error")


class WeakTeacherError(TeacherError):
    """The teacher's recorded accuracy is below ``teacher_min_accuracy`` (or unknown); ``on_weak_teacher='error'``."""


def _sha256(path: str) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ann_file_of(dataset_cfg) -> str | None:
    try:
        return dataset_cfg.get("dataset", {}).get("ann_file")
    except AttributeError:
        return None


def split_description(dataset, cfg=None) -> dict:
    """What a metric was measured on: annotation file (+ SHA-256), image folder, size, test split or not."""
    ann_file = getattr(dataset, "ann_file", None)
    prefix = getattr(dataset, "data_prefix", None)
    if isinstance(prefix, dict):
        prefix = prefix.get("img_path", prefix.get("img", None)) or next(iter(prefix.values()), None)
    description = dict(ann_file=str(ann_file) if ann_file else None, ann_file_sha256=_sha256(str(ann_file or "")),
                       data_prefix=str(prefix) if prefix else None, num_samples=len(dataset))
    if cfg is not None:
        val_ann = _ann_file_of(cfg.get("val_dataloader") or {})
        test_ann = _ann_file_of(cfg.get("test_dataloader") or {})
        description["is_test_split"] = bool(val_ann) and val_ann == test_ann
    return description


def _scalar_metrics(metrics: dict) -> dict:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


@HOOKS.register_module()
class EvalInCheckpointHook(Hook):
    """Store the validation metrics of the saved weights in ``checkpoint['meta']['evaluation']``.

    Args:
        metric: the headline metric (mmpretrain's top-1 ``'accuracy/top1'``, in %).
    """

    priority = "LOW"  # after the checkpoint hook has named the checkpoint of this epoch

    def __init__(self, metric: str = "accuracy/top1"):
        self.metric = metric
        self.record: dict | None = None

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not metrics or self.metric not in metrics:
            warnings.warn(f"EvalInCheckpointHook: validation produced no {self.metric!r} (got "
                          f"{sorted(metrics or {})}); nothing recorded in the checkpoint", stacklevel=2)
            return
        scalars = _scalar_metrics(metrics)
        self.record = dict(metric=self.metric, value=scalars.get(self.metric), metrics=scalars, epoch=runner.epoch,
                           iter=runner.iter, dataloader="val_dataloader",
                           split=split_description(runner.val_dataloader.dataset, getattr(runner, "cfg", None)))
        runner.message_hub.update_info(INFO_KEY, self.record)
        self._update_last_checkpoint(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.setdefault("meta", {})
        if self.record is not None and self._same_state(meta):
            meta[META_KEY] = self.record

    def _same_state(self, meta: dict) -> bool:
        return meta.get("epoch") == self.record["epoch"] and meta.get("iter") == self.record["iter"]

    def _update_last_checkpoint(self, runner) -> None:
        if not is_main_process():
            return
        path = runner.message_hub.get_info("last_ckpt")
        if not path or not os.path.isfile(str(path)):
            return  # no checkpoint yet (validation before the first save), or a remote / sharded one
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
        meta = checkpoint.setdefault("meta", {})
        if not self._same_state(meta) or meta.get(META_KEY) == self.record:
            return
        meta[META_KEY] = self.record
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(str(path), buffer.getvalue())
        print_log(f"EvalInCheckpointHook: {self.metric} = {self.record['value']:.2f} written to {path}",
                  logger="current")


def read_evaluation(checkpoint_path: str | os.PathLike) -> dict | None:
    """The ``meta['evaluation']`` record of a checkpoint, or None when it has none."""
    checkpoint = torch.load(str(checkpoint_path), map_location="cpu", weights_only=False)
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    record = meta.get(META_KEY) if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else None


def check_teacher_accuracy(checkpoint_path: str | os.PathLike, min_accuracy: float | None,
                           on_weak: str = "warn") -> dict | None:
    """Compare the teacher's recorded accuracy with ``min_accuracy`` (%); warn or raise WeakTeacherError.

    A checkpoint without a record is reported as such (a warning; an error with
    ``on_weak='error'`` when a floor is set, since the floor cannot be checked). Returns the record.
    """
    if on_weak not in ON_WEAK_TEACHER:
        raise ValueError(f"on_weak_teacher must be one of {ON_WEAK_TEACHER}, got {on_weak!r}")
    record = read_evaluation(checkpoint_path)
    floor = "" if min_accuracy is None else f" (teacher_min_accuracy={min_accuracy})"
    if record is None or record.get("value") is None:
        message = (f"teacher checkpoint {checkpoint_path} carries no accuracy (no meta['{META_KEY}']): its quality is "
                   f"unknown{floor}; train the teacher with custom_hooks=[dict(type='EvalInCheckpointHook')] "
                   f"(the configs/mgjr teacher configs do)")
        if min_accuracy is not None and on_weak == "error":
            raise WeakTeacherError(message)
        warnings.warn(message, stacklevel=2)
        return record
    split = record.get("split") or {}
    where = (f"{record.get('metric')} = {record['value']:.2f} % at epoch {record.get('epoch')} on "
             f"{split.get('ann_file')} ({split.get('num_samples')} images)")
    if min_accuracy is not None and record["value"] < float(min_accuracy):
        message = (f"teacher checkpoint {checkpoint_path} is weak: {where}, below teacher_min_accuracy="
                   f"{float(min_accuracy):.2f} %; distilling from it is expected to lower the student's accuracy")
        if on_weak == "error":
            raise WeakTeacherError(message)
        warnings.warn(message, stacklevel=2)
    else:
        print_log(f"teacher checkpoint {checkpoint_path}: {where}{floor}", logger="current")
    return record
