"""Transforms registered in mmpretrain's ``TRANSFORMS``."""
from defect_plugins.cls.transforms.loading import CheckedLoadImageFromFile, ImageReadError
from defect_plugins.cls.transforms.preprocessing import HistogramContrastStretch, SteelBilateralFilter, \
    SteelOtsuDefectMask

__all__ = ["CheckedLoadImageFromFile", "HistogramContrastStretch", "ImageReadError", "SteelBilateralFilter",
           "SteelOtsuDefectMask"]
