"""Imbalance-adaptive classification loss (RKD-SARSN, Huang et al., Algorithms 16(11):516, 2023, Eqs. 12-17).

The paper weights each class by how badly it is currently classified, measured by the class's
G-mean (sqrt(recall x specificity), Kubat & Matwin 1997) and accuracy, scales that by the
imbalance of the training set and bounds it with tanh; it adds a squared-error term between the
predicted probabilities and the targets with a "sensitivity" offset beta. Eqs. 12-17 are partly
garbled in the published text (the individual equation numbers below could not be checked
against a clean copy, so each step says what it reads and why). The reading implemented here:

For class c, from one-vs-rest confusion counts (TP, FN, FP, TN) gathered during training::

    recall_c      = TP / (TP + FN)          specificity_c = TN / (TN + FP)
    G_c           = sqrt(recall_c * specificity_c)               (G-mean, Kubat & Matwin)
    acc_c         = (TP + TN) / (TP + FN + FP + TN)              (one-vs-rest accuracy)
    e_c           = 1 - (G_c + acc_c) / 2                        in [0, 1], 0 = perfect
    w_c           = w0 + tanh(K_c * e_c)                         in [w0, w0 + 1)

* ``e_c``: the paper combines G-mean and accuracy into one "how badly" score; their mean,
  subtracted from 1, is the reading that is 0 for a perfect class and grows with its errors.
* ``K_c`` (``k_mode``):

  - ``'per_class'`` (default): ``K_c = n_max / n_c`` from the training-set class counts ``n_c``.
    This is the reading under which the paper's statement that majority-class weights go
    "close to 0" can hold at all: class frequency enters the weights, the largest class has the
    smallest ``K_c = 1`` and so, under equal errors, the smallest weight; a class ``r`` times
    rarer than the largest scales its error by ``r``.
  - ``'global'``: one ``K = n_max / n_min`` for every class (the project's first reading): class
    frequency never enters the weights, only the current errors do.

  On a balanced training set both give ``K_c = 1``.
* ``w0`` (``weight_offset``): the paper bounds the weight with tanh; with ``w0 = 0`` a
  well-classified majority class gets a weight close to 0 (the paper's wording; its
  cross-entropy term then all but vanishes), with ``w0 = 1`` (default, the project's first
  reading) every class keeps at least plain cross-entropy and weights lie in [1, 2).

A class with no sample in the counts keeps its previous weight. The loss for logits z,
probabilities p = softmax(z), label y::

    t    = (1 - beta) * onehot(y) + beta / C                 (beta: sensitivity offset)
    loss = w_y * CE(z, y) + mse_weight * sum_c (p_c - t_c)^2

averaged over the batch: the squared-error term reads the paper's probability-target term with
its sensitivity offset as label smoothing of the target (beta spread evenly over the C classes).
The weights live in a buffer (``class_weights``) so they are saved in and restored from
checkpoints, as do ``K_c`` (``class_ratios``) and ``n_max / n_min`` (``imbalance_ratio``);
:class:`~defect_plugins.cls.hooks.ImbalanceAdaptiveWeightHook` takes the class counts ``n_c`` from
the training set's labels before training (unless ``class_counts`` or ``imbalance_ratio`` is
given), recomputes the weights from the running confusion counts (``confusion``, also a buffer)
and logs them.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.registry import MODELS

K_MODES = ("per_class", "global")


def class_imbalance_ratios(counts: Sequence[int] | torch.Tensor, k_mode: str = "per_class") -> torch.Tensor:
    """``K_c`` of shape (C,) from training-set class counts ``n_c`` (see the module docstring).

    ``'per_class'``: ``n_max / n_c``; ``'global'``: ``n_max / n_min`` for every class. Classes with
    no training sample are left out of ``n_min`` and get the largest ratio of the present classes
    (their weight is never used for a label, since no label of theirs exists).
    """
    if k_mode not in K_MODES:
        raise ValueError(f"k_mode must be one of {K_MODES}, got {k_mode!r}")
    counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    if counts.numel() == 0 or torch.any(counts < 0) or not torch.all(counts == counts.round()):
        raise ValueError(f"class counts must be non-negative integers, one per class, got {counts.tolist()}")
    present = counts > 0
    if not present.any():
        raise ValueError(f"class counts {counts.long().tolist()}: no class has a training sample")
    n_max, n_min = counts[present].max(), counts[present].min()
    if k_mode == "global":
        return torch.full_like(counts, float(n_max / n_min)).float()
    ratios = torch.where(present, n_max / counts.clamp(min=1), n_max / n_min)
    return ratios.float()


def gmean_accuracy_weights(confusion: torch.Tensor, imbalance_ratio: float | torch.Tensor,
                           previous: torch.Tensor | None = None, weight_offset: float = 1.0) -> torch.Tensor:
    """Per-class weights ``w0 + tanh(K_c * (1 - (G_c + acc_c) / 2))`` from a C x C confusion matrix.

    ``confusion[i, j]`` counts samples of true class i predicted as j. ``imbalance_ratio`` is one
    global K or a (C,) tensor of per-class ``K_c``; ``weight_offset`` is ``w0``. Classes without a
    sample keep ``previous`` (or 1 when ``previous`` is None).
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
    ratio = torch.as_tensor(imbalance_ratio, dtype=torch.float64, device=confusion.device)
    if ratio.dim() > 0 and ratio.shape != error.shape:
        raise ValueError(f"imbalance_ratio: expected one K or {error.numel()} per-class values, got shape "
                         f"{tuple(ratio.shape)}")
    weights = float(weight_offset) + torch.tanh(ratio * error)
    seen = (tp + fn) > 0
    fallback = torch.ones_like(weights) if previous is None else previous.to(weights)
    return torch.where(seen, weights, fallback).float()


@MODELS.register_module()
class ImbalanceAdaptiveLoss(nn.Module):
    """Class-weighted cross-entropy plus squared error on probabilities, weights set by a hook.

    Args:
        num_classes: number of classes C.
        imbalance_ratio: one global K, fixed (implies ``k_mode='global'``); ``None`` (default) lets
            the class counts set ``K_c``.
        k_mode: ``'per_class'`` (``K_c = n_max / n_c``) or ``'global'`` (``K = n_max / n_min``);
            ``None`` picks ``'global'`` when ``imbalance_ratio`` is given, else ``'per_class'``.
        class_counts: training-set count ``n_c`` of each class; ``None`` (with ``imbalance_ratio=None``)
            lets :class:`~defect_plugins.cls.hooks.ImbalanceAdaptiveWeightHook` count the training labels.
        beta: sensitivity offset of the squared-error target (see module docstring).
        mse_weight: weight of the squared-error term.
        loss_weight: overall factor (mmpretrain convention).
        weight_offset: ``w0`` in ``w_c = w0 + tanh(K_c * e_c)``: 1 (default) keeps every weight
            >= 1, 0 lets a well-classified majority class's weight go close to 0.
    """

    def __init__(self, num_classes: int, imbalance_ratio: float | None = None, k_mode: str | None = None,
                 class_counts: Sequence[int] | None = None, beta: float = 0.1, mse_weight: float = 1.0,
                 loss_weight: float = 1.0, weight_offset: float = 1.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        if weight_offset < 0:
            raise ValueError(f"weight_offset must be >= 0 (weights must not be negative), got {weight_offset}")
        if k_mode is None:
            k_mode = "global" if imbalance_ratio is not None else "per_class"
        if k_mode not in K_MODES:
            raise ValueError(f"k_mode must be one of {K_MODES}, got {k_mode!r}")
        if imbalance_ratio is not None:
            if k_mode != "global":
                raise ValueError(f"imbalance_ratio={imbalance_ratio} is one global K, but k_mode={k_mode!r}: "
                                 "drop imbalance_ratio (K_c then come from the class counts) or set k_mode='global'")
            if class_counts is not None:
                raise ValueError("give either imbalance_ratio (a fixed K) or class_counts (K from the counts), "
                                 "not both")
            if imbalance_ratio <= 0:
                raise ValueError(f"imbalance_ratio must be > 0, got {imbalance_ratio}")
        self.num_classes = num_classes
        self.k_mode = k_mode
        self.beta = beta
        self.mse_weight = mse_weight
        self.loss_weight = loss_weight
        self.weight_offset = float(weight_offset)
        # K comes from the training set's labels (the hook counts them) unless it is given here
        self.auto_imbalance_ratio = imbalance_ratio is None and class_counts is None
        self.register_buffer("imbalance_ratio",
                             torch.tensor(1.0 if imbalance_ratio is None else float(imbalance_ratio)))
        self.register_buffer("class_ratios", torch.full((num_classes,), float(self.imbalance_ratio)))
        self.register_buffer("class_weights", torch.ones(num_classes))
        self.register_buffer("confusion", torch.zeros(num_classes, num_classes, dtype=torch.long))
        if class_counts is not None:
            self.set_class_counts(class_counts)

    @torch.no_grad()
    def set_class_counts(self, counts: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Set ``K_c`` (``class_ratios``) and ``n_max / n_min`` (``imbalance_ratio``) from class counts;
        return ``K_c``."""
        counts = torch.as_tensor(counts).flatten()
        if counts.numel() != self.num_classes:
            raise ValueError(f"class_counts: expected {self.num_classes} counts (one per class), got {counts.tolist()}")
        ratios = class_imbalance_ratios(counts, self.k_mode)
        self.class_ratios.copy_(ratios)
        self.imbalance_ratio.fill_(float(ratios.max()))
        return ratios.clone()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # checkpoints written before per-class K hold the global K only: every class had that K
        key, old = prefix + "class_ratios", prefix + "imbalance_ratio"
        if key not in state_dict and old in state_dict:
            state_dict[key] = state_dict[old].detach().reshape(()).expand(self.num_classes).clone().float()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

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
            self.class_weights.copy_(gmean_accuracy_weights(counts, self.class_ratios, self.class_weights,
                                                            self.weight_offset))
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
