"""Fixed, seeded, stratified train/test split of a class-folder data set, written to files.

NEU-CLS ships no split. The RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023)
trains on a random split it does not publish; this project fixes one instead so that every
model in a comparison sees exactly the same images: per class, the sorted file names are
shuffled with ``numpy.random.default_rng(seed)`` and the first ``round(train_ratio * n)``
go to training. The files are mmpretrain ``CustomDataset`` annotation lists
(``<class folder>/<file name> <label>`` per line), so a config only sets ``ann_file``.

Per-class training counts (an imbalanced benchmark with a balanced test set): with
``train_counts`` each class's *last* ``test_count`` images of the same permutation go to the test
set and its *first* ``n_c`` to training; the rest is left out. With NEU-CLS's 300 images per class
and ``test_count=90`` (30 %), the test set is exactly the one of the balanced 70/30 split of the
same seed, and each class's training images are a subset of its balanced training images, so
balanced and imbalanced runs are scored on the same images. The RKD-SARSN paper (Huang et al.,
Algorithms 16(11):516, 2023) trains on 1400 images with 100 test images per class, unbalanced in a
way it does not state; a long tail with imbalance ratio 10 is e.g. ``--train-counts 210 140 90 60 35 21``.

Console command::

    defect-cls-split [DATA_ROOT] [--out OUT_DIR] [--train-ratio 0.7] [--seed 0] [--classes C ...]
                     [--train-counts N ... | --train-counts CLASS=N ...] [--test-count 90]

Defaults: ``../shared/data/neu_cls`` -> ``work_dirs/cls/neu_cls_split/{train,test}.txt``, the
split every packaged ``neu_cls/`` config reads (stratified 70/30, seed 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from defect_plugins.fileio import atomic_write_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


class SplitError(ValueError):
    """The data folder cannot be split (missing class folder, empty class, bad ratio or count)."""


DEFAULT_TEST_COUNT = 90  # 30 % of NEU-CLS's 300 images per class


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


def counts_split(
    per_class: dict[str, list[str]], train_counts: Mapping[str, int], test_count: int = DEFAULT_TEST_COUNT,
    seed: int = 0,
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Split ``{class: files}`` with ``train_counts[class]`` training and ``test_count`` test images per class.

    The permutation of each class is the one :func:`stratified_split` draws for the same classes
    and seed; test images are its last ``test_count``, training images its first ``n_c``. Return
    ``(train, test)`` lists of ``(relative path, label)``; raise :class:`SplitError` naming the
    class when a count is missing, not a positive integer or larger than the class folder allows.
    """
    if isinstance(test_count, bool) or not isinstance(test_count, int) or test_count < 1:
        raise SplitError(f"test count must be a positive integer (images per class), got {test_count!r}")
    unknown = [name for name in train_counts if name not in per_class]
    if unknown:
        raise SplitError(f"training counts name unknown class(es) {unknown}: expected the classes {list(per_class)}")
    missing = [name for name in per_class if name not in train_counts]
    if missing:
        raise SplitError(f"no training count for class(es) {missing}: give one count per class {list(per_class)}")
    for name, files in per_class.items():
        count = train_counts[name]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SplitError(f"class {name!r}: training count must be a positive integer, got {count!r}")
        if count + test_count > len(files):
            room = (f"at most {len(files) - test_count} for training with {test_count} test images"
                    if len(files) > test_count else f"not even the {test_count} test images")
            raise SplitError(f"class {name!r}: {count} training + {test_count} test images requested, but its folder "
                             f"holds {len(files)} ({room})")
    rng = np.random.default_rng(seed)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for label, (name, files) in enumerate(per_class.items()):
        order = rng.permutation(len(files))
        train += [(f"{name}/{files[index]}", label) for index in order[: train_counts[name]]]
        test += [(f"{name}/{files[index]}", label) for index in order[len(files) - test_count:]]
    return train, test


def parse_train_counts(values: Sequence[str], classes: Sequence[str]) -> dict[str, int]:
    """``--train-counts`` values: ``N ...`` (one per class, in class order) or ``CLASS=N ...``;
    return ``{class: N}``."""
    named = [v for v in values if "=" in v]
    if named and len(named) != len(values):
        raise SplitError(f"--train-counts: mix of CLASS=N and plain counts {list(values)}; use one form")
    counts: dict[str, int] = {}
    if named:
        for value in values:
            name, _, number = value.partition("=")
            if name in counts:
                raise SplitError(f"--train-counts: class {name!r} given twice")
            counts[name] = _parse_count(number, f"class {name!r}")
        return counts
    if len(values) != len(classes):
        raise SplitError(f"--train-counts: {len(values)} counts for {len(classes)} classes {list(classes)}; give one "
                         "per class, in that order, or CLASS=N")
    for name, value in zip(classes, values):
        counts[name] = _parse_count(value, f"class {name!r}")
    return counts


def _parse_count(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SplitError(f"--train-counts: {what}: expected an integer count, got {text!r}") from None


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
    train_counts: Mapping[str, int] | None = None,
    test_count: int | None = None,
) -> dict[str, Path]:
    """Write ``train.txt``, ``test.txt`` and ``split.json`` (provenance) into ``out_dir``.

    With ``train_counts`` (``{class: n_c}``) the split is :func:`counts_split` with ``test_count``
    test images per class (default 90) and ``train_ratio`` is not used; otherwise it is
    :func:`stratified_split` by ``train_ratio``.
    """
    per_class = list_class_images(data_root, classes)
    if train_counts is None and test_count is not None:
        raise SplitError("a test count needs training counts too (train_counts / --train-counts)")
    if train_counts is not None:
        test_count = DEFAULT_TEST_COUNT if test_count is None else test_count
        train, test = counts_split(per_class, train_counts, test_count, seed)
        method = ("per class: sorted names, numpy default_rng(seed).permutation, last test_count -> test, "
                  "first train_counts[class] -> train, the rest unused")
    else:
        train, test = stratified_split(per_class, train_ratio, seed)
        method = "per class: sorted names, numpy default_rng(seed).permutation, first round(ratio*n) -> train"
    out = Path(out_dir)
    paths = {"train": out / "train.txt", "test": out / "test.txt", "meta": out / "split.json"}
    _write_atomic(paths["train"], "".join(f"{p} {y}\n" for p, y in train))
    _write_atomic(paths["test"], "".join(f"{p} {y}\n" for p, y in test))
    meta = {
        "data_root": str(Path(data_root).resolve()),
        "classes": list(classes),
        "train_ratio": None if train_counts is not None else train_ratio,
        "train_counts": None if train_counts is None else {c: int(train_counts[c]) for c in classes},
        "test_count": test_count,
        "seed": seed,
        "method": method,
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
                        help=f"where train.txt / test.txt / split.json go (default: {DEFAULT_OUT}, "
                             "what the configs read)")
    parser.add_argument("--train-ratio", type=float, default=None,
                        help="share of each class for training (default: 0.7; not with --train-counts)")
    parser.add_argument("--train-counts", nargs="+", default=None, metavar="N|CLASS=N",
                        help="training images per class instead of a ratio: one count per class in --classes order "
                             "(e.g. 210 140 90 60 35 21) or CLASS=N for every class; the test set stays balanced")
    parser.add_argument("--test-count", type=int, default=None,
                        help=f"test images per class with --train-counts (default: {DEFAULT_TEST_COUNT})")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    parser.add_argument("--classes", nargs="+", default=list(NEU_CLASSES),
                        help="class folder names, in label order (default: the six NEU-CLS classes)")
    args = parser.parse_args(argv)
    try:
        if args.train_counts is not None and args.train_ratio is not None:
            raise SplitError("--train-ratio and --train-counts exclude each other; give one")
        if args.test_count is not None and args.train_counts is None:
            raise SplitError("--test-count needs --train-counts (with --train-ratio the test share is 1 - ratio)")
        counts = None if args.train_counts is None else parse_train_counts(args.train_counts, args.classes)
        paths = write_split(args.data_root, args.out, args.classes,
                            train_ratio=0.7 if args.train_ratio is None else args.train_ratio, seed=args.seed,
                            train_counts=counts, test_count=args.test_count)
    except SplitError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
