"""Same-class data enhancement of RKD-SARSN (Huang et al., Algorithms 16(11):516, 2023) as
mmpretrain dataset wrappers: image mosaic and image fusion.

Both need other images of the sample's class, so they are dataset wrappers (like mmdet's
``MultiImageMixDataset``) rather than per-sample transforms: the wrapped dataset's pipeline
only loads the image (e.g. ``CheckedLoadImageFromFile``), the wrapper mixes, then applies its
own ``pipeline`` (resize, flips, ``PackInputs``). The label is never changed: every image mixed
in belongs to the anchor's class.

* :class:`SameClassMosaicDataset`: the anchor and three other images of its class, each
  resized to the anchor's size, tiled 2x2; a band around the two seams is replaced by its
  median-blurred version (so the seams carry no artificial straight edges a classifier could
  latch on to); the mosaic is resized back to the anchor's size.
* :class:`SameClassFusionDataset`: ``lam * anchor + (1 - lam) * other`` with ``other`` from the
  same class and ``lam`` uniform in ``lam_range``.

Randomness comes from NumPy's global generator, which mmengine seeds per dataloader worker.
"""
from __future__ import annotations

import abc
import copy

import cv2
import numpy as np
from mmengine.dataset import Compose
from mmpretrain.registry import DATASETS, TRANSFORMS


class _SameClassWrapper(abc.ABC):
    """Shared part: build the inner dataset, index it by class, load extra images of a class."""

    num_others: int

    def __init__(self, dataset, pipeline: list, prob: float = 0.5):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must lie in [0, 1], got {prob}")
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        # built from mmpretrain's registry so it works with or without a default scope
        self.pipeline = Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline])
        self.prob = prob
        labels = np.asarray(self.dataset.get_gt_labels())
        self._labels = labels
        self._by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def get_gt_labels(self) -> np.ndarray:
        return self._labels.copy()

    def get_cat_ids(self, idx: int) -> list[int]:
        return [int(self._labels[idx])]

    def full_init(self) -> None:
        self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def _others(self, idx: int, count: int) -> list[dict]:
        pool = self._by_class[int(self._labels[idx])]
        candidates = pool[pool != idx]
        if candidates.size == 0:
            candidates = pool
        chosen = np.random.choice(candidates, size=count, replace=candidates.size < count)
        return [self.dataset[int(i)] for i in chosen]

    @abc.abstractmethod
    def _mix(self, anchor: dict, others: list[dict]) -> np.ndarray:
        """Return the mixed image for ``anchor`` and ``num_others`` images of its class."""

    def __getitem__(self, idx: int) -> dict:
        results = copy.deepcopy(self.dataset[idx])
        if "img" not in results:
            raise KeyError(f"{type(self).__name__}: the wrapped dataset's pipeline must load the image ('img')")
        if np.random.rand() < self.prob:
            results["img"] = self._mix(results, self._others(idx, self.num_others))
            results["img_shape"] = results["img"].shape[:2]
        return self.pipeline(results)


def _resize_like(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    if img.shape[:2] == (height, width):
        return img
    resized = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return resized if resized.ndim == img.ndim else resized[..., None]


@DATASETS.register_module()
class SameClassMosaicDataset(_SameClassWrapper):
    """2x2 mosaic of four images of one class, seams median-blurred, resized back.

    Args:
        dataset: the wrapped dataset (config or object); its pipeline loads the image only.
        pipeline: transforms applied after mixing.
        prob: probability that a sample becomes a mosaic.
        seam_width: total width (pixels, in the 2x mosaic) of the band blurred around each seam.
        blur_kernel: odd median-filter size.
    """

    num_others = 3

    def __init__(self, dataset, pipeline: list, prob: float = 0.5, seam_width: int = 6, blur_kernel: int = 5):
        super().__init__(dataset, pipeline, prob)
        if blur_kernel % 2 != 1 or blur_kernel < 3:
            raise ValueError(f"blur_kernel must be an odd number >= 3, got {blur_kernel}")
        self.seam_width = seam_width
        self.blur_kernel = blur_kernel

    def _mix(self, anchor: dict, others: list[dict]) -> np.ndarray:
        img = anchor["img"]
        height, width = img.shape[:2]
        tiles = [img] + [_resize_like(o["img"], (height, width)) for o in others]
        mosaic = np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:], axis=1)], axis=0)
        blurred = cv2.medianBlur(np.ascontiguousarray(mosaic), self.blur_kernel)
        blurred = blurred if blurred.ndim == mosaic.ndim else blurred[..., None]
        half = self.seam_width // 2
        mosaic[height - half:height + half] = blurred[height - half:height + half]
        mosaic[:, width - half:width + half] = blurred[:, width - half:width + half]
        return _resize_like(mosaic, (height, width))


@DATASETS.register_module()
class SameClassFusionDataset(_SameClassWrapper):
    """Blend of an image with another image of its class: ``lam * a + (1 - lam) * b``.

    Args:
        dataset, pipeline, prob: as :class:`SameClassMosaicDataset`.
        lam_range: ``lam`` is drawn uniformly from this interval.
    """

    num_others = 1

    def __init__(self, dataset, pipeline: list, prob: float = 0.5, lam_range: tuple[float, float] = (0.3, 0.7)):
        super().__init__(dataset, pipeline, prob)
        low, high = lam_range
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"lam_range must satisfy 0 <= low <= high <= 1, got {lam_range}")
        self.lam_range = (float(low), float(high))

    def _mix(self, anchor: dict, others: list[dict]) -> np.ndarray:
        img = anchor["img"]
        other = _resize_like(others[0]["img"], img.shape[:2])
        lam = np.random.uniform(*self.lam_range)
        fused = lam * img.astype(np.float32) + (1.0 - lam) * other.astype(np.float32)
        return np.clip(fused, 0, 255).round().astype(img.dtype)
