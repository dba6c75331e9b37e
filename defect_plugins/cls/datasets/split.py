"""Fixed, seeded, stratified train/test split of a class-folder data set, written to files.

NEU-CLS ships no split. The RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023)
trains on a random split it does not publish; this project fixes one instead so that every
model in a comparison sees exactly the same images: per class, the sorted file names are
shuffled with ``numpy.random.default_rng(seed)`` and the first ``round(train_ratio * n)``
go to training. The files are mmpretrain ``CustomDataset`` annotation lists
(``<class folder>/<file name> <label>`` per line), so a config only sets ``ann_file``.

Console command (also ``python tools/neu_cls_split.py`` in a clone)::

    defect-cls-split [DATA_ROOT] [--out OUT_DIR] [--train-ratio 0.7] [--seed 0] [--classes C ...]

Defaults: ``../shared/data/neu_cls`` -> ``work_dirs/cls/neu_cls_split/{train,test}.txt``, the
split every packaged ``neu_cls/`` config reads (stratified 70/30, seed 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from defect_plugins.fileio import atomic_write_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


class SplitError(ValueError):
    """The data folder cannot be split (missing class folder, empty class, bad ratio)."""


def list_class_images(root: str | os.PathLike, classes: Sequence[str]) -> dict[str, list[str]]:
    """``{class: sorted image file names}``; raise :class:`SplitError` on a missing or empty class folder."""
    root = Path(root)
    if not root.is_dir():
        raise SplitError(f"data folder {root} not found")
    found: dict[str, list[str]] = {}
    for name in classes:
        folder = root / name
        if not folder.is_dir():
            raise SplitError(f"class folder {folder} not found (expected one folder per class: {list(classes)})")
        files = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise SplitError(f"class folder {folder} holds no image ({', '.join(IMAGE_EXTENSIONS)})")
        found[name] = files
    return found


def stratified_split(
    per_class: dict[str, list[str]], train_ratio: float = 0.7, seed: int = 0
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Split ``{class: files}`` per class; return ``(train, test)`` lists of ``(relative path, label)``."""
    if not 0.0 < train_ratio < 1.0:
        raise SplitError(f"train_ratio must lie strictly between 0 and 1, got {train_ratio}")
    rng = np.random.default_rng(seed)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, (name, files) in enumerate(per_class.items()):
        order = rng.permutation(len(files))
        n_train = int(round(train_ratio * len(files)))
        if len(files) >= 2:  # keep at least one image on each side
            n_train = min(max(n_train, 1), len(files) - 1)
        for rank, index in enumerate(order):
            item = (f"{name}/{files[index]}", label)
            (train if rank < n_train else test).append(item)
    return train, test


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def write_split(
    data_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    classes: Sequence[str],
    *,
    train_ratio: float = 0.7,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``train.txt``, ``test.txt`` and ``split.json`` (provenance) into ``out_dir``."""
    per_class = list_class_images(data_root, classes)
    train, test = stratified_split(per_class, train_ratio, seed)
    out = Path(out_dir)
    paths = {"train": out / "train.txt", "test": out / "test.txt", "meta": out / "split.json"}
    _write_atomic(paths["train"], "".join(f"{p} {y}\n" for p, y in train))
    _write_atomic(paths["test"], "".join(f"{p} {y}\n" for p, y in test))
    meta = {
        "data_root": str(Path(data_root).resolve()),
        "classes": list(classes),
        "train_ratio": train_ratio,
        "seed": seed,
        "method": "per class: sorted names, numpy default_rng(seed).permutation, first round(ratio*n) -> train",
        "train_per_class": {c: sum(1 for _, y in train if y == i) for i, c in enumerate(classes)},
        "test_per_class": {c: sum(1 for _, y in test if y == i) for i, c in enumerate(classes)},
    }
    _write_atomic(paths["meta"], json.dumps(meta, indent=2) + "\n")
    return paths


DEFAULT_DATA_ROOT = "../shared/data/neu_cls"
DEFAULT_OUT = "work_dirs/cls/neu_cls_split"  # where the packaged neu_cls configs read ann_file


def main(argv: Sequence[str] | None = None) -> int:
    """``defect-cls-split``: write the fixed NEU-CLS split; exit status 2 with a message on bad input."""
    from defect_plugins.data import NEU_CLASSES  # the label order every NEU-CLS config uses

    parser = argparse.ArgumentParser(
        prog="defect-cls-split",
        description="Write the fixed stratified NEU-CLS split (mmpretrain CustomDataset annotation files).")
    parser.add_argument("data_root", nargs="?", default=DEFAULT_DATA_ROOT,
                        help=f"folder with one sub-folder per class (default: {DEFAULT_DATA_ROOT})")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"where train.txt / test.txt / split.json go (default: {DEFAULT_OUT}, what the configs read)")
    parser.add_argument("--train-ratio", type=float, default=0.7, help="share of each class for training (default: 0.7)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    parser.add_argument("--classes", nargs="+", default=list(NEU_CLASSES),
                        help="class folder names, in label order (default: the six NEU-CLS classes)")
    args = parser.parse_args(argv)
    try:
        paths = write_split(args.data_root, args.out, args.classes, train_ratio=args.train_ratio, seed=args.seed)
    except SplitError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
