"""Losses registered in mmpretrain's ``MODELS``."""
from defect_plugins.cls.losses.imbalance_adaptive import ImbalanceAdaptiveLoss, gmean_accuracy_weights

__all__ = ["ImbalanceAdaptiveLoss", "gmean_accuracy_weights"]
