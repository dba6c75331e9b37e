"""Parameters and multiply-accumulates of an mmpretrain classifier, the way every study here counts them.

``mmengine.analysis.get_model_complexity_info`` (fvcore's counter) on ``model(x, mode='tensor')``:
backbone -> neck -> head logits, i.e. what is deployed. One fused multiply-add counts as one
("flops" in mmengine's naming are MACs); element-wise operations are not counted. Used by
``experiments/neu_cls/sarsn_complexity.py``, ``experiments/mgjr/mgjr_complexity.py`` and
``experiments/neu_cls/neu_cls_report.py``.
"""
from __future__ import annotations

import logging

import torch
from torch import nn


class _Logits(nn.Module):
    """``classifier(x, mode='tensor')`` as a plain module (the counter traces ``forward(x)``)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x, mode="tensor")


def classifier_complexity(model: nn.Module, size: int) -> dict[str, int]:
    """``{'params', 'macs'}`` of ``model`` on one 3 x ``size`` x ``size`` image (all parameters counted)."""
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel(logging.ERROR)  # the counter warns about every uncounted op
    was_training = model.training
    model.eval()
    try:
        info = get_model_complexity_info(_Logits(model), input_shape=(3, size, size), show_table=False,
                                         show_arch=False)
    finally:
        model.train(was_training)
    return {"params": sum(p.numel() for p in model.parameters()), "macs": int(info["flops"])}
