"""NEU-CLS (Northeastern University steel-strip surface defects) for mmpretrain.

Six classes, 300 grayscale 200x200 images each, stored here as R=G=B JPEG (three channels are
kept, as mmpretrain loads them with cv2, BGR). The paper this project follows (Huang et al.,
"Research on a Classification Method for Strip Steel Surface Defects Based on Knowledge
Distillation and a Self-Adaptive Residual Shrinkage Network", Algorithms 16(11):516, 2023)
resizes to 64x64; 224 is kept as an option (configs/neu_cls/*_224.py).

:class:`NEUCLSDataset` is mmpretrain's :class:`~mmpretrain.datasets.CustomDataset` with the
class names fixed and the checks it leaves out: a missing or empty class folder, an annotation
line that is not ``<path> <label>``, a label out of range, or a listed file that does not exist
raise :class:`DatasetError` naming the file or folder, instead of a warning or a failure deep
inside a dataloader worker.
"""
from __future__ import annotations

import os

from mmengine.fileio import list_from_file
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from defect_plugins.cls.datasets.split import IMAGE_EXTENSIONS
from defect_plugins.data import NEU_CLASSES


class DatasetError(ValueError):
    """A data folder or annotation file that cannot be used as it is."""


@DATASETS.register_module()
class NEUCLSDataset(CustomDataset):
    """NEU-CLS in class folders, optionally restricted to a split file (``defect-cls-split``).

    Args:
        data_prefix: folder with one sub-folder per class (``crazing`` ... ``scratches``).
        ann_file: optional ``<class>/<file> <label>`` list; without it every image is used.
        Other arguments as :class:`mmpretrain.datasets.CustomDataset`.
    """

    METAINFO = {"classes": tuple(NEU_CLASSES)}

    def __init__(self, *args, extensions=IMAGE_EXTENSIONS, **kwargs):
        super().__init__(*args, extensions=extensions, **kwargs)

    # -- checks ------------------------------------------------------------------------------
    def _check_class_folders(self) -> None:
        root = self.img_prefix
        if not os.path.isdir(root):
            raise DatasetError(f"image folder {root} not found")
        for name in self.CLASSES:
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                raise DatasetError(f"class folder {folder} not found (classes: {list(self.CLASSES)})")
            if not any(self.is_valid_file(f) for f in os.listdir(folder)):
                raise DatasetError(f"class folder {folder} is empty: no file with extension "
                                   f"{', '.join(self.extensions)}")

    def _check_annotations(self) -> None:
        num_classes = len(self.CLASSES)
        for number, line in enumerate(list_from_file(self.ann_file), start=1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(" ", 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetError(f"{self.ann_file}:{number}: expected '<relative path> <label>', got {line!r}")
            label = int(parts[1])
            if not 0 <= label < num_classes:
                raise DatasetError(f"{self.ann_file}:{number}: label {label} outside 0..{num_classes - 1}")
            path = os.path.join(self.img_prefix, parts[0])
            if not os.path.isfile(path):
                raise DatasetError(f"{self.ann_file}:{number}: image {path} not found")

    def load_data_list(self):
        if self.ann_file:
            if not os.path.isfile(self.ann_file):
                raise DatasetError(f"annotation file {self.ann_file} not found (write it with defect-cls-split; "
                                   f"images are read from data_prefix {self.img_prefix!r}; with --cfg-options "
                                   f"set each loader's dataset.ann_file and dataset.data_prefix, not the config's "
                                   f"variables)")
            self._check_annotations()
        else:
            self._check_class_folders()
        data_list = super().load_data_list()
        if not data_list:
            raise DatasetError(f"no sample listed in {self.ann_file or self.img_prefix}")
        return data_list
