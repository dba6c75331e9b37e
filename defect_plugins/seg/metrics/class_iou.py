"""mmseg's IoU metric with the per-class figures among the returned metrics.

:class:`mmseg.evaluation.IoUMetric` prints the per-class IoU / Acc table to the log but returns only
the means (``aAcc``, ``mIoU``, ``mAcc``), so the per-class IoU never reaches mmengine's
``scalars.json``, where the experiment tools read a run's figures. This subclass returns the
same means (computed by the parent, unchanged) plus ``IoU.<class>`` and ``Acc.<class>`` (percent,
rounded like the parent's table), from the parent's own
:meth:`~mmseg.evaluation.IoUMetric.total_area_to_metrics`.
"""
from __future__ import annotations

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ClassIoUMetric(IoUMetric):
    """``IoUMetric`` whose result also holds ``IoU.<class>`` / ``Acc.<class>`` (and the other per-class figures)."""

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = dict(super().compute_metrics(results))
        if self.format_only or not results:
            return metrics
        areas = [sum(parts) for parts in zip(*results)]  # intersect, union, pred, label over the images
        per_class = self.total_area_to_metrics(*areas, self.metrics, self.nan_to_num, self.beta)
        per_class.pop("aAcc", None)
        for figure, values in per_class.items():
            values = values.numpy() if hasattr(values, "numpy") else np.asarray(values)
            for name, value in zip(self.dataset_meta["classes"], values):
                metrics[f"{figure}.{name}"] = float(np.round(value * 100, 2))
        return metrics
