"""Unpaired two-folder dataset and its input checks (errors name the path)."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from defect_plugins.gan.datasets import ImageFolderError, UnpairedImageDataset


def test_items_are_unpaired_uint8_crops(domain_a, domain_b):
    dataset = UnpairedImageDataset(str(domain_a), str(domain_b), img_size=32)
    assert len(dataset) == 12  # max of the two folders (class sub-folders of A are searched)
    item = dataset[5]["inputs"]
    assert item["a"].shape == item["b"].shape == (3, 32, 32) and item["a"].dtype == torch.uint8
    fixed = dataset.fixed_batch("b", 3)
    assert fixed.shape == (3, 3, 32, 32) and torch.equal(fixed, dataset.fixed_batch("b", 3))  # no augmentation


def test_bad_folders_give_errors_naming_the_path(domain_a, tmp_path):
    with pytest.raises(ImageFolderError, match=str(tmp_path / "missing")):
        UnpairedImageDataset(str(tmp_path / "missing"), str(domain_a))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ImageFolderError, match=f"{tmp_path / 'empty'} holds no images"):
        UnpairedImageDataset(str(domain_a), str(tmp_path / "empty"))

    corrupt = tmp_path / "corrupt"
    shutil.copytree(domain_a, corrupt)
    (corrupt / "scratches" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(ImageFolderError, match=r"1 file\(s\) in .* cannot be read.*broken\.png"):
        UnpairedImageDataset(str(corrupt), str(domain_a))

    mixed = tmp_path / "mixed"
    shutil.copytree(domain_a, mixed)
    cv2.imwrite(str(mixed / "zz_big.png"), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ImageFolderError, match=r"different sizes .* is 32x32, .*zz_big\.png is 40x40"):
        UnpairedImageDataset(str(mixed), str(domain_a))
    assert len(UnpairedImageDataset(str(mixed), str(domain_a), allow_mixed_sizes=True)) == 13
    with pytest.raises(ImageFolderError, match="multiple of 4"):
        UnpairedImageDataset(str(domain_a), str(domain_a), img_size=30)
