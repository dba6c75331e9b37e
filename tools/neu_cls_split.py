"""Write the fixed stratified NEU-CLS split: ``defect-cls-split`` for a clone without it on PATH.

    python tools/neu_cls_split.py [DATA_ROOT] [--out OUT_DIR] [--train-ratio 0.7] [--seed 0] [--classes C ...]
    python tools/neu_cls_split.py [DATA_ROOT] --out OUT_DIR --train-counts 210 140 90 60 35 21 [--test-count 90]

See :mod:`defect_plugins.cls.datasets.split` (defaults: ``../shared/data/neu_cls`` ->
``work_dirs/cls/neu_cls_split``, stratified 70/30, seed 0). ``--train-counts`` (one count per class
in ``--classes`` order, or ``CLASS=N`` for each class) writes an imbalanced training set with a
balanced test set of ``--test-count`` images per class, the same test images as the 70/30 split.
"""
import sys

from defect_plugins.cls.datasets.split import main

if __name__ == "__main__":
    sys.exit(main())
