"""The RKD-SARSN paper's image preprocessing as mmpretrain transforms.

Huang et al. (Algorithms 16(11):516, 2023, section 3.2) denoise strip-steel images with a bilateral
filter (Tomasi & Manduchi, ICCV 1998: edge-preserving, so scratch and crack borders survive), raise
their contrast by stretching the grey-level histogram, and segment the defect with Otsu's threshold.
The work is done by :mod:`defect_plugins.imaging.paper_segmentation` (numpy and OpenCV only), the
same functions the exported classifier's post-processing and ``defect-station`` run, so training
and the line see identical pixels. Each transform acts on ``results['img']`` (uint8, HxW or HxWxC,
any channel order) and leaves labels untouched; :class:`SteelOtsuDefectMask` adds
``results['defect_mask']`` and leaves the image alone.
"""
from __future__ import annotations

from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

from defect_plugins.imaging.paper_segmentation import PaperSegmentation, bilateral_filter, contrast_stretch, \
    segment_defects


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
        results["img"] = bilateral_filter(results["img"], self.diameter, self.sigma_color, self.sigma_space)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(diameter={self.diameter}, sigma_color={self.sigma_color}, "
                f"sigma_space={self.sigma_space})")


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
        results["img"] = contrast_stretch(results["img"], self.low, self.high)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(low={self.low}, high={self.high})"


@TRANSFORMS.register_module()
class SteelOtsuDefectMask(BaseTransform):
    """The paper's whole chain (grey, bilateral, stretch, Otsu, opening + closing) -> ``results['defect_mask']``.

    The mask is uint8 0/1 at the image's resolution; ``results['otsu_threshold']`` is the grey level
    Otsu chose. The image itself is not changed (put :class:`SteelBilateralFilter` /
    :class:`HistogramContrastStretch` in the pipeline for that). Arguments: those of
    :class:`defect_plugins.imaging.paper_segmentation.PaperSegmentation`.
    """

    def __init__(self, **settings):
        self.settings = PaperSegmentation(**settings)

    def transform(self, results: dict) -> dict:
        views = segment_defects(results["img"], self.settings)
        results["defect_mask"] = views.mask
        results["otsu_threshold"] = views.threshold
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"
