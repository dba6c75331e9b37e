"""Imbalance-adaptive classification loss (RKD-SARSN, Huang et al., Algorithms 16(11):516, 2023).

The paper weights each class by how badly it is currently classified, measured by the class's
G-mean (sqrt(recall x specificity), Kubat & Matwin 1997) and accuracy, scales that by the
imbalance ratio K of the training set and bounds it with tanh; it adds a squared-error term
between the predicted probabilities and the targets with a "sensitivity" offset beta. Its
formulas are partly garbled in the published text; the reading implemented here is:

For class c, from one-vs-rest confusion counts (TP, FN, FP, TN) gathered during training::

    recall_c      = TP / (TP + FN)          specificity_c = TN / (TN + FP)
    G_c           = sqrt(recall_c * specificity_c)
    acc_c         = (TP + TN) / (TP + FN + FP + TN)
    e_c           = 1 - (G_c + acc_c) / 2                    in [0, 1], 0 = perfect
    w_c           = 1 + tanh(K * e_c)                        in [1, 2)

with K = n_max / n_min >= 1 (training-set class counts). A class with no sample in the counts
keeps its previous weight. The loss for logits z, probabilities p = softmax(z), label y::

    t    = (1 - beta) * onehot(y) + beta / C                 (beta: sensitivity offset)
    loss = w_y * CE(z, y) + mse_weight * sum_c (p_c - t_c)^2

averaged over the batch. The weights live in a buffer (``class_weights``) so they are saved in
and restored from checkpoints; :class:`~defect_plugins.cls.hooks.ImbalanceAdaptiveWeightHook`
recomputes them from the running confusion counts (``confusion``, also a buffer) and logs them.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS


def gmean_accuracy_weights(confusion: torch.Tensor, imbalance_ratio: float,
                           previous: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class weights ``1 + tanh(K * (1 - (G_c + acc_c) / 2))`` from a C x C confusion matrix.

    ``confusion[i, j]`` counts samples of true class i predicted as j. Classes without a sample
    keep ``previous`` (or 1).
    """
    confusion = confusion.double()
    total = confusion.sum()
    tp = confusion.diagonal()
    fn = confusion.sum(dim=1) - tp
    fp = confusion.sum(dim=0) - tp
    tn = total - tp - fn - fp
    recall = tp / (tp + fn).clamp(min=1)
    specificity = tn / (tn + fp).clamp(min=1)
    gmean = torch.sqrt(recall * specificity)
    accuracy = (tp + tn) / total.clamp(min=1)
    error = 1.0 - 0.5 * (gmean + accuracy)
    weights = 1.0 + torch.tanh(float(imbalance_ratio) * error)
    seen = (tp + fn) > 0
    fallback = torch.ones_like(weights) if previous is None else previous.to(weights)
    return torch.where(seen, weights, fallback).float()


@MODELS.register_module()
class ImbalanceAdaptiveLoss(nn.Module):
    """Class-weighted cross-entropy plus squared error on probabilities, weights set by a hook.

    Args:
        num_classes: number of classes C.
        imbalance_ratio: K; ``None`` lets the hook set it from the training set (n_max / n_min).
        beta: sensitivity offset of the squared-error target (see module docstring).
        mse_weight: weight of the squared-error term.
        loss_weight: overall factor (mmpretrain convention).
    """

    def __init__(self, num_classes: int, imbalance_ratio: float | None = None, beta: float = 0.1,
                 mse_weight: float = 1.0, loss_weight: float = 1.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        self.num_classes = num_classes
        self.beta = beta
        self.mse_weight = mse_weight
        self.loss_weight = loss_weight
        self.auto_imbalance_ratio = imbalance_ratio is None
        self.register_buffer("imbalance_ratio", torch.tensor(1.0 if imbalance_ratio is None else float(imbalance_ratio)))
        self.register_buffer("class_weights", torch.ones(num_classes))
        self.register_buffer("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long))

    @torch.no_grad()
    def accumulate(self, cls_score: torch.Tensor, label: torch.Tensor) -> None:
        """Add a batch's (true, predicted) pairs to the running confusion counts."""
        pred = cls_score.argmax(dim=1)
        index = label * self.num_classes + pred
        self.confusion += torch.bincount(index, minlength=self.num_classes ** 2).view_as(self.confusion)

    @torch.no_grad()
    def update_weights(self, confusion: torch.Tensor | None = None) -> torch.Tensor:
        """Recompute ``class_weights`` from ``confusion`` (default: the running counts), reset counts."""
        counts = self.confusion if confusion is None else confusion
        if counts.sum() > 0:
            self.class_weights.copy_(gmean_accuracy_weights(counts, self.imbalance_ratio.item(), self.class_weights))
        self.confusion.zero_()
        return self.class_weights.clone()

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None, **kwargs) -> torch.Tensor:
        if label.dim() == 2:  # one-hot / mixed scores from batch augments: use the dominant class
            label = label.argmax(dim=1)
        label = label.long()
        if self.training:
            self.accumulate(cls_score.detach(), label)
        ce = F.cross_entropy(cls_score, label, reduction="none") * self.class_weights[label]
        probs = cls_score.softmax(dim=1)
        target = F.one_hot(label, self.num_classes).to(probs) * (1.0 - self.beta) + self.beta / self.num_classes
        squared = ((probs - target) ** 2).sum(dim=1)
        loss = ce + self.mse_weight * squared
        if weight is not None:
            loss = loss * weight.float()
        reduction = reduction_override or "mean"
        if reduction == "none":
            return self.loss_weight * loss
        if reduction == "sum":
            return self.loss_weight * loss.sum()
        denominator = avg_factor if avg_factor is not None else loss.numel()
        return self.loss_weight * loss.sum() / max(float(denominator), 1e-12)
