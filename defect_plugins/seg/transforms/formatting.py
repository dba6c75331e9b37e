"""Loading and packing of the extra ARCD fields: the machine-bed region map and the clean image.

mmseg packs only ``gt_seg_map`` / ``gt_edge_map`` / ``gt_depth_map``. ARCD needs two more
per-pixel fields, kept as their own :class:`~mmengine.structures.PixelData` entries of
:class:`~mmseg.structures.SegDataSample` (not smuggled into ``gt_edge_map``):

* ``gt_region_map`` — the machine-bed region label (0 not bed, 1 bed), loaded by
  :class:`LoadRegionMap`, added to ``seg_fields`` so that mmseg's geometric transforms
  (flip, crop, resize) and :class:`PadSquareResize` move it with the image; padded in batches by
  :class:`~defect_plugins.seg.models.data_preprocessor.ARCDDataPreProcessor`;
* ``clean_img`` — the defect-free image before :class:`SimulateAnomaly` (stage-1 target).

:class:`PackARCDInputs` also checks label values against the class list, so a mask with a value
outside it fails with the file name instead of as a CUDA assert or silent wrong loss.
"""
from __future__ import annotations

from typing import Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

from .anomaly_simulation import _check_field_shape

META_KEYS = ("img_path", "seg_map_path", "region_path", "ori_shape", "img_shape", "pad_shape", "scale_factor",
             "flip", "flip_direction", "reduce_zero_label", "img_padding_size")


@TRANSFORMS.register_module()
class LoadRegionMap(BaseTransform):
    """Load ``results['region_path']`` (single-channel PNG) into ``results['gt_region_map']``.

    An image with neither ``region_path`` nor ``seg_map_path`` (inference through
    ``mmseg.apis.inference_model``, which removes ``LoadAnnotations`` from the test pipeline)
    passes unchanged; an annotated image without a region path is a configuration error.
    """

    def __init__(self, imdecode_backend: str = "pillow", backend_args: dict | None = None) -> None:
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results.get("region_path")
        if path is None and results.get("seg_map_path") is None:
            return results  # plain inference (mmseg.apis.inference_model drops LoadAnnotations): no labels at all
        if path is None:
            raise KeyError(f"LoadRegionMap: no 'region_path' for image {results.get('img_path')!r}; "
                           "set data_prefix=dict(..., region_path=...) in the dataset config")
        data = fileio.get(path, backend_args=self.backend_args)
        region = mmcv.imfrombytes(data, flag="unchanged", backend=self.imdecode_backend).squeeze()
        if region.ndim != 2:
            raise ValueError(f"LoadRegionMap: {path} must be a single-channel label map, got shape {region.shape}")
        results["gt_region_map"] = region.astype(np.uint8)
        results.setdefault("seg_fields", []).append("gt_region_map")
        return results


def _check_labels(label: np.ndarray, num_classes: int, ignore_index: int, source: object, key: str) -> None:
    values = np.unique(label)
    bad = [int(v) for v in values if (v < 0 or v >= num_classes) and v != ignore_index]
    if bad:
        raise ValueError(f"{key} from {source!r} has label values {bad} outside the class list "
                         f"0..{num_classes - 1} (ignore_index {ignore_index})")


@TRANSFORMS.register_module()
class PackARCDInputs(PackSegInputs):
    """:class:`mmseg.datasets.transforms.PackSegInputs` plus ``gt_region_map`` and ``clean_img``.

    Args:
        num_classes: when given, every ``gt_seg_map`` value must be in ``[0, num_classes)`` or
            ``ignore_index``; otherwise a :class:`ValueError` names the file.
        num_region_classes: the same check for ``gt_region_map``.
        ignore_index: the label value that is allowed outside the class list.
    """

    def __init__(self, meta_keys: Sequence[str] = META_KEYS, num_classes: int | None = None,
                 num_region_classes: int | None = 2, ignore_index: int = 255) -> None:
        super().__init__(meta_keys=tuple(meta_keys))
        self.num_classes = num_classes
        self.num_region_classes = num_region_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        image_hw = tuple(results["img"].shape[:2])
        allowed = {image_hw, tuple(results.get("ori_shape", image_hw))}
        for key in ("gt_seg_map", "gt_region_map"):
            if key in results and tuple(results[key].shape[:2]) not in allowed:
                _check_field_shape(results, key, tuple(results.get("ori_shape", image_hw)))
        if "gt_seg_map" in results:
            if self.num_classes is not None:
                _check_labels(results["gt_seg_map"], self.num_classes, self.ignore_index,
                              results.get("seg_map_path"), "gt_seg_map")
        if "gt_region_map" in results and self.num_region_classes is not None:
            _check_labels(results["gt_region_map"], self.num_region_classes, self.ignore_index,
                          results.get("region_path"), "gt_region_map")
        packed = super().transform(results)
        sample = packed["data_samples"]
        if "gt_region_map" in results:
            region = torch.from_numpy(np.ascontiguousarray(results["gt_region_map"]).astype(np.int64))
            sample.set_data({"gt_region_map": PixelData(data=region[None])})
        if "clean_img" in results:
            clean = results["clean_img"]
            clean = clean[..., None] if clean.ndim == 2 else clean
            sample.set_data(
                {"clean_img": PixelData(data=torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1))))})
        return packed
