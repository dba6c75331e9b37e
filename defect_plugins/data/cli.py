"""``defect-synth``: write a synthetic steel data set from the command line.

Usage::

    defect-synth anomaly OUT [--count N] [--size S] [--seed S]
                         [--num-test-good N] [--num-test-defect N] [--defect-types a,b]
    defect-synth cls OUT [--count N] [--size S] [--seed S]
    defect-synth seg OUT [--count N] [--size S] [--seed S] [--num-val N] [--num-normal N] [--height H] [--width W]

``--count`` is the main count of each layout (training images for ``anomaly``
and ``seg``, images per class for ``cls``); the specific options override it.
Bad input prints ``defect-synth: error: <message>`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .atomic import DataGenerationError
from .layouts import make_anomaly_dataset, make_classification_dataset, make_segmentation_dataset

PROG = "defect-synth"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Write a deterministic synthetic steel-surface data set.")
    sub = parser.add_subparsers(dest="layout", required=True, metavar="{anomaly,cls,seg}")

    def common(p: argparse.ArgumentParser, count_help: str, size_help: str) -> None:
        p.add_argument("out", metavar="OUT", help="output folder (must not exist or be empty)")
        p.add_argument("--count", type=int, default=None, help=count_help)
        p.add_argument("--size", type=int, default=None, help=size_help)
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    a = sub.add_parser("anomaly", help="MVTec AD layout (anomalib)")
    common(a, "training images (default 20)", "image side in pixels (default 64)")
    a.add_argument("--num-train", type=int, default=None, help="training images (overrides --count)")
    a.add_argument("--num-test-good", type=int, default=6, help="defect-free test images (default 6)")
    a.add_argument("--num-test-defect", type=int, default=6, help="test images per defect type (default 6)")
    a.add_argument("--defect-types", default="scratch,pit,patch", help="comma-separated (default scratch,pit,patch)")

    c = sub.add_parser("cls", help="NEU classes, one folder per class (mmpretrain)")
    common(c, "images per class (default 10)", "image side in pixels (default 64)")
    c.add_argument("--per-class", type=int, default=None, help="images per class (overrides --count)")

    s = sub.add_parser("seg", help="strips on a machine bed, mmsegmentation layout")
    common(s, "training images (default 8)", "image height; width defaults to twice it (default 64)")
    s.add_argument("--num-train", type=int, default=None, help="training images (overrides --count)")
    s.add_argument("--num-val", type=int, default=4, help="validation images (default 4)")
    s.add_argument("--num-normal", type=int, default=8, help="defect-free strips in normal_dir (default 8, may be 0)")
    s.add_argument("--height", type=int, default=None, help="image height (overrides --size)")
    s.add_argument("--width", type=int, default=None, help="image width (default 2 x height)")
    return parser


def _pick(*values: int | None, default: int) -> int:
    return next((v for v in values if v is not None), default)


def _run(args: argparse.Namespace) -> str:
    if args.layout == "anomaly":
        types = tuple(t.strip() for t in args.defect_types.split(",") if t.strip())
        num_train = _pick(args.num_train, args.count, default=20)
        path = make_anomaly_dataset(
            args.out,
            num_train=num_train,
            num_test_good=args.num_test_good,
            num_test_defect=args.num_test_defect,
            image_size=_pick(args.size, default=64),
            seed=args.seed,
            defect_types=types,
        )
        return (
            f"{path}: anomaly (MVTec AD) train/good={num_train} test/good={args.num_test_good} "
            f"test/<defect>={args.num_test_defect} x {len(types)} ({','.join(types)})"
        )
    if args.layout == "cls":
        per_class = _pick(args.per_class, args.count, default=10)
        size = _pick(args.size, default=64)
        path = make_classification_dataset(args.out, per_class=per_class, image_size=size, seed=args.seed)
        return f"{path}: cls (NEU classes) 6 classes x {per_class} images"
    height = _pick(args.height, args.size, default=64)
    width = _pick(args.width, default=2 * height)
    num_train = _pick(args.num_train, args.count, default=8)
    path = make_segmentation_dataset(
        args.out,
        num_train=num_train,
        num_val=args.num_val,
        num_normal=args.num_normal,
        image_size=(height, width),
        seed=args.seed,
    )
    return f"{path}: seg (mmseg) train={num_train} val={args.num_val} normal={args.num_normal} size={height}x{width}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``defect-synth``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        summary = _run(args)
    except DataGenerationError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{PROG}: wrote {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
