"""Losses registered in mmpretrain's ``MODELS``."""
from defect_plugins.cls.losses.imbalance_adaptive import (ImbalanceAdaptiveLoss, class_imbalance_ratios,
                                                          gmean_accuracy_weights)

__all__ = ["ImbalanceAdaptiveLoss", "class_imbalance_ratios", "gmean_accuracy_weights"]
