"""mmseg's IoU metric applied to the ARCD region output (``pred_region`` vs ``gt_region_map``).

The region (machine bed) is evaluated separately from the defect classes, as in the thesis.
This reuses :class:`mmseg.evaluation.IoUMetric` unchanged (``mAcc`` is the MPA); only the
fields it reads and the class list differ.
"""
from __future__ import annotations

from typing import Sequence

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class RegionIoUMetric(IoUMetric):
    """IoU / MPA of the region head. Metric names get ``prefix`` (default ``'region'``)."""

    def __init__(self, class_names: Sequence[str] = ("not_bed", "machine_bed"), pred_key: str = "pred_region",
                 gt_key: str = "gt_region_map", prefix: str | None = "region", **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.class_names = tuple(class_names)
        self.pred_key, self.gt_key = pred_key, gt_key

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        remapped = []
        for sample in data_samples:
            if self.pred_key not in sample or self.gt_key not in sample:
                raise KeyError(f"RegionIoUMetric: data sample lacks {self.pred_key!r} or {self.gt_key!r}; "
                               "is the model's region_head set and LoadRegionMap in the test pipeline?")
            remapped.append({"pred_sem_seg": sample[self.pred_key], "gt_sem_seg": sample[self.gt_key],
                             "img_path": sample.get("img_path")})
        saved = self._dataset_meta
        self._dataset_meta = {"classes": self.class_names}
        try:
            super().process(data_batch, remapped)
        finally:
            self._dataset_meta = saved

    def compute_metrics(self, results: list) -> dict[str, float]:
        saved = self._dataset_meta
        self._dataset_meta = {"classes": self.class_names}
        try:
            return super().compute_metrics(results)
        finally:
            self._dataset_meta = saved

