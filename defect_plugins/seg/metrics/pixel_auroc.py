"""Per-class pixel AUROC for mmseg predictions (defect classes, or the ARCD region output).

No pixel-level AUROC exists in mmseg or mmengine. Each class ``c`` is scored one-vs-rest with its
softmax probability against ``gt == c`` (ignored pixels dropped), and AUROC is computed by
torchmetrics' ``binary_auroc``. To bound memory on large test sets, each image contributes at
most ``max_pixels`` positive and ``max_pixels`` negative pixels, taken at evenly spaced indices
(deterministic). AUROC is the probability that a positive outscores a negative, so subsampling
each group uniformly leaves it unbiased.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS
from torchmetrics.functional.classification import binary_auroc


def _even(idx: torch.Tensor, limit: int) -> torch.Tensor:
    if idx.numel() <= limit:
        return idx
    return idx[torch.linspace(0, idx.numel() - 1, limit).round().long()]


@METRICS.register_module()
class PixelAUROC(BaseMetric):
    """Pixel AUROC per class and its mean (``mAUROC``).

    Args:
        pred_key: data-sample field with logits (``seg_logits``, or ``region_logits`` for ARCD).
        gt_key: data-sample field with labels (``gt_sem_seg`` or ``gt_region_map``).
        class_names: names of all classes; default: the dataset's ``classes``.
        skip_classes: class indices not reported (default ``(0,)``: the background).
        ignore_index: label value left out.
        max_pixels: per image and class, cap on positive and on negative pixels kept.
        prefix: metric-name prefix (e.g. ``'region'``).
    """

    default_prefix = None

    def __init__(self, pred_key: str = "seg_logits", gt_key: str = "gt_sem_seg",
                 class_names: Sequence[str] | None = None, skip_classes: Sequence[int] = (0,),
                 ignore_index: int = 255, max_pixels: int = 4096, collect_device: str = "cpu",
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.pred_key, self.gt_key = pred_key, gt_key
        self.class_names = list(class_names) if class_names is not None else None
        self.skip_classes = set(int(i) for i in skip_classes)
        self.ignore_index = ignore_index
        self.max_pixels = max_pixels

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if self.pred_key not in sample or self.gt_key not in sample:
                raise KeyError(f"PixelAUROC: data sample lacks {self.pred_key!r} or {self.gt_key!r} "
                               f"(has {sorted(sample.keys())})")
            logits = sample[self.pred_key]["data"].float()
            label = sample[self.gt_key]["data"].squeeze(0).to(logits.device)
            if logits.shape[1:] != label.shape:
                raise ValueError(f"PixelAUROC: {self.pred_key} {tuple(logits.shape[1:])} and {self.gt_key} "
                                 f"{tuple(label.shape)} differ for {sample.get('img_path')!r}")
            probs = torch.sigmoid(logits) if logits.shape[0] == 1 else torch.softmax(logits, dim=0)
            valid = (label != self.ignore_index).flatten()
            flat_label = label.flatten()
            per_class = {}
            for c in range(max(probs.shape[0], 2)):
                if c in self.skip_classes or (probs.shape[0] == 1 and c == 0):
                    continue
                score = probs[0 if probs.shape[0] == 1 else c].flatten()
                pos = _even(torch.nonzero(valid & (flat_label == c)).squeeze(1), self.max_pixels)
                neg = _even(torch.nonzero(valid & (flat_label != c)).squeeze(1), self.max_pixels)
                idx = torch.cat([pos, neg])
                per_class[c] = (score[idx].cpu(), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]).cpu())
            self.results.append(per_class)

    def compute_metrics(self, results: list) -> dict[str, float]:
        names = self.class_names or list(self.dataset_meta.get("classes", []))
        metrics: dict[str, float] = {}
        values = []
        classes = sorted({c for r in results for c in r})
        for c in classes:
            scores = torch.cat([r[c][0] for r in results if c in r])
            labels = torch.cat([r[c][1] for r in results if c in r])
            name = names[c] if c < len(names) else str(c)
            if labels.min() == labels.max():
                print_log(f"PixelAUROC: class {name!r} has only {'positive' if labels[0] else 'negative'} pixels; "
                          "AUROC undefined (nan)", logger="current")
                auc = math.nan
            else:
                auc = float(binary_auroc(scores, labels.long()))
            metrics[f"AUROC.{name}"] = auc
            values.append(auc)
        finite = [v for v in values if not math.isnan(v)]
        metrics["mAUROC"] = sum(finite) / len(finite) if finite else math.nan
        return metrics
