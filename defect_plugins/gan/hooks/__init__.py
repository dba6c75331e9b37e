"""Hooks registered in mmpretrain's ``HOOKS`` for CycleGAN training."""
from defect_plugins.gan.hooks.sample_grid import CycleGANSampleHook, make_grid

__all__ = ["CycleGANSampleHook", "make_grid"]
