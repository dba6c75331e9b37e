"""Data sets for ARCD: synthetic strips with region maps, NEU-Seg, and unlabelled normal images.

* :class:`ARCDStripDataset` reads the layout written by
  :func:`defect_plugins.data.make_segmentation_dataset` (``img_dir`` / ``ann_dir`` /
  ``region_dir``; classes background, fold_mark, edge_crack as in the thesis' strip data);
  ``data_prefix['region_path']`` adds each image's machine-bed map as ``region_path``.
* :class:`NEUSegDataset` reads NEU-Seg (Northeastern University): ``.jpg`` images, ``.png``
  masks, classes background, inclusion, patches, scratches; there is no region map.
* :class:`NormalImageDataset` lists defect-free images only (stage-1 training, no labels);
  ``split='train'`` / ``'val'`` divides one folder into disjoint training and held-out parts, so
  that stage-1 validation (RA, thesis Table 4.1) is measured on normal images the network did
  not train on.

``label_fraction`` keeps a seeded random subset of the labelled images (thesis Table 3.4 trains
with 30 % and 50 % of them).
"""
from __future__ import annotations

import os.path as osp

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from defect_plugins.data import SEG_CLASSES


class _SubsetMixin:
    """Keep ``round(label_fraction * N)`` items chosen with ``numpy.random.default_rng(subset_seed)``."""

    def _subset(self, data_list: list[dict], label_fraction: float, subset_seed: int) -> list[dict]:
        if not 0.0 < label_fraction <= 1.0:
            raise ValueError(f"{type(self).__name__}: label_fraction must be in (0, 1], got {label_fraction}")
        if label_fraction == 1.0 or not data_list:
            return data_list
        keep = max(1, int(round(label_fraction * len(data_list))))
        order = np.random.default_rng(subset_seed).permutation(len(data_list))[:keep]
        return [data_list[i] for i in sorted(order)]


@DATASETS.register_module()
class ARCDStripDataset(_SubsetMixin, BaseSegDataset):
    """Synthetic (or real) strip-steel images with defect masks and optional machine-bed maps."""

    METAINFO = dict(classes=tuple(SEG_CLASSES), palette=[[0, 0, 0], [255, 64, 64], [64, 160, 255]])

    def __init__(self, img_suffix: str = ".png", seg_map_suffix: str = ".png", label_fraction: float = 1.0,
                 subset_seed: int = 0, **kwargs) -> None:
        self.label_fraction, self.subset_seed = label_fraction, subset_seed
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        region_dir = self.data_prefix.get("region_path")
        if region_dir:
            if not osp.isdir(region_dir):
                raise FileNotFoundError(f"{type(self).__name__}: data_prefix.region_path {region_dir!r} "
                                        "is not a folder")
            img_dir = self.data_prefix["img_path"]
            for info in data_list:
                rel = osp.relpath(info["img_path"], img_dir)
                info["region_path"] = osp.join(region_dir, rel[: -len(self.img_suffix)] + self.seg_map_suffix)
        return self._subset(data_list, self.label_fraction, self.subset_seed)


@DATASETS.register_module()
class NEUSegDataset(_SubsetMixin, BaseSegDataset):
    """NEU-Seg: 200x200 steel images, 0 background, 1 inclusion, 2 patches, 3 scratches."""

    METAINFO = dict(classes=("background", "inclusion", "patches", "scratches"),
                    palette=[[0, 0, 0], [255, 64, 64], [64, 200, 64], [64, 160, 255]])

    def __init__(self, img_suffix: str = ".jpg", seg_map_suffix: str = ".png", label_fraction: float = 1.0,
                 subset_seed: int = 0, **kwargs) -> None:
        self.label_fraction, self.subset_seed = label_fraction, subset_seed
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def load_data_list(self) -> list[dict]:
        return self._subset(super().load_data_list(), self.label_fraction, self.subset_seed)


NORMAL_SPLITS = ("all", "train", "val")


@DATASETS.register_module()
class NormalImageDataset(BaseSegDataset):
    """Unlabelled images for stage 1 (``data_prefix=dict(img_path=...)``, no ``seg_map_path``).

    Args:
        img_suffix: image file suffix.
        split: ``'all'`` (default) lists every image; ``'val'`` keeps a seeded random
            ``max(1, round(val_fraction * N))`` of them (held out) and ``'train'`` the rest, so the
            two are disjoint and together cover the folder.
        val_fraction: share of the images held out for ``split='val'``, in ``(0, 1)``.
        split_seed: seed of ``numpy.random.default_rng`` for the held-out choice (use the same
            one in the training and validation data sets).
    """

    METAINFO = dict(classes=("normal",), palette=[[0, 0, 0]])

    def __init__(self, img_suffix: str = ".png", split: str = "all", val_fraction: float = 0.2, split_seed: int = 0,
                 **kwargs) -> None:
        if split not in NORMAL_SPLITS:
            raise ValueError(f"NormalImageDataset: split must be one of {NORMAL_SPLITS}, got {split!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"NormalImageDataset: val_fraction must be in (0, 1), got {val_fraction}")
        self.split, self.val_fraction, self.split_seed = split, val_fraction, split_seed
        super().__init__(img_suffix=img_suffix, **kwargs)

    def load_data_list(self) -> list[dict]:
        img_dir = self.data_prefix.get("img_path")
        if not img_dir or not osp.isdir(img_dir):
            raise FileNotFoundError(f"NormalImageDataset: data_prefix.img_path {img_dir!r} is not a folder")
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(f"NormalImageDataset: no '*{self.img_suffix}' images under {img_dir!r}")
        if self.split == "all":
            return data_list
        if len(data_list) < 2:
            raise ValueError(f"NormalImageDataset: split={self.split!r} needs at least 2 images under {img_dir!r} "
                             f"(one to train on, one to hold out), found {len(data_list)}; use split='all'")
        held = min(len(data_list) - 1, max(1, int(round(self.val_fraction * len(data_list)))))
        chosen = set(np.random.default_rng(self.split_seed).permutation(len(data_list))[:held].tolist())
        keep = [i for i in range(len(data_list)) if (i in chosen) == (self.split == "val")]
        return [data_list[i] for i in keep]
