"""Backbones registered in mmpretrain's ``MODELS``."""
from defect_plugins.cls.backbones.sarsn import SARSN, AdaptiveShrinkage, directional_threshold

__all__ = ["SARSN", "AdaptiveShrinkage", "directional_threshold"]
