"""Two unpaired image folders (domain A and domain B) as one dataset for CycleGAN training.

CycleGAN learns from unpaired sets (Zhu et al. 2017): item ``i`` is A's image ``i`` (cycling
through A) with a randomly drawn B image, and the dataset is as long as the larger folder. Each
folder is searched recursively, so a labelled set with class sub-folders can serve as a domain
(labels are not used). Each image goes through an mmpretrain/mmcv transform pipeline (by default
Zhu et al.'s augmentation: resize to ``load_size``, random ``img_size`` crop, random flips; steel
textures have no up or down, so vertical flips are on too).

The folders are checked when the dataset is built, with errors that name the path: a missing or
empty folder, a file that does not decode, images of different sizes within one domain (unless
``allow_mixed_sizes``: a folder of mixed sizes usually mixes cameras or lines).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from mmpretrain.registry import DATASETS, TRANSFORMS
from torch.utils.data import Dataset

import defect_plugins.cls.transforms.loading  # noqa: F401  (registers CheckedLoadImageFromFile)
from defect_plugins.imaging.files import IMAGE_SUFFIXES
from defect_plugins.imaging.files import list_images as list_image_files


class ImageFolderError(ValueError):
    """A domain folder that cannot be used: the message names the folder or file."""


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped); error if there are none."""
    root = Path(root)
    if not root.exists():
        raise ImageFolderError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ImageFolderError(f"{root} is not a folder")
    found = list_image_files(root, skip_hidden=True)
    if not found:
        raise ImageFolderError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return found


def read_image(path: Path) -> np.ndarray | None:
    """A 3-channel uint8 BGR image as OpenCV decodes it, or ``None`` if the file does not decode."""
    try:
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def check_image_folder(root: str | Path, *, allow_mixed_sizes: bool = False) -> list[Path]:
    """:func:`list_images` plus a decode of every file: error on an unreadable file or on mixed sizes."""
    files = list_images(root)
    sizes: dict[tuple[int, int], Path] = {}
    unreadable = []
    for path in files:
        image = read_image(path)
        if image is None:
            unreadable.append(path)
            continue
        sizes.setdefault(image.shape[:2], path)
    if unreadable:
        shown = ", ".join(str(p) for p in unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
        raise ImageFolderError(f"{len(unreadable)} file(s) in {root} cannot be read as images: {shown}")
    if len(sizes) > 1 and not allow_mixed_sizes:
        (s1, p1), (s2, p2) = list(sizes.items())[:2]
        raise ImageFolderError(f"images of different sizes in {root}: {p1} is {s1[1]}x{s1[0]}, {p2} is "
                               f"{s2[1]}x{s2[0]} (one folder per camera/line; allow_mixed_sizes=True to accept)")
    return files


def default_pipeline(img_size: int, load_size: int) -> list[dict]:
    """Zhu et al.'s training augmentation: resize, random crop, random flips."""
    return [
        dict(type="CheckedLoadImageFromFile"),
        dict(type="Resize", scale=(load_size, load_size)),
        dict(type="RandomCrop", crop_size=img_size),
        dict(type="RandomFlip", prob=0.5, direction="horizontal"),
        dict(type="RandomFlip", prob=0.5, direction="vertical"),
    ]


@DATASETS.register_module()
class UnpairedImageDataset(Dataset):
    """Items ``dict(inputs=dict(a=uint8 (3, S, S), b=uint8 (3, S, S)))`` from two unpaired folders.

    Args:
        root_a: folder of domain A (searched recursively).
        root_b: folder of domain B.
        img_size: side ``S`` of the training crops (must suit the generator: a multiple of 4).
        load_size: side the images are resized to before cropping (default ``img_size * 9 // 8``,
            Zhu et al.'s 286/256).
        pipeline: transform configs (mmpretrain/mmcv ``TRANSFORMS``) producing ``results['img']``;
            default :func:`default_pipeline`.
        allow_mixed_sizes: accept images of different sizes within one folder.
    """

    def __init__(self, root_a: str, root_b: str, img_size: int = 64, load_size: int | None = None,
                 pipeline: Sequence[dict] | None = None, allow_mixed_sizes: bool = False):
        if not isinstance(img_size, int) or img_size < 4 or img_size % 4:
            raise ImageFolderError(f"img_size must be a multiple of 4 and >= 4, got {img_size!r}")
        load_size = img_size * 9 // 8 if load_size is None else load_size
        if not isinstance(load_size, int) or load_size < img_size:
            raise ImageFolderError(f"load_size must be an integer >= img_size ({img_size}), got {load_size!r}")
        self.img_size, self.load_size = img_size, load_size
        self.files = {"a": check_image_folder(root_a, allow_mixed_sizes=allow_mixed_sizes),
                      "b": check_image_folder(root_b, allow_mixed_sizes=allow_mixed_sizes)}
        self.pipeline = [TRANSFORMS.build(dict(t)) for t in (pipeline or default_pipeline(img_size, load_size))]

    def __len__(self) -> int:
        return max(len(self.files["a"]), len(self.files["b"]))

    def _load(self, path: Path) -> torch.Tensor:
        results: dict | None = dict(img_path=str(path))
        for transform in self.pipeline:
            results = transform(results)
            if results is None:
                raise ImageFolderError(f"the pipeline dropped image {path}")
        image = results["img"]
        if image.shape[:2] != (self.img_size, self.img_size):
            raise ImageFolderError(f"pipeline output of {path} is {image.shape[1]}x{image.shape[0]}, "
                                   f"expected {self.img_size}x{self.img_size}")
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))

    def __getitem__(self, index: int) -> dict:
        files_a, files_b = self.files["a"], self.files["b"]
        # unpaired: B is drawn at random (seeded by mmengine's `randomness` and worker seeds)
        return dict(inputs=dict(a=self._load(files_a[index % len(files_a)]),
                                b=self._load(files_b[random.randrange(len(files_b))])))

    def fixed_batch(self, domain: str, count: int) -> torch.Tensor:
        """The first ``count`` images of a domain resized to ``img_size`` without augmentation (sample grids)."""
        images = []
        for path in self.files[domain][:count]:
            image = read_image(path)
            if image is None:
                raise ImageFolderError(f"cannot read image {path}")
            image = cv2.resize(image, (self.img_size, self.img_size), interpolation=cv2.INTER_AREA)
            images.append(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        return torch.stack(images)
