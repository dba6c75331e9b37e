"""Losses for ARCD."""
from .focal import PixelFocalLoss, pixel_focal_loss

__all__ = ["PixelFocalLoss", "pixel_focal_loss"]
