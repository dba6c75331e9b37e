"""Lightning callbacks for anomalib runs of this package.

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
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


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
