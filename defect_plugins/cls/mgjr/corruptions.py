"""Held-out corruptions: image degradations that no MGJR model sees in training.

MGJR (Meng et al., J. Industrial Information Integration 48:100958, 2025) reports robustness to
noise; its abstract does not say which noise. AGTS trains on Gaussian noise, salt-and-pepper and
Gaussian blur (:mod:`defect_plugins.cls.mgjr.noise`), so testing on those same kinds measures
how well a model learned its training augmentation, not robustness. The four kinds here are
never used by :class:`~defect_plugins.cls.mgjr.noise.AGTSNoise` (it refuses them) and are used
by ``experiments/mgjr/noise_robustness.py`` only. They follow the definitions of Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations" (ICLR 2019);
the severities are the project's own, given in physical units rather than their 1-5 scale:

* **speckle**: multiplicative noise ``x + x * n``, ``n ~ N(0, sigma^2)`` on the 0-1 scale
  (``sigma``; one draw per pixel shared by the channels, as for the training noise: NEU images
  are grayscale stored as R=G=B);
* **jpeg**: JPEG encode / decode with OpenCV at ``quality`` (1-100, lower is stronger; 20 is
  the study's held-out level);
* **motion_blur**: convolution with a normalised line kernel of ``length`` pixels at a random
  angle (uniform in [0, 180) degrees, from the seed);
* **contrast**: ``(x - m) * (1 - reduction) + m`` with ``m`` the image mean (``reduction`` 0:
  unchanged, 1: flat grey).

Functions take and return ``HxW`` or ``HxWxC`` arrays (uint8, or float in 0-255), same shape and
dtype; randomness comes only from the ``numpy.random.Generator`` passed in, so a seed repeats
the corrupted image exactly. The ``TRANSFORMS`` front ends (:class:`AddSpeckleNoise`,
:class:`JPEGCompression`, :class:`AddMotionBlur`, :class:`ReduceContrast`) put them in an
mmpretrain data pipeline.
"""
from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS

HELD_OUT_KINDS = ("speckle", "jpeg", "motion_blur", "contrast")


def _as_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32, copy=True)


def _back(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    values = np.clip(values, 0.0, 255.0)
    if like.dtype == np.uint8:
        return np.round(values).astype(np.uint8)
    return values.astype(like.dtype)


def _check_image(img: np.ndarray, who: str) -> None:
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f"{who}: expected a non-empty HxW or HxWxC numpy image, got "
                         f"{type(img).__name__} {getattr(img, 'shape', '')}")


def speckle_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, channel_shared: bool = True) -> np.ndarray:
    """Multiplicative Gaussian noise ``x + x * N(0, sigma^2)`` on the 0-1 scale, clipped."""
    _check_image(img, "speckle_noise")
    if sigma < 0:
        raise ValueError(f"speckle_noise: sigma must be >= 0, got {sigma}")
    x = _as_float(img) / 255.0
    shape = img.shape[:2] + ((1, ) if channel_shared and img.ndim == 3 else img.shape[2:])
    n = rng.normal(0.0, sigma, size=shape).astype(np.float32)
    return _back((x + x * n) * 255.0, img)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encode and decode with OpenCV at ``quality`` (1-100)."""
    _check_image(img, "jpeg_compress")
    if not (isinstance(quality, (int, np.integer)) and 1 <= int(quality) <= 100):
        raise ValueError(f"jpeg_compress: quality must be an int in 1..100, got {quality!r}")
    pixels = img if img.dtype == np.uint8 else _back(_as_float(img), np.zeros(0, np.uint8))
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"jpeg_compress: OpenCV could not encode a {pixels.shape} image")
    decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3 and decoded.ndim == 2:  # a 1-channel HxWx1 image comes back HxW
        decoded = decoded[..., None]
    return decoded if img.dtype == np.uint8 else decoded.astype(img.dtype)


def motion_blur_kernel(length: int, angle: float) -> np.ndarray:
    """A ``length x length`` kernel: a line through the centre at ``angle`` degrees, sum 1.

    The line is sampled at 8 points per pixel and each sample is spread bilinearly over its four
    neighbouring kernel cells (sub-pixel accurate for any angle, exact on the axes).
    """
    if not (isinstance(length, (int, np.integer)) and length >= 1):
        raise ValueError(f"motion_blur_kernel: length must be an int >= 1, got {length!r}")
    if length == 1:
        return np.ones((1, 1), np.float32)
    half = (length - 1) / 2.0
    t = np.linspace(-half, half, 8 * length)
    xs = half + t * np.cos(np.deg2rad(angle))
    ys = half + t * np.sin(np.deg2rad(angle))
    kernel = np.zeros((length, length), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        cx, cy = np.clip(x0 + dx, 0, length - 1), np.clip(y0 + dy, 0, length - 1)
        np.add.at(kernel, (cy, cx), w)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Blur along a line of ``length`` pixels at ``angle`` degrees (reflected border)."""
    _check_image(img, "motion_blur")
    kernel = motion_blur_kernel(length, angle)
    out = cv2.filter2D(_as_float(img), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    if img.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return _back(out, img)


def reduce_contrast(img: np.ndarray, reduction: float) -> np.ndarray:
    """Pull every pixel towards the image mean: ``(x - m) * (1 - reduction) + m``."""
    _check_image(img, "reduce_contrast")
    if not 0.0 <= reduction <= 1.0:
        raise ValueError(f"reduce_contrast: reduction must lie in [0, 1], got {reduction}")
    x = _as_float(img)
    mean = x.mean()
    return _back((x - mean) * (1.0 - reduction) + mean, img)


class _Corruption(BaseTransform):
    """Shared code of the pipeline transforms: ``results['img']`` -> corrupted image, same shape and dtype."""

    def __init__(self, prob: float = 1.0, seed: int | None = None):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"{type(self).__name__}: prob must lie in [0, 1], got {prob}")
        self.prob = prob
        self.rng = np.random.default_rng(seed)

    def apply(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        if self.rng.random() >= self.prob:
            return results
        results["img"] = self.apply(results["img"])
        return results


@TRANSFORMS.register_module()
class AddSpeckleNoise(_Corruption):
    """Pipeline transform: speckle noise with std ``sigma`` (0-1 scale). Evaluation only."""

    def __init__(self, sigma: float = 0.1, prob: float = 1.0, channel_shared: bool = True, seed: int | None = None):
        super().__init__(prob, seed)
        if sigma < 0:
            raise ValueError(f"AddSpeckleNoise: sigma must be >= 0, got {sigma}")
        self.sigma, self.channel_shared = float(sigma), channel_shared

    def apply(self, img):
        return speckle_noise(img, self.sigma, self.rng, self.channel_shared)


@TRANSFORMS.register_module()
class JPEGCompression(_Corruption):
    """Pipeline transform: JPEG round trip at ``quality``. Evaluation only."""

    def __init__(self, quality: int = 20, prob: float = 1.0, seed: int | None = None):
        super().__init__(prob, seed)
        if not (isinstance(quality, (int, np.integer)) and 1 <= int(quality) <= 100):
            raise ValueError(f"JPEGCompression: quality must be an int in 1..100, got {quality!r}")
        self.quality = int(quality)

    def apply(self, img):
        return jpeg_compress(img, self.quality)


@TRANSFORMS.register_module()
class AddMotionBlur(_Corruption):
    """Pipeline transform: motion blur of ``length`` pixels at an angle uniform in [0, 180) (from ``seed``).

    Evaluation only.
    """

    def __init__(self, length: int = 5, prob: float = 1.0, seed: int | None = None):
        super().__init__(prob, seed)
        if not (isinstance(length, (int, np.integer)) and length >= 1):
            raise ValueError(f"AddMotionBlur: length must be an int >= 1, got {length!r}")
        self.length = int(length)

    def apply(self, img):
        return motion_blur(img, self.length, float(self.rng.uniform(0.0, 180.0)))


@TRANSFORMS.register_module()
class ReduceContrast(_Corruption):
    """Pipeline transform: contrast reduced by ``reduction`` (0: unchanged, 1: flat). Evaluation only."""

    def __init__(self, reduction: float = 0.5, prob: float = 1.0, seed: int | None = None):
        super().__init__(prob, seed)
        if not 0.0 <= reduction <= 1.0:
            raise ValueError(f"ReduceContrast: reduction must lie in [0, 1], got {reduction}")
        self.reduction = float(reduction)

    def apply(self, img):
        return reduce_contrast(img, self.reduction)
