"""Synthetic surface defects painted onto rolled-steel textures.

Every defect function takes a float32 gray image and a numpy Generator and
returns ``(image, mask)``: the new float32 image and a boolean mask.  Mask and
defect are drawn from the same geometry and the change is zero outside the
mask, so the mask covers exactly the pixels the defect changed.

The shapes follow what the NEU surface defect database (NEU-CLS / NEU-DET)
shows for hot-rolled strip: crazing, inclusion, patches, pitted surface,
rolled-in scale and scratches; plus MVTec-AD-style anomalies (scratch, pit,
patch) and the two strip-level defects of a steel-mill camera view (fold mark,
edge crack).  Sizes, counts, orientations and contrasts are all randomised:
some defects are faint, some strong, some darker, some brighter.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from .steel import StripScene, lowfreq_noise

__all__ = [
    "ANOMALY_DEFECTS",
    "ANOMALY_DEFECT_TYPES",
    "NEU_CLASSES",
    "NEU_DEFECTS",
    "SEG_CLASSES",
    "crazing",
    "edge_crack",
    "fold_mark",
    "inclusion",
    "patch",
    "patches",
    "pit",
    "pitted_surface",
    "rolled_in_scale",
    "scratch",
    "scratches",
]

NEU_CLASSES: tuple[str, ...] = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")
SEG_CLASSES: tuple[str, ...] = ("background", "fold_mark", "edge_crack")
ANOMALY_DEFECT_TYPES: tuple[str, ...] = ("scratch", "pit", "patch")

Defect = Callable[[np.ndarray, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]

_SHIFT = 3  # cv2 sub-pixel drawing: coordinates are fixed-point with 3 fractional bits
_ONE = 1 << _SHIFT
_THRESHOLD = 0.15  # profile level that counts as part of the defect


# --------------------------------------------------------------------------- helpers


def _scale(image: np.ndarray) -> float:
    return min(image.shape[:2]) / 64.0


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def _blur(profile: np.ndarray, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    return cv2.GaussianBlur(profile, (0, 0), sigmaX=max(sigma_x, 0.3), sigmaY=max(sigma_y or sigma_x, 0.3))


def _normalise(profile: np.ndarray) -> np.ndarray:
    peak = float(profile.max())
    return profile / peak if peak > 1e-6 else profile


def _curve(
    rng: np.random.Generator, center: np.ndarray, angle: float, length: float, bend: float, n: int = 16
) -> np.ndarray:
    """Polyline (n+1, 2) of total ``length`` whose heading random-walks by ``bend`` rad per segment."""
    headings = angle + np.cumsum(rng.normal(0.0, bend, size=n))
    steps = (length / n) * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    pts = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return pts - pts.mean(axis=0) + center


def _polyline(shape: tuple[int, int], pts: np.ndarray, thickness: int) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [_fixed(pts)], False, 255, int(thickness), cv2.LINE_AA, shift=_SHIFT)
    return canvas.astype(np.float32) / 255.0


def _modulation(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int], floor: float) -> np.ndarray:
    """Smooth factor in [floor, 1] so a defect's strength varies along it."""
    return floor + (1.0 - floor) * np.clip(0.5 + 0.4 * lowfreq_noise(rng, shape, cells), 0.0, 1.0)


def _thickness(rng: np.random.Generator, s: float) -> int:
    return max(1, int(round(s * float(rng.choice([1.0, 1.0, 1.5, 2.0])))))


def _signed(rng: np.random.Generator, lo: float, hi: float, p_bright: float) -> float:
    sign = 1.0 if rng.random() < p_bright else -1.0
    return sign * float(rng.uniform(lo, hi))


class _Paint:
    """Accumulates additive defect layers and their masks for one image."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.delta = np.zeros(image.shape, np.float32)
        self.mask = np.zeros(image.shape, bool)

    def add(self, profile: np.ndarray, contrast: float | np.ndarray, threshold: float = _THRESHOLD) -> None:
        inside = profile > threshold
        self.delta += np.where(inside, profile * contrast, 0.0).astype(np.float32)
        self.mask |= inside

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.image + np.where(self.mask, self.delta, 0.0)).astype(np.float32), self.mask


def _blob(
    rng: np.random.Generator,
    shape: tuple[int, int],
    center: np.ndarray,
    axes: np.ndarray,
    angle: float,
    irregularity: float,
) -> np.ndarray:
    """Irregular blob: smooth noise above a level inside an ellipse-shaped falloff."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - center[0], yy - center[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    r = np.sqrt((u / axes[0]) ** 2 + (v / axes[1]) ** 2)
    feature = max(2.0, 0.5 * float(min(axes)))
    noise = lowfreq_noise(rng, shape, (int(h / feature) + 2, int(w / feature) + 2))
    level = float(rng.uniform(0.0, 0.25))
    return ((1.0 - r + irregularity * noise) > level).astype(np.float32)


# --------------------------------------------------------------------------- anomaly defects


def scratch(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin bright or dark polyline/curve of random length, bend and contrast."""
    h, w = image.shape
    s, size = _scale(image), min(h, w)
    paint = _Paint(image)
    center = rng.uniform(0.2, 0.8, size=2) * (w, h)
    length = float(rng.uniform(0.3, 0.9)) * size
    pts = _curve(rng, center, float(rng.uniform(0, np.pi)), length, float(rng.uniform(0.0, 0.2)))
    profile = _normalise(_blur(_polyline((h, w), pts, _thickness(rng, s)), 0.5 * s))
    profile *= _modulation(rng, (h, w), (3, 3), 0.6)
    paint.add(profile, _signed(rng, 25.0, 80.0, p_bright=0.5))
    return paint.result()


def _pits(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centers: np.ndarray,
    radii: np.ndarray,
    depths: np.ndarray,
    s: float,
) -> np.ndarray:
    """Round pits drawn 4x supersampled (tiny cv2 circles come out as crosses otherwise)."""
    k = 4
    h, w = shape
    canvas = np.zeros((h * k, w * k), np.uint8)
    for (cx, cy), r, d in zip(_fixed(centers * k + (k - 1) / 2), np.round(radii * k * _ONE).astype(int), depths):
        cv2.circle(canvas, (int(cx), int(cy)), max(int(r), _ONE), int(255 * d), -1, cv2.LINE_AA, shift=_SHIFT)
    small = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    return _normalise(_blur(small, 0.4 * s)) * float(depths.max())


def pit(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cluster of small dark spots (3-15 pits around one point)."""
    h, w = image.shape
    s = _scale(image)
    n = int(rng.integers(3, 16))
    center = rng.uniform(0.15, 0.85, size=2) * (w, h)
    centers = center + rng.normal(0.0, float(rng.uniform(2.0, 7.0)) * s, size=(n, 2))
    radii = rng.uniform(0.6, 2.2, size=n) * s
    depths = rng.uniform(0.5, 1.0, size=n)
    paint = _Paint(image)
    paint.add(_pits(rng, (h, w), centers, radii, depths, s), -float(rng.uniform(30.0, 90.0)))
    return paint.result()


def patch(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Irregular blob of different brightness (noise thresholded inside an ellipse)."""
    h, w = image.shape
    s, size = _scale(image), min(h, w)
    paint = _Paint(image)
    for _ in range(20):  # the noise may erase a small blob entirely; draw again
        center = rng.uniform(0.2, 0.8, size=2) * (w, h)
        axes = rng.uniform(0.08, 0.3, size=2) * size
        region = _blob(rng, (h, w), center, axes, float(rng.uniform(0, np.pi)), 0.45)
        if region.sum() >= 4:
            break
    profile = _normalise(_blur(region, 0.8 * s)) * _modulation(rng, (h, w), (6, 6), 0.7)
    paint.add(profile, _signed(rng, 15.0, 50.0, p_bright=0.4))
    return paint.result()


# --------------------------------------------------------------------------- NEU classes


def crazing(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Network of fine dark cracks: warped, partly broken Voronoi cell borders."""
    h, w = image.shape
    s = _scale(image)
    stretch = float(rng.uniform(1.3, 2.8))  # cells elongated along the rolling direction
    cw = max(2, int(np.ceil(w / stretch)))
    n = max(4, int(rng.integers(10, 35) * h * cw / (64 * 64 / 2.0)))
    src = np.full((h, cw), 255, np.uint8)
    src[rng.integers(0, h, size=n), rng.integers(0, cw, size=n)] = 0
    _, labels = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    labels = cv2.resize(labels.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    amp = float(rng.uniform(0.8, 2.5)) * s
    cells = (max(3, h // 10), max(3, w // 10))
    map_x = xx + amp * lowfreq_noise(rng, (h, w), cells)
    map_y = yy + amp * lowfreq_noise(rng, (h, w), cells)
    labels = cv2.remap(labels, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    edges = np.zeros((h, w), bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    edges &= lowfreq_noise(rng, (h, w), (3, 3)) > float(rng.uniform(-1.2, 0.0))  # broken network
    line = edges.astype(np.float32)
    profile = np.clip(np.maximum(line, 1.5 * _blur(line, 0.45 * s)), 0.0, 1.0)
    profile *= _modulation(rng, (h, w), (4, 4), 0.5)
    paint = _Paint(image)
    paint.add(profile, -float(rng.uniform(15.0, 45.0)))
    return paint.result()


def inclusion(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Elongated, broken dark streaks along the rolling direction (sometimes lighter)."""
    h, w = image.shape
    s, size = _scale(image), min(h, w)
    paint = _Paint(image)
    for _ in range(int(rng.integers(1, 5))):
        length = float(rng.uniform(0.15, 0.6)) * size
        center = rng.uniform(0.1, 0.9, size=2) * (w, h)
        pts = _curve(rng, center, float(rng.normal(0.0, 0.12)), length, 0.05)
        line = _polyline((h, w), pts, max(1, int(round(float(rng.uniform(0.8, 3.0)) * s))))
        profile = _normalise(_blur(line, 1.5 * s, 0.5 * s))
        profile *= _modulation(rng, (h, w), (2, max(3, int(w / max(length / 5, 2.0)))), 0.3)
        paint.add(profile, _signed(rng, 25.0, 70.0, p_bright=0.2))
    return paint.result()


def patches(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Large irregular dark or bright blotches with soft borders."""
    h, w = image.shape
    s, size = _scale(image), min(h, w)
    paint = _Paint(image)
    for _ in range(int(rng.integers(1, 4))):
        center = rng.uniform(0.1, 0.9, size=2) * (w, h)
        axes = rng.uniform(0.12, 0.4, size=2) * size
        region = _blob(rng, (h, w), center, axes, float(rng.uniform(0, np.pi)), 0.6)
        profile = _normalise(_blur(region, 1.5 * s)) * _modulation(rng, (h, w), (5, 5), 0.6)
        paint.add(profile, _signed(rng, 15.0, 45.0, p_bright=0.35))
    return paint.result()


def pitted_surface(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Many small pits spread over the surface, partly clustered."""
    h, w = image.shape
    s = _scale(image)
    area = h * w / (64.0 * 64.0)
    n = max(8, int(rng.integers(15, 80) * area))
    centers = rng.uniform(0, 1, size=(n, 2)) * (w, h)
    n_clusters = int(rng.integers(0, 4))
    if n_clusters:
        clustered = rng.random(n) < float(rng.uniform(0.3, 0.8))
        hubs = rng.uniform(0.1, 0.9, size=(n_clusters, 2)) * (w, h)
        spread = float(rng.uniform(3.0, 10.0)) * s
        near = hubs[rng.integers(0, n_clusters, size=n)] + rng.normal(0.0, spread, size=(n, 2))
        centers = np.where(clustered[:, None], near, centers)
    radii = rng.uniform(0.5, 1.6, size=n) * s
    depths = rng.uniform(0.4, 1.0, size=n)
    paint = _Paint(image)
    paint.add(_pits(rng, (h, w), centers, radii, depths, s), -float(rng.uniform(25.0, 70.0)))
    return paint.result()


def rolled_in_scale(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scattered flaky darker scale spots, elongated along the rolling direction."""
    h, w = image.shape
    s = _scale(image)
    n = max(4, int(rng.integers(6, 30) * h * w / (64.0 * 64.0)))
    canvas = np.zeros((h, w), np.uint8)
    centers = _fixed(rng.uniform(0, 1, size=(n, 2)) * (w, h))
    ax = np.round(rng.uniform(1.5, 6.0, size=n) * s * _ONE).astype(int)
    ay = np.round(rng.uniform(0.7, 2.2, size=n) * s * _ONE).astype(int)
    angles = rng.normal(0.0, 8.0, size=n)
    depths = rng.uniform(0.5, 1.0, size=n)
    for (cx, cy), a, b, ang, d in zip(centers, ax, ay, angles, depths):
        center = (int(cx), int(cy))
        cv2.ellipse(canvas, center, (int(a), int(b)), float(ang), 0, 360, int(255 * d), -1, cv2.LINE_AA, _SHIFT)
    flaky = lowfreq_noise(rng, (h, w), (max(3, h // 3), max(3, w // 3))) > float(rng.uniform(-0.8, -0.1))
    profile = _blur(canvas.astype(np.float32) / 255.0 * flaky, 0.6 * s)
    paint = _Paint(image)
    paint.add(profile, -float(rng.uniform(15.0, 45.0)))
    return paint.result()


def scratches(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One to three long thin near-straight lines sharing a dominant direction."""
    h, w = image.shape
    s, size = _scale(image), min(h, w)
    base = float(rng.uniform(0, np.pi))
    paint = _Paint(image)
    for _ in range(int(rng.integers(1, 4))):
        center = rng.uniform(0.15, 0.85, size=2) * (w, h)
        length = float(rng.uniform(0.5, 1.2)) * size
        pts = _curve(rng, center, base + float(rng.normal(0, 0.1)), length, float(rng.uniform(0, 0.03)))
        profile = _normalise(_blur(_polyline((h, w), pts, _thickness(rng, s)), 0.5 * s))
        profile *= _modulation(rng, (h, w), (3, 3), 0.5)
        paint.add(profile, _signed(rng, 20.0, 70.0, p_bright=0.6))
    return paint.result()


ANOMALY_DEFECTS: dict[str, Defect] = {"scratch": scratch, "pit": pit, "patch": patch}
NEU_DEFECTS: dict[str, Defect] = {
    "crazing": crazing,
    "inclusion": inclusion,
    "patches": patches,
    "pitted_surface": pitted_surface,
    "rolled-in_scale": rolled_in_scale,
    "scratches": scratches,
}


# --------------------------------------------------------------------------- strip (segmentation) defects


def fold_mark(image: np.ndarray, rng: np.random.Generator, scene: StripScene) -> tuple[np.ndarray, np.ndarray]:
    """Long curved or diagonal crease across the strip: a thin light/dark ridge pair."""
    h, w = image.shape
    s = h / 64.0
    strip_rows = np.flatnonzero(scene.strip.any(axis=1))
    y_lo, y_hi = float(strip_rows[0]), float(strip_rows[-1])
    if rng.random() < 0.6:  # crossing the strip from edge to edge, diagonal
        x0 = float(rng.uniform(0.1, 0.9)) * w
        p0 = np.array([x0, y_lo - 3 * s])
        p2 = np.array([x0 + float(rng.uniform(-0.6, 0.6)) * w, y_hi + 3 * s])
    else:  # long shallow crease along the strip
        margin = min(3 * s, (y_hi - y_lo) / 4)
        p0 = np.array([-3.0 * s, float(rng.uniform(y_lo + margin, y_hi - margin))])
        p2 = np.array([w + 3.0 * s, float(rng.uniform(y_lo + margin, y_hi - margin))])
    chord = p2 - p0
    normal = np.array([-chord[1], chord[0]]) / max(float(np.hypot(*chord)), 1e-6)
    p1 = (p0 + p2) / 2 + normal * float(rng.uniform(-0.2, 0.2)) * float(np.hypot(*chord))
    t = np.linspace(0.0, 1.0, 64)[:, None]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
    tangent = 2 * (1 - t) * (p1 - p0) + 2 * t * (p2 - p1)
    speed = np.maximum(np.hypot(tangent[:, 0], tangent[:, 1]), 1e-6)[:, None]
    normals = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / speed
    offset = float(rng.uniform(0.7, 1.6)) * s
    thick = max(1, int(round(s)))
    light = _blur(_polyline((h, w), curve + offset * normals, thick), 0.5 * s)
    dark = _blur(_polyline((h, w), curve - offset * normals, thick), 0.5 * s)
    band = _polyline((h, w), curve, int(np.ceil(2 * offset)) + thick + 1) > 0.3
    mask = band & scene.strip
    ridge = float(rng.uniform(22.0, 50.0)) * (light - dark) / max(float(light.max()), 1e-6)
    ridge += _signed(rng, 3.0, 8.0, p_bright=0.3)  # the crease is a little lighter/darker overall
    delta = np.where(mask, ridge * _modulation(rng, (h, w), (3, 4), 0.7), 0.0)
    return (image + delta).astype(np.float32), mask


def edge_crack(image: np.ndarray, rng: np.random.Generator, scene: StripScene) -> tuple[np.ndarray, np.ndarray]:
    """One to three small wedge (V) shaped dark cracks from a strip edge inward.

    Returns an empty mask when no strip edge is in view.
    """
    h, w = image.shape
    s = h / 64.0
    edges = [e for e, visible in (("top", scene.top_visible), ("bottom", scene.bottom_visible)) if visible]
    mask = np.zeros((h, w), bool)
    if not edges:
        return image, mask
    delta = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        which = edges[int(rng.integers(0, len(edges)))]
        x = float(rng.uniform(0.05, 0.95)) * w
        col = int(np.clip(x, 0, w - 1))
        edge_y = float(scene.top[col] if which == "top" else scene.bottom[col])
        inward = 1.0 if which == "top" else -1.0
        strip_h = float(min(scene.bottom[col], h) - max(scene.top[col], 0))
        depth = float(rng.uniform(3.0 * s, max(4.0 * s, 0.35 * strip_h)))
        half = float(rng.uniform(1.0, 3.5)) * s
        lean = float(rng.normal(0.0, 0.35))
        apex = np.array([x + depth * np.tan(lean), edge_y + inward * depth])
        k = 4
        frac = np.linspace(0.0, 1.0, k + 1)[1:-1, None]
        left0 = np.array([x - half, edge_y - inward * 1.5 * s])
        right0 = np.array([x + half, edge_y - inward * 1.5 * s])
        jitter = rng.normal(0.0, 0.5 * s, size=(2, k - 1, 1)) * np.array([1.0, 0.0])
        left = left0 + frac * (apex - left0) + jitter[0]
        right = right0 + frac * (apex - right0) + jitter[1]
        polygon = np.concatenate([left0[None], left, apex[None], right[::-1], right0[None]])
        canvas = np.zeros((h, w), np.uint8)
        cv2.fillPoly(canvas, [_fixed(polygon)], 255, cv2.LINE_AA, shift=_SHIFT)
        cover = canvas.astype(np.float32) / 255.0
        inside = (cover >= 0.5) & scene.strip
        delta = np.where(inside, np.minimum(delta, -float(rng.uniform(40.0, 100.0)) * cover), delta)
        mask |= inside
    return (image + delta).astype(np.float32), mask
