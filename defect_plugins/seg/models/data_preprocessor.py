"""Data preprocessor that also pads the ARCD machine-bed region map.

mmseg's :class:`~mmseg.models.SegDataPreProcessor` pads ``gt_sem_seg``, ``gt_edge_map`` and
``gt_depth_map`` only (``mmseg.utils.stack_batch``); the region map rides in its own
``gt_region_map`` field, so it is padded here the same way (bottom/right, ``seg_pad_val``) to
the padded shape of ``gt_sem_seg``.
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class ARCDDataPreProcessor(SegDataPreProcessor):
    """:class:`SegDataPreProcessor` plus bottom/right padding of ``gt_region_map``."""

    def forward(self, data: dict, training: bool = False) -> dict[str, Any]:
        out = super().forward(data, training)
        if not training or out.get("data_samples") is None:
            return out
        height, width = out["inputs"].shape[-2:]
        for sample in out["data_samples"]:
            if "gt_region_map" not in sample:
                continue
            region = sample.gt_region_map.data
            pad_h, pad_w = height - region.shape[-2], width - region.shape[-1]
            if pad_h or pad_w:
                del sample.gt_region_map.data
                sample.gt_region_map.data = F.pad(region, (0, pad_w, 0, pad_h), value=self.seg_pad_val)
        return out
