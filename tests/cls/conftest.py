"""Fixtures for the mmpretrain plugin tests: tiny class-folder data sets made on the fly."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import defect_plugins.cls  # noqa: F401  (registers the components)
from defect_plugins.data import NEU_CLASSES


@pytest.fixture(scope="session")
def tiny_cls_data(tmp_path_factory) -> Path:
    """Six NEU-like classes, 4 synthetic 32x32 images each (project's own generator)."""
    from defect_plugins.data import make_classification_dataset

    return make_classification_dataset(tmp_path_factory.mktemp("cls") / "neu", per_class=4, image_size=32, seed=0)


@pytest.fixture(scope="session")
def tiny_cls_split(tiny_cls_data, tmp_path_factory) -> Path:
    from defect_plugins.cls.datasets.split import write_split

    out = tmp_path_factory.mktemp("split")
    write_split(tiny_cls_data, out, NEU_CLASSES, train_ratio=0.5, seed=0)
    return out


@pytest.fixture()
def constant_class_data(tmp_path) -> Path:
    """Each class's images are a flat grey level 30 * (label + 1), so a mixed image shows which classes went in."""
    root = tmp_path / "flat"
    for label, name in enumerate(NEU_CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / name / f"{i}.png"), np.full((16, 16, 3), 30 * (label + 1), np.uint8))
    return root
