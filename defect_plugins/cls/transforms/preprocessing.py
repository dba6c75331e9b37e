"""The RKD-SARSN paper's image preprocessing as mmpretrain transforms.

Huang et al. (Algorithms 16(11):516, 2023) denoise strip-steel images with a bilateral filter
(Tomasi & Manduchi, ICCV 1998: edge-preserving, so scratch and crack borders survive) and
raise their contrast by stretching the grey-level histogram. Both act on ``results['img']``
(uint8, HxW or HxWxC, any channel order) and leave labels untouched. OpenCV does the filtering.
"""
from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SteelBilateralFilter(BaseTransform):
    """``cv2.bilateralFilter`` on ``results['img']``.

    Args:
        diameter: pixel neighbourhood diameter.
        sigma_color: filter sigma in colour space (0-255 grey levels).
        sigma_space: filter sigma in coordinate space (pixels).
    """

    def __init__(self, diameter: int = 5, sigma_color: float = 50.0, sigma_space: float = 50.0):
        self.diameter = diameter
        self.sigma_color = sigma_color
        self.sigma_space = sigma_space

    def transform(self, results: dict) -> dict:
        img = results["img"]
        results["img"] = cv2.bilateralFilter(np.ascontiguousarray(img), self.diameter, self.sigma_color, self.sigma_space)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(diameter={self.diameter}, sigma_color={self.sigma_color}, sigma_space={self.sigma_space})"


@TRANSFORMS.register_module()
class HistogramContrastStretch(BaseTransform):
    """Linear grey-level stretch between two histogram percentiles to the full 0-255 range.

    The lower and upper grey levels are the ``low`` and ``high`` percentiles of the image's
    histogram (all channels together, so the grey balance is kept); values outside are clipped.
    A flat image (upper == lower) is returned unchanged.
    """

    def __init__(self, low: float = 1.0, high: float = 99.0):
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
        self.low = low
        self.high = high

    def transform(self, results: dict) -> dict:
        img = results["img"]
        lower, upper = np.percentile(img, [self.low, self.high])
        if upper > lower:
            stretched = (img.astype(np.float32) - lower) * (255.0 / (upper - lower))
            results["img"] = np.clip(stretched, 0, 255).round().astype(np.uint8)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(low={self.low}, high={self.high})"
