"""The RKD-SARSN paper's defect segmentation chain: bilateral filter, contrast stretch, Otsu, morphology.

Huang et al., "Research on a Classification Method for Strip Steel Surface Defects Based on Knowledge
Distillation and a Self-Adaptive Residual Shrinkage Network", Algorithms 16(11):516, 2023, section 3.2
and Fig. 20: after the student network has named the defect class, the grade-evaluation system
segments the defect inside the image with classical image processing and measures it
(:mod:`.quantify`). The steps, each a function of its own so that the mmpretrain transforms
(:mod:`defect_plugins.cls.transforms.preprocessing`), the classifier post-processing
(:mod:`defect_plugins.deploy.families.classifier`, hence ``defect-infer`` and ``DefectInferencer``) and
``defect-station`` run exactly the same code:

1. :func:`to_grey`: the paper works on grey levels (NEU images are R = G = B);
2. :func:`bilateral_filter`: edge-preserving denoising (Tomasi & Manduchi, ICCV 1998), so scratch and
   crack borders survive while the rolled texture is smoothed;
3. :func:`contrast_stretch`: a linear grey-histogram stretch between two percentiles to 0-255;
4. :func:`otsu_mask`: Otsu's threshold (IEEE SMC 1979) splits the stretched image in two grey classes;
   the defect is the *minority* class by default (a defect covers less of the image than the sound
   surface, and NEU defects are dark (pits, scale) or bright (patches) alike), or the ``dark`` /
   ``bright`` class when the line knows its polarity;
5. :func:`clean_mask`: a morphological opening (drops isolated texture pixels) then closing (joins
   the pieces of one defect), elliptical kernel.

numpy and OpenCV only: this module runs in the runtime-only install (no torch, no toolkit).
Otsu always splits an image in two, also a defect-free one: the chain measures the defect the
classifier named; it does not decide whether there is one.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

POLARITIES = ("minority", "dark", "bright")


@dataclass(frozen=True)
class PaperSegmentation:
    """Parameters of the chain (defaults: the ones the project's ``neu_cls`` paper-augmentation config uses).

    Args:
        diameter, sigma_color, sigma_space: ``cv2.bilateralFilter`` (pixels, grey levels, pixels).
        low, high: histogram percentiles stretched to 0 and 255.
        polarity: which Otsu class is the defect: ``minority``, ``dark`` or ``bright``.
        kernel: side of the elliptical structuring element of the opening and closing (pixels; 1: none).
    """

    diameter: int = 5
    sigma_color: float = 50.0
    sigma_space: float = 50.0
    low: float = 1.0
    high: float = 99.0
    polarity: str = "minority"
    kernel: int = 3

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {POLARITIES}, got {self.polarity!r}")
        if not 0.0 <= self.low < self.high <= 100.0:
            raise ValueError(f"need 0 <= low < high <= 100, got low={self.low}, high={self.high}")
        if self.kernel < 1 or self.diameter < 1:
            raise ValueError(f"kernel and diameter must be >= 1, got {self.kernel}, {self.diameter}")


@dataclass
class PaperViews:
    """Every intermediate image of :func:`segment_defects` (the station shows them; Fig. 20)."""

    grey: np.ndarray
    bilateral: np.ndarray
    stretched: np.ndarray
    mask: np.ndarray  # uint8 0/1, the cleaned defect mask at the image's resolution
    threshold: float  # Otsu's grey level on the stretched image
    defect_is_bright: bool


def to_grey(image: np.ndarray) -> np.ndarray:
    """uint8 BGR ``(H, W, 3)`` (or already grey ``(H, W)``) -> grey ``(H, W)``."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"expected a grey (H, W) or BGR (H, W, 3) image, got shape {image.shape}")


def bilateral_filter(image: np.ndarray, diameter: int = 5, sigma_color: float = 50.0,
                     sigma_space: float = 50.0) -> np.ndarray:
    """``cv2.bilateralFilter`` on a uint8 image (grey or colour), a new array."""
    return cv2.bilateralFilter(np.ascontiguousarray(image), int(diameter), float(sigma_color), float(sigma_space))


def contrast_stretch(image: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Stretch grey levels linearly so that the ``low`` / ``high`` percentiles become 0 / 255, clipped.

    The percentiles are taken over all channels together (a colour image keeps its grey balance).
    A flat image (both percentiles equal) is returned unchanged.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    image = np.asarray(image)
    if image.dtype == np.uint8:
        # the same percentiles from a 256-bin histogram and the mapping as a 256-entry table: 15x
        # faster than sorting the pixels (it ran for every classified image in defect-infer)
        lower, upper = _uint8_percentiles(image, (low, high))
    else:
        lower, upper = np.percentile(image, [low, high])
    if upper <= lower:
        return np.array(image, copy=True)
    if image.dtype == np.uint8:
        levels = np.arange(256, dtype=np.float64)  # float64, as the per-pixel formula below computes
        table = np.clip((levels - lower) * (255.0 / (upper - lower)), 0, 255).round()
        return cv2.LUT(np.ascontiguousarray(image), table.astype(np.uint8))
    stretched = (np.asarray(image, dtype=np.float32) - lower) * (255.0 / (upper - lower))
    return np.clip(stretched, 0, 255).round().astype(np.uint8)


def _uint8_percentiles(image: np.ndarray, percents: tuple[float, ...]) -> list[float]:
    """``np.percentile(image, percents)`` (its default linear method) of a uint8 image, from its histogram."""
    counts = np.cumsum(np.bincount(image.ravel(), minlength=256))
    last = counts[-1] - 1
    values = []
    for percent in percents:
        rank = percent / 100.0 * last  # position in the sorted pixels; interpolate between its neighbours
        below, above = int(np.floor(rank)), int(np.ceil(rank))
        low_value = int(np.searchsorted(counts, below, side="right"))
        high_value = int(np.searchsorted(counts, above, side="right"))
        values.append(low_value + (high_value - low_value) * (rank - below))
    return values


def otsu_mask(grey: np.ndarray, polarity: str = "minority") -> tuple[np.ndarray, float, bool]:
    """Otsu's threshold on a uint8 grey image: ``(mask 0/1, threshold, defect is the bright class)``."""
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}, got {polarity!r}")
    threshold, bright = cv2.threshold(np.ascontiguousarray(grey), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if polarity == "minority":
        defect_is_bright = bool(bright.mean() <= 0.5)
    else:
        defect_is_bright = polarity == "bright"
    mask = bright if defect_is_bright else (1 - bright)
    return mask.astype(np.uint8), float(threshold), defect_is_bright


def clean_mask(mask: np.ndarray, kernel: int = 3) -> np.ndarray:
    """Opening then closing with an elliptical ``kernel`` x ``kernel`` element (uint8 0/1 in and out)."""
    mask = (np.asarray(mask) > 0).astype(np.uint8)
    if kernel <= 1:
        return mask
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(kernel), int(kernel)))
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, element)
    return cv2.morphologyEx(opened, cv2.MORPH_CLOSE, element)


def segment_defects(image: np.ndarray, settings: PaperSegmentation | None = None) -> PaperViews:
    """The whole chain on a uint8 BGR or grey image: every view and the cleaned defect mask."""
    settings = settings or PaperSegmentation()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    grey = to_grey(image)
    smooth = bilateral_filter(grey, settings.diameter, settings.sigma_color, settings.sigma_space)
    stretched = contrast_stretch(smooth, settings.low, settings.high)
    raw, threshold, bright = otsu_mask(stretched, settings.polarity)
    return PaperViews(grey=grey, bilateral=smooth, stretched=stretched, mask=clean_mask(raw, settings.kernel),
                      threshold=threshold, defect_is_bright=bright)
