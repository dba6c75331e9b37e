"""Backbones registered in mmpretrain's ``MODELS``."""
from defect_plugins.cls.backbones.sarsn import SARSN, AdaptiveShrinkage, directional_threshold
from defect_plugins.cls.backbones.seresnet_basic import SEBasicBlock, SEResNetBasic

__all__ = ["SARSN", "AdaptiveShrinkage", "SEBasicBlock", "SEResNetBasic", "directional_threshold"]
