"""Hooks registered in mmpretrain's ``HOOKS``."""
from defect_plugins.cls.hooks.imbalance_adaptive_hook import ImbalanceAdaptiveWeightHook

__all__ = ["ImbalanceAdaptiveWeightHook"]
