"""Bring a user's images to the training size once, into a work folder, in the layout a runner reads.

Training reads these copies; evaluation and the line read the user's original files through the
exported IR, which resizes them the same way (:func:`defect_plugins.imaging.geometry.to_input`). So
the resize mode chosen here is also the one recorded in the IR's metadata:

* ``letterbox`` (default): pad at the bottom/right to a square, then resize
  (:func:`~defect_plugins.imaging.geometry.pad_square_resize`, metadata ``resize: pad_square``): a long
  strip keeps its proportions and a thin defect stays thin;
* ``stretch``: ``cv2.resize`` to the square (metadata ``resize: stretch``): fills the input with the part,
  distorting images that are not square.

Masks are read as mmseg reads them (:func:`.layouts.read_mask`) and resized with nearest-neighbour
interpolation, so class values stay exact. Images are written
as PNG under their index in the sorted list (``000012.png``) with the mask under the same name, which is
how anomalib's ``MVTecAD`` / ``Folder`` pair them (sorted order) and how mmsegmentation does (same stem).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from defect_plugins.fileio import atomic_write_bytes
from defect_plugins.imaging.files import read_bgr
from defect_plugins.imaging.geometry import pad_square_resize

from .layouts import LayoutError, read_mask

RESIZE_CHOICES = {"letterbox": "pad_square", "stretch": "stretch"}  # command-line name -> ModelMetadata.resize


def metadata_resize(resize: str) -> str:
    """The ``ModelMetadata.resize`` value of a command-line ``--resize`` choice."""
    if resize not in RESIZE_CHOICES:
        raise ValueError(f"--resize must be one of {sorted(RESIZE_CHOICES)}, got {resize!r}")
    return RESIZE_CHOICES[resize]


def fit_to_square(image: np.ndarray, size: int, resize: str, *, nearest: bool = False,
                  pad_value: int = 0) -> np.ndarray:
    """``image`` (H, W[, C]) at ``size`` x ``size`` by ``resize`` (``letterbox`` or ``stretch``)."""
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if metadata_resize(resize) == "pad_square":
        return pad_square_resize(image, size, pad_val=pad_value, interpolation=interpolation)[0]
    return cv2.resize(image, (size, size), interpolation=interpolation)


def scale_of(shape: Sequence[int], size: int, resize: str) -> tuple[float, float]:
    """How many model pixels one image pixel becomes (vertical, horizontal) at ``size`` by ``resize``."""
    height, width = int(shape[0]), int(shape[1])
    if metadata_resize(resize) == "pad_square":
        factor = size / max(height, width)
        return factor, factor
    return size / height, size / width


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise OSError("PNG encoding failed")
    return data.tobytes()


@dataclass(frozen=True)
class StagedImage:
    source: Path
    staged: Path
    mask: Path | None
    height: int  # of the source image
    width: int


def stage_images(images: Sequence[Path], folder: Path, size: int, resize: str, *,
                 masks: Mapping[Path, Path] | None = None, mask_folder: Path | None = None,
                 mask_suffix: str = "", binary_masks: bool = False, mask_pad: int = 0) -> list[StagedImage]:
    """Write each of ``images`` at ``size`` into ``folder`` (and its mask into ``mask_folder``); skip existing ones.

    A copy already on disk is kept (a resumed fit stages nothing twice; each file is written atomically,
    so a copy on disk is complete). ``binary_masks`` writes 255 for every non-zero mask pixel (anomaly masks);
    ``mask_pad`` fills a letterbox's padding in masks (255: mmseg's ignore index, so padding is never a class).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if mask_folder is not None:
        mask_folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for index, source in enumerate(images):
        target = folder / f"{index:06d}.png"
        image = read_bgr(source)
        if not target.is_file():
            atomic_write_bytes(target, _png(fit_to_square(image, size, resize)), fsync=False)
        mask_target = None
        if masks is not None and source in masks and mask_folder is not None:
            mask_target = mask_folder / f"{index:06d}{mask_suffix}.png"
            if not mask_target.is_file():
                mask = read_mask(masks[source])
                if mask.shape != image.shape[:2]:
                    raise LayoutError(f"{masks[source]}: mask is {mask.shape[1]} x {mask.shape[0]} px but its image "
                                  f"{source} is {image.shape[1]} x {image.shape[0]} px")
                mask = np.where(mask > 0, 255, 0) if binary_masks else mask
                square = fit_to_square(mask.astype(np.uint8), size, resize, nearest=True, pad_value=mask_pad)
                atomic_write_bytes(mask_target, _png(square), fsync=False)
        staged.append(StagedImage(source, target, mask_target, image.shape[0], image.shape[1]))
    return staged


def smallest_defect(masks: Mapping[Path, Path], images: Sequence[Path], size: int, resize: str) -> dict | None:
    """The smallest labelled defect at the model's size: its extent in model pixels and where it is.

    Measured per connected region of each mask (8-connectivity) as the shorter side of its bounding
    box after resizing; a defect thinner than a few model pixels is hard for any network at that size.
    ``None`` when there are no masks.
    """
    best: dict | None = None
    for image in images:
        if image not in masks:
            continue
        mask = read_mask(masks[image]) > 0
        if not mask.any():
            continue
        sy, sx = scale_of(mask.shape, size, resize)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        for row in stats[1:count]:
            width, height = row[cv2.CC_STAT_WIDTH] * sx, row[cv2.CC_STAT_HEIGHT] * sy
            extent = float(min(width, height))
            if best is None or extent < best["model_pixels"]:
                best = {"model_pixels": round(extent, 2), "image": str(image),
                        "source_pixels": int(min(row[cv2.CC_STAT_WIDTH], row[cv2.CC_STAT_HEIGHT]))}
    return best
