"""Anomaly simulation and square padding for ARCD stage-1 (reconstruction) training.

Follows Zhang Xunfei, "Research on steel defect detection based on semantic segmentation"
(Zhejiang University master's thesis, 2023), section 3.3.1 and eq. 3-1, which adapt DRAEM
(Zavrtanik et al., ICCV 2021):

* a Perlin noise field (anomalib's :func:`generate_perlin_noise`) thresholded at a level drawn
  uniformly from ``threshold_range`` gives the binary mask ``P``;
* a texture ``A`` (a random image from ``texture_dir``, or a procedurally generated texture when
  no folder is given; the thesis does not name its texture source, DRAEM uses DTD) is changed
  by three distinct random augmentations among rotation, affine, brightness, sharpness,
  equalize, contrast and saturation (torchvision ``transforms.v2``);
* the simulated image is ``I_c = I_r * (1 - P) + beta * (I_r * P) + (1 - beta) * (A * P)``
  with ``beta`` uniform in ``beta_range``;
* the composite and the mask are cropped back to the real image area (``I_A``, ``P_A``): when
  :class:`PadSquareResize` padded the image to a square, no anomaly is placed in the padding
  (``crop_to_image``, on by default).

anomalib's ``PerlinAnomalyGenerator`` is not used as a whole because it thresholds at a fixed
0.5, weights the texture by ``beta`` (the thesis weights the image) and uses a different set of
augmentations; its noise function is reused.

Wide strip images (1440x2560 in the thesis) are first padded to a square and then resized
(:class:`PadSquareResize`), so small defects keep their aspect ratio. :class:`PadSquareResize`
records the real area as a label map, ``results['img_valid_mask']`` (1 on the image, 0 in the
padding), listed in ``seg_fields`` so that flips and other geometric transforms move it with the
image; :class:`SimulateAnomaly` reads it.

All randomness comes from torch's global generator (seeded by mmengine's ``randomness``
settings and per data-loader worker); with ``deterministic=True`` each image gets its own
generator state derived from its path, which makes validation sets reproducible.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from anomalib.data.utils.generators.perlin import generate_perlin_noise
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from torchvision.transforms import v2

# the pure geometry is shared with the runtime, which must not import mmseg (re-exported here)
from defect_plugins.imaging.files import IMAGE_SUFFIXES, list_images
from defect_plugins.imaging.geometry import pad_square_resize


def _check_field_shape(results: dict, key: str, image_hw: tuple[int, int]) -> None:
    """Raise a clear error when a label map does not have the image's height and width."""
    field = results[key]
    if field.shape[:2] != tuple(image_hw):
        source = results.get("region_path") if key == "gt_region_map" else results.get("seg_map_path")
        raise ValueError(
            f"{key} from {source!r} has size {tuple(field.shape[:2])} but its image "
            f"{results.get('img_path')!r} has size {tuple(image_hw)}: masks must match their image (H, W)"
        )


@TRANSFORMS.register_module()
class PadSquareResize(BaseTransform):
    """Pad to a square at the bottom/right, then resize to ``scale`` x ``scale``.

    Label maps in ``seg_fields`` (and ``gt_region_map``) are padded with ``seg_pad_val`` and
    resized with nearest-neighbour interpolation. ``img_padding_size`` is set, in output pixels
    and in mmseg's ``(left, right, top, bottom)`` order, so that ``postprocess_result`` of any
    mmseg segmentor crops the padding before resizing predictions back to ``ori_shape``.
    Put ``LoadAnnotations`` *after* this transform in test pipelines to evaluate at the
    original resolution, as mmseg's own configs do with ``Resize``.

    With ``valid_mask`` (default), the real image area is written to
    ``results['img_valid_mask']`` (uint8, 1 on the image, 0 in the padding, resized with
    nearest-neighbour interpolation) and added to ``seg_fields``, so that mmseg's flips and crops
    keep it aligned; :class:`SimulateAnomaly` reads it (thesis eq. 3-1: the anomaly is cropped to
    the real image area).
    """

    def __init__(self, scale: int = 256, pad_val: int = 0, seg_pad_val: int = 255, valid_mask: bool = True) -> None:
        if int(scale) <= 0:
            raise ValueError(f"PadSquareResize: scale must be a positive int, got {scale!r}")
        self.scale = int(scale)
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val
        self.valid_mask = valid_mask

    def transform(self, results: dict) -> dict:
        img = results["img"]
        h, w = img.shape[:2]
        for key in results.get("seg_fields", []):
            _check_field_shape(results, key, (h, w))
        results["img"], (pad_b, pad_r) = pad_square_resize(img, self.scale, self.pad_val)
        for key in results.get("seg_fields", []):
            results[key], _ = pad_square_resize(results[key], self.scale, self.seg_pad_val, cv2.INTER_NEAREST)
        if self.valid_mask:
            results["img_valid_mask"], _ = pad_square_resize(np.ones((h, w), np.uint8), self.scale, 0,
                                                             cv2.INTER_NEAREST)
            fields = results.setdefault("seg_fields", [])
            if "img_valid_mask" not in fields:
                fields.append("img_valid_mask")
        factor = self.scale / max(h, w)
        results["img_shape"] = (self.scale, self.scale)
        results["pad_shape"] = (self.scale, self.scale)
        results["scale_factor"] = (factor, factor)
        results["img_padding_size"] = [0, int(round(pad_r * factor)), 0, int(round(pad_b * factor))]
        return results

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(scale={self.scale}, pad_val={self.pad_val}, "
                f"seg_pad_val={self.seg_pad_val}, valid_mask={self.valid_mask})")


def procedural_texture(height: int, width: int) -> torch.Tensor:
    """A random uint8 (3, H, W) texture: two-colour Perlin field plus oriented stripes and grain.

    Stands in for a texture data set (DRAEM uses DTD; the thesis does not name one) when no
    ``texture_dir`` is given.
    """
    scale = (2 ** int(torch.randint(0, 5, (1,))), 2 ** int(torch.randint(0, 5, (1,))))
    field = generate_perlin_noise(height, width, scale=scale, device=torch.device("cpu"))
    field = (field - field.min()) / (field.max() - field.min()).clamp_min(1e-6)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    angle = torch.rand(1) * torch.pi
    period = 3.0 + 20.0 * torch.rand(1)
    stripes = 0.5 + 0.5 * torch.sin((xx * torch.cos(angle) + yy * torch.sin(angle)) * 2 * torch.pi / period)
    mix = torch.rand(1)
    pattern = (mix * field + (1 - mix) * stripes + 0.1 * torch.randn(height, width)).clamp(0, 1)
    low, high = torch.rand(3, 1, 1) * 255, torch.rand(3, 1, 1) * 255
    return (low + (high - low) * pattern).round().clamp(0, 255).to(torch.uint8)


def texture_augmentations(num: int = 3) -> v2.Compose:
    """``num`` distinct random augmentations among the thesis' seven, in random order."""
    choices = [
        v2.RandomRotation(degrees=(-90, 90)),
        v2.RandomAffine(degrees=(-45, 45), translate=(0.1, 0.1), scale=(0.8, 1.2), shear=(-15, 15)),
        v2.ColorJitter(brightness=(0.6, 1.4)),
        v2.RandomAdjustSharpness(sharpness_factor=2.0, p=1.0),
        v2.RandomEqualize(p=1.0),
        v2.ColorJitter(contrast=(0.5, 2.0)),
        v2.ColorJitter(saturation=(0.5, 1.5)),
    ]
    order = torch.randperm(len(choices))[:num].tolist()
    return v2.Compose([choices[i] for i in order])


@TRANSFORMS.register_module()
class SimulateAnomaly(BaseTransform):
    """Paste a Perlin-shaped texture into ``results['img']`` (thesis section 3.3.1, eq. 3-1, after DRAEM).

    Keeps the clean image in ``results['clean_img']`` (the stage-1 target) and the mask in
    ``results['gt_anomaly_mask']`` (uint8, 1 inside ``P``).

    Args:
        texture_dir: folder searched recursively for texture images (e.g. DTD, as in DRAEM; the
            thesis does not name its source). ``None`` uses :func:`procedural_texture`.
        probability: chance that an image gets an anomaly at all (DRAEM uses 1, anomalib 0.5).
        threshold_range: the min-max-normalised Perlin field is thresholded at a level uniform
            in this range; higher levels give smaller anomalies.
        beta_range: ``beta`` (the weight of the original image inside the mask) is uniform here.
        perlin_scale_range: exponents ``(lo, hi)``: the noise grid is ``2**U{lo..hi-1}`` per axis.
        num_augmentations: distinct texture augmentations applied (3 in the thesis).
        deterministic: derive the random state from the image path (for validation sets).
        seed: mixed into the per-image state when ``deterministic``.
        crop_to_image: keep the anomaly inside the real image area (eq. 3-1's ``I_A``, ``P_A``):
            the mask is cut to ``results['img_valid_mask']`` (written by
            :class:`PadSquareResize`), so the padding stays untouched. ``False`` also fills the
            padding (this project's behaviour before; the README demo's stage-1 config was tuned
            with it). Without ``img_valid_mask`` the whole image is real and both give the same result.
    """

    def __init__(self, texture_dir: str | None = None, probability: float = 1.0,
                 threshold_range: Sequence[float] = (0.5, 0.8), beta_range: Sequence[float] = (0.0, 0.8),
                 perlin_scale_range: Sequence[int] = (0, 6), num_augmentations: int = 3,
                 deterministic: bool = False, seed: int = 0, crop_to_image: bool = True) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"SimulateAnomaly: probability must be in [0, 1], got {probability}")
        for name, rng in (("threshold_range", threshold_range), ("beta_range", beta_range)):
            if len(rng) != 2 or not 0.0 <= rng[0] <= rng[1] <= 1.0:
                raise ValueError(f"SimulateAnomaly: {name} must be (lo, hi) with 0 <= lo <= hi <= 1, got {rng}")
        if not 1 <= num_augmentations <= 7:
            raise ValueError(f"SimulateAnomaly: num_augmentations must be in 1..7, got {num_augmentations}")
        self.texture_dir = texture_dir
        self.textures: list[Path] = []
        if texture_dir is not None:
            folder = Path(texture_dir)
            if not folder.is_dir():
                raise FileNotFoundError(f"SimulateAnomaly: texture_dir {texture_dir!r} is not a folder")
            self.textures = list_images(folder)
            if not self.textures:
                raise FileNotFoundError(f"SimulateAnomaly: no images ({', '.join(IMAGE_SUFFIXES)}) "
                                        f"under texture_dir {texture_dir!r}")
        self.probability = probability
        self.threshold_range = tuple(threshold_range)
        self.beta_range = tuple(beta_range)
        self.perlin_scale_range = tuple(perlin_scale_range)
        self.num_augmentations = num_augmentations
        self.deterministic = deterministic
        self.seed = seed
        self.crop_to_image = crop_to_image

    def _uniform(self, lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand(1))

    def perlin_mask(self, height: int, width: int, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Binary float mask (H, W) from a thresholded Perlin field; never empty.

        ``valid`` (bool, H x W): the mask is cut to it (the real image area, eq. 3-1's ``P_A``).
        """
        if valid is not None and not bool(valid.any()):
            raise ValueError("SimulateAnomaly: the real image area (img_valid_mask) is empty")
        lo, hi = self.perlin_scale_range
        for _ in range(10):
            scale = (2 ** int(torch.randint(lo, hi, (1,))), 2 ** int(torch.randint(lo, hi, (1,))))
            noise = generate_perlin_noise(height, width, scale=scale, device=torch.device("cpu"))
            noise = (noise - noise.min()) / (noise.max() - noise.min()).clamp_min(1e-6)
            mask = (noise > self._uniform(*self.threshold_range)).float()
            if valid is not None:
                mask = mask * valid
            if mask.any():
                return mask
        if valid is not None:
            noise = noise.masked_fill(~valid, float("-inf"))
        return (noise >= noise.max()).float()

    def texture(self, height: int, width: int) -> torch.Tensor:
        """Augmented uint8 texture (3, H, W), BGR like the images mmcv loads."""
        if self.textures:
            path = self.textures[int(torch.randint(len(self.textures), (1,)))]
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"SimulateAnomaly: cannot read texture image {path}")
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            tex = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        else:
            tex = procedural_texture(height, width)
        return texture_augmentations(self.num_augmentations)(tex)

    def simulate(self, image: np.ndarray, valid: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Return ``(I_c uint8, P uint8 (H, W), A uint8 (H, W, C), beta)`` for ``image`` (H, W, C).

        ``valid`` (bool, H x W): the real image area; ``P`` stays inside it, so ``I_c`` equals
        ``image`` outside it (eq. 3-1's crop to ``I_A``, ``P_A``).
        """
        h, w = image.shape[:2]
        channels = image.shape[2] if image.ndim == 3 else 1
        if valid is not None and tuple(valid.shape) != (h, w):
            raise ValueError(f"SimulateAnomaly: img_valid_mask has size {tuple(valid.shape)}, image {(h, w)}")
        if torch.rand(1) >= self.probability:
            return image.copy(), np.zeros((h, w), np.uint8), np.zeros_like(image), 1.0
        mask = self.perlin_mask(h, w, None if valid is None else torch.from_numpy(np.ascontiguousarray(valid)))
        tex = self.texture(h, w).permute(1, 2, 0).numpy()
        if channels == 1:
            tex = (cv2.cvtColor(tex, cv2.COLOR_BGR2GRAY)[..., None] if image.ndim == 3
                   else cv2.cvtColor(tex, cv2.COLOR_BGR2GRAY))
        beta = self._uniform(*self.beta_range)
        m = mask.numpy()[..., None] if image.ndim == 3 else mask.numpy()
        i_r = image.astype(np.float32)
        i_c = i_r * (1 - m) + beta * (i_r * m) + (1 - beta) * (tex.astype(np.float32) * m)
        return np.clip(np.rint(i_c), 0, 255).astype(np.uint8), mask.numpy().astype(np.uint8), tex, beta

    def _path_seed(self, results: dict) -> int:
        key = f"{self.seed}:{results.get('img_path', '')}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & 0x7FFFFFFFFFFFFFFF

    def transform(self, results: dict) -> dict:
        image = results["img"]
        if image.dtype != np.uint8:
            raise TypeError(f"SimulateAnomaly expects a uint8 image, got {image.dtype} "
                            f"from {results.get('img_path')!r}")
        valid = None
        if self.crop_to_image and results.get("img_valid_mask") is not None:
            valid = results["img_valid_mask"] == 1  # mmseg's Pad fills label maps with 255: not real
            if valid.shape != image.shape[:2]:
                raise ValueError(f"SimulateAnomaly: img_valid_mask has size {valid.shape} but the image "
                                 f"{results.get('img_path')!r} has size {image.shape[:2]}")
            if valid.all():
                valid = None
        if self.deterministic:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._path_seed(results))
                out, mask, _, _ = self.simulate(image, valid)
        else:
            out, mask, _, _ = self.simulate(image, valid)
        results["clean_img"] = image
        results["img"] = out
        results["gt_anomaly_mask"] = mask
        return results

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(texture_dir={self.texture_dir!r}, probability={self.probability}, "
                f"threshold_range={self.threshold_range}, beta_range={self.beta_range}, "
                f"deterministic={self.deterministic}, crop_to_image={self.crop_to_image})")
