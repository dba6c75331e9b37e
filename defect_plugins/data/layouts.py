"""Writers for the three on-disk layouts that upstream loaders read.

* MVTec AD (anomalib ``MVTecAD`` / ``Folder``): ``train/good``, ``test/good``,
  ``test/<defect>``, ``ground_truth/<defect>/<stem>_mask.png``;
* one folder per class (mmpretrain ``CustomDataset``), NEU-CLS classes;
* mmsegmentation ``img_dir``/``ann_dir`` pairs, plus ``region_dir`` (where the
  machine bed is visible) and ``normal_dir`` (defect-free strips).

Each image gets its own generator seeded from (seed, layout/split, index)
through :class:`numpy.random.SeedSequence`, so files are byte-identical for the
same arguments, independent of generation order and of global RNG state.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from .atomic import DataGenerationError, atomic_output_dir, check_output_dir
from .defects import (
    ANOMALY_DEFECT_TYPES,
    ANOMALY_DEFECTS,
    NEU_CLASSES,
    NEU_DEFECTS,
    SEG_CLASSES,
    edge_crack,
    fold_mark,
)
from .steel import add_sensor_noise, steel_surface, strip_scene, to_uint8

__all__ = ["GENERATOR_VERSION", "make_anomaly_dataset", "make_classification_dataset", "make_segmentation_dataset"]

GENERATOR_VERSION = "1.0.0"  # bump whenever the pixels produced for a seed change
MIN_SIZE, MAX_SIZE = 32, 4096
_MAX_TRIES = 50

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- validation


def _count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataGenerationError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise DataGenerationError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def _side(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataGenerationError(f"{name}: expected an integer number of pixels, got {value!r}")
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise DataGenerationError(f"{name}: expected {MIN_SIZE}..{MAX_SIZE} pixels, got {value}")
    return int(value)


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DataGenerationError(f"seed: expected a non-negative integer, got {value!r}")
    return int(value)


def _hw(value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        side = _side("image_size", value)
        return side, side
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise DataGenerationError(f"image_size: expected (height, width) integers, got {value!r}")
    return _side("image_size height", value[0]), _side("image_size width", value[1])


def _defect_types(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or not value:
        raise DataGenerationError(
            f"defect_types: expected a non-empty list of names from {ANOMALY_DEFECT_TYPES}, got {value!r}"
        )
    for name in value:
        if name not in ANOMALY_DEFECT_TYPES:
            raise DataGenerationError(
                f"defect_types: unknown defect type {name!r}; expected one of {ANOMALY_DEFECT_TYPES}"
            )
    if len(set(value)) != len(value):
        raise DataGenerationError(f"defect_types: duplicate names in {tuple(value)!r}")
    return tuple(value)


# --------------------------------------------------------------------------- helpers


def _rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """Independent generator per image: same (seed, stream, index) -> same pixels."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(stream.encode("utf-8")), index]))


def _save_rgb(path: Path, gray: np.ndarray) -> None:
    """Gray-looking image stored as 3-channel RGB, which anomalib/mm* loaders expect."""
    Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2)).save(path, format="PNG")


def _save_l(path: Path, array: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path, format="PNG")


def _stem(index: int, total: int) -> str:
    return f"{index:0{max(3, len(str(total - 1)))}d}"


def _clean(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return add_sensor_noise(rng, steel_surface(rng, shape))


def _defective(
    defect: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 image with one defect and the mask of the pixels it actually changed."""
    clean = _clean(rng, shape)
    clean_u8 = to_uint8(clean)
    for _ in range(_MAX_TRIES):
        image, mask = defect(clean, rng)
        image_u8 = to_uint8(image)
        mask = mask & (image_u8 != clean_u8)
        if int(mask.sum()) >= 3:
            return image_u8, mask
    raise RuntimeError(f"could not place a visible {defect.__name__} defect after {_MAX_TRIES} tries")


def _write_meta(
    folder: Path,
    generator: str,
    seed: int,
    arguments: dict[str, Any],
    classes: Sequence[str],
    counts: dict[str, Any],
    **extra: Any,
) -> None:
    """meta.json: enough to regenerate the set and to check what a folder holds."""
    meta = {
        "generator": f"defect_plugins.data.{generator}",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "arguments": arguments,
        "classes": list(classes),
        "counts": counts,
        **extra,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- writers


def make_anomaly_dataset(
    out_dir: PathLike,
    *,
    num_train: int = 20,
    num_test_good: int = 6,
    num_test_defect: int = 6,
    image_size: int = 64,
    seed: int = 0,
    defect_types: Sequence[str] = ANOMALY_DEFECT_TYPES,
) -> Path:
    """Write an MVTec-AD-layout steel set: defect-free training images, mixed test set, masks.

    ``num_test_defect`` is per defect type.  Masks are 0/255 and mark exactly
    the pixels the defect changed.
    """
    num_train = _count("num_train", num_train)
    num_test_good = _count("num_test_good", num_test_good)
    num_test_defect = _count("num_test_defect", num_test_defect)
    size = _side("image_size", image_size)
    seed = _seed(seed)
    types = _defect_types(defect_types)
    out = check_output_dir(out_dir)
    shape = (size, size)
    with atomic_output_dir(out) as tmp:
        counts: dict[str, int] = {}
        for split, n in (("train/good", num_train), ("test/good", num_test_good)):
            folder = tmp / split
            folder.mkdir(parents=True)
            for i in range(n):
                _save_rgb(folder / f"{_stem(i, n)}.png", to_uint8(_clean(_rng(seed, f"anomaly/{split}", i), shape)))
            counts[split] = n
        for name in types:
            images, masks = tmp / "test" / name, tmp / "ground_truth" / name
            images.mkdir(parents=True)
            masks.mkdir(parents=True)
            for i in range(num_test_defect):
                image, mask = _defective(ANOMALY_DEFECTS[name], _rng(seed, f"anomaly/test/{name}", i), shape)
                stem = _stem(i, num_test_defect)
                _save_rgb(images / f"{stem}.png", image)
                _save_l(masks / f"{stem}_mask.png", mask.astype(np.uint8) * 255)
            counts[f"test/{name}"] = num_test_defect
        arguments = {
            "num_train": num_train,
            "num_test_good": num_test_good,
            "num_test_defect": num_test_defect,
            "image_size": size,
            "defect_types": list(types),
        }
        _write_meta(tmp, "make_anomaly_dataset", seed, arguments, ("good", *types), counts, layout="mvtec_ad")
    return out


def make_classification_dataset(out_dir: PathLike, *, per_class: int = 10, image_size: int = 64, seed: int = 0) -> Path:
    """Write NEU-CLS-like images, one folder per class (mmpretrain ``CustomDataset``)."""
    per_class = _count("per_class", per_class)
    size = _side("image_size", image_size)
    seed = _seed(seed)
    out = check_output_dir(out_dir)
    with atomic_output_dir(out) as tmp:
        for name in NEU_CLASSES:
            folder = tmp / name
            folder.mkdir()
            for i in range(per_class):
                image, _ = _defective(NEU_DEFECTS[name], _rng(seed, f"cls/{name}", i), (size, size))
                _save_rgb(folder / f"{name}_{_stem(i, per_class)}.png", image)
        arguments = {"per_class": per_class, "image_size": size}
        counts = {name: per_class for name in NEU_CLASSES}
        _write_meta(tmp, "make_classification_dataset", seed, arguments, NEU_CLASSES, counts, layout="class_folders")
    return out


def _labelled_strip(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8, label uint8, region uint8) of a strip with at least one defect."""
    for _ in range(_MAX_TRIES):
        scene = strip_scene(rng, shape)
        image = scene.image
        label = np.zeros(shape, np.uint8)
        has_edge = scene.top_visible or scene.bottom_visible
        pick = rng.random()
        want_fold = not has_edge or pick < 0.65
        want_crack = has_edge and pick >= 0.35
        if want_fold:
            for _ in range(1 + int(rng.random() < 0.2)):
                image, mask = fold_mark(image, rng, scene)
                label[mask] = 1
        if want_crack:
            image, mask = edge_crack(image, rng, scene)
            label[mask] = 2
        if label.any():
            return to_uint8(add_sensor_noise(rng, image)), label, scene.bed.astype(np.uint8)
    raise RuntimeError(f"could not place a strip defect after {_MAX_TRIES} tries")


def make_segmentation_dataset(
    out_dir: PathLike,
    *,
    num_train: int = 8,
    num_val: int = 4,
    num_normal: int = 8,
    image_size: tuple[int, int] | int = (64, 128),
    seed: int = 0,
) -> Path:
    """Write steel strips on a machine bed in mmsegmentation layout.

    ``image_size`` is (height, width).  Labels: 0 background, 1 fold_mark,
    2 edge_crack, only on the strip; ``region_dir`` is 1 where the bed shows.
    ``normal_dir`` holds defect-free strips (no masks) for unsupervised
    stage-1 training; ``num_normal`` may be 0.
    """
    num_train = _count("num_train", num_train)
    num_val = _count("num_val", num_val)
    num_normal = _count("num_normal", num_normal, minimum=0)
    shape = _hw(image_size)
    seed = _seed(seed)
    out = check_output_dir(out_dir)
    with atomic_output_dir(out) as tmp:
        pixels: dict[str, list[int]] = {}
        for split, n in (("train", num_train), ("val", num_val)):
            dirs = [tmp / top / split for top in ("img_dir", "ann_dir", "region_dir")]
            for folder in dirs:
                folder.mkdir(parents=True)
            hist = np.zeros(len(SEG_CLASSES), np.int64)
            for i in range(n):
                image, label, region = _labelled_strip(_rng(seed, f"seg/{split}", i), shape)
                name = f"{_stem(i, n)}.png"
                _save_rgb(dirs[0] / name, image)
                _save_l(dirs[1] / name, label)
                _save_l(dirs[2] / name, region)
                hist += np.bincount(label.ravel(), minlength=len(SEG_CLASSES))
            pixels[split] = [int(v) for v in hist]
        normal = tmp / "normal_dir"
        normal.mkdir()
        for i in range(num_normal):
            rng = _rng(seed, "seg/normal", i)
            image = to_uint8(add_sensor_noise(rng, strip_scene(rng, shape).image))
            _save_rgb(normal / f"{_stem(i, num_normal)}.png", image)
        arguments = {"num_train": num_train, "num_val": num_val, "num_normal": num_normal, "image_size": list(shape)}
        counts = {"train": num_train, "val": num_val, "normal": num_normal}
        _write_meta(
            tmp,
            "make_segmentation_dataset",
            seed,
            arguments,
            SEG_CLASSES,
            counts,
            layout="mmseg_img_ann",
            region_classes=["not_bed", "machine_bed"],
            label_pixels=pixels,
        )
    return out
