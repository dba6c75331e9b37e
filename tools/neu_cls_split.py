"""Write the fixed stratified NEU-CLS split (mmpretrain ``CustomDataset`` annotation files).

    python tools/neu_cls_split.py [DATA_ROOT] [--out OUT_DIR] [--train-ratio 0.7] [--seed 0]

Defaults: ``../shared/data/neu_cls`` -> ``work_dirs/cls/neu_cls_split/{train,test}.txt``, the
split every config under ``configs/neu_cls/`` reads (stratified 70/30, seed 0).
"""
from __future__ import annotations

import argparse
import sys

from defect_plugins.cls.datasets.split import SplitError, write_split
from defect_plugins.data import NEU_CLASSES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_root", nargs="?", default="../shared/data/neu_cls", help="folder with one sub-folder per class")
    parser.add_argument("--out", default="work_dirs/cls/neu_cls_split", help="where train.txt / test.txt go")
    parser.add_argument("--train-ratio", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", nargs="+", default=list(NEU_CLASSES), help="class folder names, in label order")
    args = parser.parse_args(argv)
    try:
        paths = write_split(args.data_root, args.out, args.classes, train_ratio=args.train_ratio, seed=args.seed)
    except SplitError as error:
        print(f"neu_cls_split: error: {error}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
