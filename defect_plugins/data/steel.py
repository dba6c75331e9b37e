"""Synthetic rolled strip-steel textures.

The texture imitates grayscale photographs of hot-rolled strip steel such as
the NEU surface defect database (NEU-CLS / NEU-DET, Song & Yan 2013,
Northeastern University) and steel-mill line cameras looking at a strip on a
roller table (as in the Severstal steel defect data).  What makes those images
look like steel, and what a model has to learn to ignore, is:

* oriented grain: rolling stretches the surface, so the noise is long along the
  rolling direction (image x axis here) and short across it;
* a few faint longitudinal streaks (roll marks);
* low contrast: mean gray ~110-150, standard deviation ~10-20;
* uneven illumination: a smooth gradient / vignette over the frame;
* sensor noise: independent Gaussian noise per pixel.

Everything is float32 until :func:`to_uint8`; the rolling direction is always
the image x axis (columns), so "across rolling" means the y axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "StripScene",
    "add_sensor_noise",
    "grain",
    "illumination",
    "lowfreq_noise",
    "machine_bed",
    "steel_surface",
    "strip_scene",
    "to_uint8",
]


def lowfreq_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Smooth random field with zero mean and unit std.

    A coarse ``cells`` grid of white noise is upsampled with bicubic
    interpolation: cheap, vectorised and smooth at the scale ``shape / cells``.
    """
    h, w = shape
    cy, cx = max(2, int(cells[0])), max(2, int(cells[1]))
    coarse = rng.standard_normal((cy, cx)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 1e-6 else field


def _lowfreq_1d(rng: np.random.Generator, length: int, cells: int) -> np.ndarray:
    """Smooth 1-D random curve (zero mean, unit std) of ``length`` samples."""
    return lowfreq_noise(rng, (1, length), (2, cells))[0]


def grain(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Anisotropic grain: white noise blurred much more along x than along y.

    The noise is generated on a padded canvas and cropped so the blur does not
    create mirrored structures at the left/right borders.
    """
    h, w = shape
    sigma_x = float(rng.uniform(3.0, 7.0)) * scale
    sigma_y = float(rng.uniform(0.5, 0.9)) * max(1.0, scale * 0.75)
    pad_x = int(np.ceil(3 * sigma_x))
    pad_y = int(np.ceil(3 * sigma_y))
    white = rng.standard_normal((h + 2 * pad_y, w + 2 * pad_x)).astype(np.float32)
    blurred = cv2.GaussianBlur(white, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y)
    out = blurred[pad_y : pad_y + h, pad_x : pad_x + w]
    out = out - out.mean()
    return out / max(float(out.std()), 1e-6)


def _streaks(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A few faint longitudinal streaks that fade in and out along x."""
    h, w = shape
    k = int(rng.integers(1, 5))
    rows = rng.uniform(0, h, size=k)
    widths = rng.uniform(0.4, 1.5, size=k) * scale
    amps = rng.uniform(2.0, 6.0, size=k) * rng.choice([-1.0, 1.0], size=k)
    y = np.arange(h, dtype=np.float32)[:, None]
    across = np.exp(-0.5 * ((y - rows[None, :]) / widths[None, :]) ** 2) * amps[None, :]  # (h, k)
    along = np.stack([np.clip(0.6 + 0.5 * _lowfreq_1d(rng, w, 4), 0.0, 1.0) for _ in range(k)])  # (k, w)
    return (across.astype(np.float32) @ along.astype(np.float32)).astype(np.float32)


def illumination(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Multiplicative illumination field around 1: linear gradient, vignette, blotches."""
    h, w = shape
    y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    gx, gy = rng.uniform(-0.16, 0.16, size=2)
    cx, cy = rng.uniform(-0.25, 0.25, size=2)
    vignette = float(rng.uniform(0.0, 0.25))
    field = 1.0 + gx * x + gy * y - vignette * ((x - cx) ** 2 + (y - cy) ** 2)
    field = field + 0.03 * lowfreq_noise(rng, shape, (3, 3))
    return field.astype(np.float32)


def steel_surface(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    mean: float | None = None,
    grain_std: float | None = None,
) -> np.ndarray:
    """Defect-free steel (float32, no sensor noise yet).

    Sensor noise is added separately (:func:`add_sensor_noise`) so that a
    defect can be painted between the two steps and the clean/defective pair
    differs exactly where the defect is.
    """
    h, w = shape
    scale = min(h, w) / 64.0
    mean = float(rng.uniform(115.0, 145.0)) if mean is None else float(mean)
    grain_std = float(rng.uniform(7.0, 12.0)) if grain_std is None else float(grain_std)
    surface = mean + grain_std * grain(rng, shape, scale)
    surface += _streaks(rng, shape, scale)
    # Coarse anisotropic blotches of the oxide layer.
    surface += float(rng.uniform(2.0, 5.0)) * lowfreq_noise(rng, shape, (4, 2))
    return (surface * illumination(rng, shape)).astype(np.float32)


def add_sensor_noise(rng: np.random.Generator, image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Per-pixel Gaussian sensor noise (sigma 1.5-3 gray levels unless given)."""
    sigma = float(rng.uniform(1.5, 3.0)) if sigma is None else float(sigma)
    return (image + rng.normal(0.0, sigma, size=image.shape)).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip a float image to uint8."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- strip scene


def machine_bed(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Roller table seen past the strip: dark, periodic roller bars, coarse noise."""
    h, w = shape
    scale = h / 64.0
    x = np.arange(w, dtype=np.float32)[None, :]
    period = float(rng.uniform(10.0, 24.0)) * scale
    phase = float(rng.uniform(0, 2 * np.pi))
    sharp = float(rng.uniform(2.0, 5.0))
    rollers = (0.5 + 0.5 * np.cos(2 * np.pi * x / period + phase)) ** sharp  # highlights on roller tops
    base = float(rng.uniform(40.0, 70.0))
    bed = base + float(rng.uniform(20.0, 45.0)) * rollers
    bed = bed + float(rng.uniform(6.0, 12.0)) * lowfreq_noise(rng, shape, (max(2, h // 6), max(2, w // 6)))
    coarse = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 1.2 * scale)
    bed = bed + float(rng.uniform(4.0, 8.0)) * coarse / max(float(coarse.std()), 1e-6)
    return (bed * illumination(rng, shape)).astype(np.float32)


@dataclass(frozen=True)
class StripScene:
    """A steel strip on a roller table, before sensor noise.

    ``coverage`` is the anti-aliased fraction of each pixel covered by the
    strip; ``top``/``bottom`` are the wandering strip edges (y per column);
    the flags say whether each edge is inside the frame.
    """

    image: np.ndarray
    coverage: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    top_visible: bool
    bottom_visible: bool

    @property
    def strip(self) -> np.ndarray:
        """Boolean mask of pixels that belong to the strip."""
        return self.coverage >= 0.5

    @property
    def bed(self) -> np.ndarray:
        """Boolean mask of pixels where the machine bed is visible."""
        return ~self.strip


def strip_scene(rng: np.random.Generator, shape: tuple[int, int]) -> StripScene:
    """Bright strip spanning the width between two slightly wandering edges.

    In about a quarter of the frames the strip fills the whole height (no bed
    visible); otherwise the bed shows above, below, or on both sides.
    """
    h, w = shape
    scale = h / 64.0
    layout = rng.choice(["full", "both", "top", "bottom"], p=[0.25, 0.4, 0.175, 0.175])
    top_visible = layout in ("both", "top")
    bottom_visible = layout in ("both", "bottom")
    xs = np.arange(w, dtype=np.float32) - w / 2.0

    def edge(lo: float, hi: float, visible: bool, outside: float) -> np.ndarray:
        if not visible:
            return np.full(w, outside, dtype=np.float32)
        base = float(rng.uniform(lo, hi)) * h
        tilt = float(rng.uniform(-0.03, 0.03)) * h / w
        wander = float(rng.uniform(0.4, 2.0)) * scale * _lowfreq_1d(rng, w, int(rng.integers(3, 8)))
        return (base + tilt * xs + wander).astype(np.float32)

    top = edge(0.08, 0.35, top_visible, -4.0 * scale)
    bottom = edge(0.65, 0.92, bottom_visible, h + 4.0 * scale)

    y = np.arange(h, dtype=np.float32)[:, None] + 0.5
    coverage = np.clip(y - top[None, :] + 0.5, 0, 1) * np.clip(bottom[None, :] - y + 0.5, 0, 1)
    coverage = coverage.astype(np.float32)

    steel = steel_surface(rng, shape, mean=float(rng.uniform(150.0, 180.0)))
    # Rounded strip edge: a thin bright highlight just inside each edge.
    dist_edge = np.minimum(np.abs(y - top[None, :]), np.abs(bottom[None, :] - y))
    steel = steel + float(rng.uniform(8.0, 20.0)) * np.exp(-0.5 * (dist_edge / (0.8 * scale)) ** 2)
    bed = machine_bed(rng, shape)
    # The strip casts a soft shadow on the bed next to its edges.
    shadow = np.exp(-dist_edge / (3.0 * scale)) * float(rng.uniform(0.15, 0.4))
    bed = bed * (1.0 - shadow)
    image = (bed * (1.0 - coverage) + steel * coverage).astype(np.float32)
    return StripScene(image, coverage, top, bottom, bool(top_visible), bool(bottom_visible))
