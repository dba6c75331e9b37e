"""Lightning callbacks for anomalib runs of this package.

:class:`LoadTeacherWeights` puts a local backbone file (``defect-teacher`` output, or any
torchvision / timm ResNet state dict) into the timm feature extractor of an anomalib model, from
the command line; see its docstring.

:class:`EpochTimer` keeps the seconds of every training epoch (validation inside the epoch not counted),
for the benchmarks' "training s/epoch".

:class:`EpochProgress` prints one plain line per training epoch (epoch, mean training loss,
seconds). Lightning's own progress bar redraws one terminal line with carriage returns, which
turns into thousands of lines in a log file or a CI job; anomalib configs for unattended runs
therefore switch it off (``enable_progress_bar: false``) and add this callback instead::

    trainer:
      enable_progress_bar: false
      callbacks:
        - class_path: defect_plugins.anomaly.callbacks.EpochProgress
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

__all__ = ["EpochProgress", "EpochTimer", "LoadTeacherWeights", "find_feature_extractors"]


class EpochProgress(Callback):
    """Print ``[progress] epoch E/N train_loss L (S s)`` at the end of every training epoch."""

    def __init__(self, metric: str = "train_loss") -> None:
        super().__init__()
        self.metric = metric
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del pl_module
        value: Any = trainer.callback_metrics.get(f"{self.metric}_epoch", trainer.callback_metrics.get(self.metric))
        loss = f"{self.metric} {float(value):.4f}" if value is not None else f"{self.metric} n/a"
        print(f"[progress] epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {loss} "
              f"({time.perf_counter() - self._start:.1f} s)", flush=True)


class EpochTimer(Callback):
    """Seconds of each training epoch in ``seconds``; a validation pass inside the epoch is subtracted."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0
        self._val_start = 0.0
        self._val_seconds = 0.0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self._start = time.perf_counter()
        self._val_seconds = 0.0

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self._val_seconds += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self.seconds.append(time.perf_counter() - self._start - self._val_seconds)


def find_feature_extractors(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: TimmFeatureExtractor}`` of every anomalib timm feature extractor inside ``model``."""
    from anomalib.models.components import TimmFeatureExtractor

    return {name: module for name, module in model.named_modules() if isinstance(module, TimmFeatureExtractor)}


class LoadTeacherWeights(Callback):
    """Load a local weights file into an anomalib model's ``TimmFeatureExtractor`` at setup.

    For any anomalib model whose backbone is anomalib's ``TimmFeatureExtractor``
    (``ReverseDistillation``, ``Patchcore``, ``Padim``, ``Stfpm``, ``AkfReverseDistillation``,
    ...): offline factories cannot let timm download ImageNet weights (anomalib issues #2439,
    #2506), and a backbone trained on the line's own defect images (``defect-teacher``) is often
    the better teacher anyway. The file is read and checked by
    :func:`defect_plugins.anomaly.teacher.load_teacher_weights` (every tensor of the extractor
    must be in the file with the right shape, otherwise a ``ValueError`` names the file and the
    keys). Build the model with ``pre_trained false`` so that nothing is downloaded first::

        anomalib train --model Patchcore --model.backbone resnet18 --model.pre_trained false \
            --trainer.callbacks+=defect_plugins.anomaly.callbacks.LoadTeacherWeights \
            --trainer.callbacks.weights_path=teacher.pth --data ...

    or in a YAML config::

        trainer:
          callbacks:
            - class_path: defect_plugins.anomaly.callbacks.LoadTeacherWeights
              init_args: {weights_path: teacher.pth}

    The weights go in once, at the first ``setup`` (before training, or before a checkpoint is
    restored for test / predict, whose saved weights then take precedence).

    Args:
        weights_path: torchvision / timm state dict (``defect-teacher`` writes one).
        target: dotted name of the extractor inside the LightningModule
            (e.g. ``model.teacher_model``). By default the model's only
            ``TimmFeatureExtractor`` whose name does not contain ``student`` (STFPM's student
            is a second extractor and is left alone).

    Note:
        anomalib 2.7's ``Stfpm`` builds its teacher with ``pre_trained=True`` hard-coded
        (``stfpm/torch_model.py``), so without a hub it fails at construction, before any
        callback runs; there the loader only helps where timm's cache already holds weights.
    """

    def __init__(self, weights_path: str | Path, target: str | None = None) -> None:
        super().__init__()
        self.weights_path = Path(weights_path).expanduser()
        self.target = target
        self.loaded: list[str] = []

    def select(self, pl_module: nn.Module) -> dict[str, nn.Module]:
        """The extractor(s) to load into; ``ValueError`` naming the model when there is none or the choice is
        unclear."""
        found = find_feature_extractors(pl_module)
        model_name = type(pl_module).__name__
        if self.target is not None:
            if self.target not in found:
                msg = (f"LoadTeacherWeights: {model_name} has no TimmFeatureExtractor named {self.target!r} "
                       f"(it has {sorted(found) or 'none'}).")
                raise ValueError(msg)
            return {self.target: found[self.target]}
        candidates = {name: module for name, module in found.items() if "student" not in name}
        if not candidates:
            msg = (f"LoadTeacherWeights: {model_name} has no anomalib TimmFeatureExtractor to load "
                   f"{self.weights_path} into (found {sorted(found) or 'none'}).")
            raise ValueError(msg)
        if len(candidates) > 1:
            msg = (f"LoadTeacherWeights: {model_name} has several TimmFeatureExtractors {sorted(candidates)}; "
                   "choose one with target=NAME.")
            raise ValueError(msg)
        return candidates

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Load the file into the selected extractor(s), once."""
        del trainer, stage
        if self.loaded:
            return
        from defect_plugins.anomaly.teacher import load_teacher_weights

        for name, extractor in self.select(pl_module).items():
            unused = load_teacher_weights(extractor.feature_extractor, self.weights_path)
            self.loaded.append(name)
            print(f"[teacher] {self.weights_path} -> {type(pl_module).__name__}.{name} "
                  f"({len(unused)} tensors of the file not used by the extractor)", flush=True)
