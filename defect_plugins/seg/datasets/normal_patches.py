"""Defect-free patches cut from labelled images: genuine normal images for ARCD stage 1 on NEU-Seg.

ARCD's stage 1 learns to reconstruct *normal* surfaces (thesis, section 3.3.1). NEU-Seg has no
defect-free images, so until now stage 1 trained on whole defective images. Every NEU-Seg image,
however, has large areas whose mask is background: this cuts square windows out of the training
split's images wherever the mask (grown by ``margin`` pixels, because hand-drawn mask borders miss
the defect's faint edges) holds background only.

* Only the given split (``train`` by default) is read, so no stage-2 evaluation image (NEU-Seg
  ``val`` / ``test``) contributes a pixel.
* The patches of one source image all go to the same output folder: ``OUT/train`` or ``OUT/val``
  (``val_fraction`` of the source images, seeded). Neighbouring patches overlap in content, so a
  split by patch would put near-copies of the held-out patches into training.
* ``OUT/patches.json`` lists the settings, the counts and each patch's source image and window.
* All or nothing: the folder is written next to ``OUT`` and renamed into place at the end
  (:func:`defect_plugins.data.atomic.atomic_output_dir`); ``OUT`` must be new or empty.

    defect-seg-normal-patches ../shared/data/neu_seg --out work_dirs/seg/neu_normal64 --size 64

The folders are read by ``NormalImageDataset(split='all')`` (``configs/arcd/*normal_patches*``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from defect_plugins.data.atomic import DataGenerationError, atomic_output_dir, check_output_dir
from defect_plugins.imaging.files import IMAGE_SUFFIXES


def _pairs(data_root: Path, split: str, img_dir: str, ann_dir: str) -> list[tuple[Path, Path]]:
    images_dir, masks_dir = data_root / img_dir / split, data_root / ann_dir / split
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DataGenerationError(f"{folder}: not a folder (expected the mmseg layout "
                                      f"{img_dir}/{split} and {ann_dir}/{split} under {data_root})")
    pairs = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        mask = masks_dir / f"{image.stem}.png"
        if not mask.is_file():
            raise DataGenerationError(f"{image}: no mask {mask}")
        pairs.append((image, mask))
    if not pairs:
        raise DataGenerationError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return pairs


def background_windows(mask: np.ndarray, size: int, stride: int, margin: int,
                       background: int = 0) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the ``size`` windows (step ``stride``) whose grown mask is background."""
    foreground = (mask != background).astype(np.uint8)
    if margin > 0:
        foreground = cv2.dilate(foreground, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    # integral image: the count of foreground pixels in any window in O(1)
    integral = cv2.integral(foreground)
    height, width = mask.shape[:2]
    corners = []
    for y in range(0, height - size + 1, stride):
        for x in range(0, width - size + 1, stride):
            count = integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x] + integral[y, x]
            if count == 0:
                corners.append((y, x))
    return corners


def cut_normal_patches(data_root: str | os.PathLike, out: str | os.PathLike, *, split: str = "train", size: int = 64,
                       stride: int | None = None, margin: int = 4, val_fraction: float = 0.1, seed: int = 0,
                       img_dir: str = "img_dir", ann_dir: str = "ann_dir", background: int = 0) -> dict:
    """Write the background-only patches of ``data_root``'s ``split`` to ``out/{train,val}``; return the manifest."""
    stride = size if stride is None else stride
    for name, value in (("size", size), ("stride", stride)):
        if value < 1:
            raise DataGenerationError(f"{name}: must be >= 1, got {value}")
    if margin < 0:
        raise DataGenerationError(f"margin: must be >= 0, got {margin}")
    if not 0.0 <= val_fraction < 1.0:
        raise DataGenerationError(f"val_fraction: must be in [0, 1), got {val_fraction}")
    data_root = Path(data_root)
    check_output_dir(out)
    pairs = _pairs(data_root, split, img_dir, ann_dir)
    order = np.random.default_rng(seed).permutation(len(pairs))
    held = set(order[:int(round(val_fraction * len(pairs)))].tolist())
    records: dict[str, list[dict]] = {"train": [], "val": []}
    too_small = 0
    with atomic_output_dir(out) as tmp:
        for part in records:
            (tmp / part).mkdir()
        for index, (image_path, mask_path) in enumerate(pairs):
            image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
            if image is None or mask is None:
                raise DataGenerationError(f"{image_path if image is None else mask_path}: unreadable image")
            if mask.ndim != 2 or mask.shape != image.shape[:2]:
                raise DataGenerationError(f"{mask_path}: mask of shape {mask.shape} for an image of shape "
                                          f"{image.shape[:2]} (expected one label channel of the same size)")
            if min(mask.shape) < size:
                too_small += 1
                continue
            part = "val" if index in held else "train"
            for y, x in background_windows(mask, size, stride, margin, background):
                name = f"{image_path.stem}_y{y:04d}_x{x:04d}.png"
                if not cv2.imwrite(str(tmp / part / name), image[y:y + size, x:x + size]):
                    raise DataGenerationError(f"{tmp / part / name}: cv2.imwrite failed")
                records[part].append({"patch": f"{part}/{name}", "source": str(image_path.relative_to(data_root)),
                                      "y": y, "x": x})
        if not records["train"]:
            raise DataGenerationError(f"{data_root}: no {size}x{size} window of '{split}' is background only "
                                      f"(margin {margin}); try a smaller --size or --margin")
        manifest = {"data_root": str(data_root.resolve()), "split": split, "size": size, "stride": stride,
                    "margin": margin, "val_fraction": val_fraction, "seed": seed, "source_images": len(pairs),
                    "source_images_too_small": too_small,
                    "source_images_with_patches": len({r["source"] for part in records.values() for r in part}),
                    "patches": {part: len(items) for part, items in records.items()}, "records": records}
        (tmp / "patches.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def preview_grid(out: str | os.PathLike, path: str | os.PathLike, *, count: int = 48, columns: int = 12,
                 seed: int = 0) -> Path:
    """A grid of ``count`` random training patches of ``out`` written to ``path``: check them by eye."""
    from defect_plugins.fileio import atomic_path

    patches = sorted((Path(out) / "train").glob("*.png"))
    if not patches:
        raise DataGenerationError(f"{out}/train: no patches to preview")
    chosen = [patches[i] for i in np.random.default_rng(seed).permutation(len(patches))[:count]]
    tiles = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in chosen]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    grid = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    if Path(path).suffix.lower() != ".png":
        raise DataGenerationError(f"--preview {path}: expected a .png path")
    with atomic_path(path) as tmp:  # the temporary sibling keeps the .png suffix cv2 needs
        if not cv2.imwrite(str(tmp), grid):
            raise DataGenerationError(f"{path}: cv2.imwrite failed")
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="defect-seg-normal-patches", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_root", type=Path, help="mmseg layout: img_dir/<split>, ann_dir/<split> (NEU-Seg)")
    parser.add_argument("--out", type=Path, required=True, help="new or empty folder")
    parser.add_argument("--split", default="train", help="the split to cut from (never an evaluation split)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--stride", type=int, help="window step (default: --size, no overlap)")
    parser.add_argument("--margin", type=int, default=4, help="pixels the defect mask is grown by first")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="source images whose patches go to val/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preview", type=Path, help="also write a grid of 48 random training patches (PNG)")
    args = parser.parse_args(argv)
    try:
        manifest = cut_normal_patches(args.data_root, args.out, split=args.split, size=args.size, stride=args.stride,
                                      margin=args.margin, val_fraction=args.val_fraction, seed=args.seed)
        if args.preview is not None:
            preview_grid(args.out, args.preview, seed=args.seed)
    except DataGenerationError as error:
        print(f"defect-seg-normal-patches: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}: {manifest['patches']['train']} training and {manifest['patches']['val']} held-out "
          f"{args.size}x{args.size} patches from {manifest['source_images_with_patches']} of "
          f"{manifest['source_images']} '{args.split}' images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
