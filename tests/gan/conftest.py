"""Tiny synthetic domains for the CycleGAN tests: the project's steel generator at two sizes and looks."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import defect_plugins.gan  # noqa: F401  (registers the components)


@pytest.fixture(scope="session")
def domain_a(tmp_path_factory) -> Path:
    """Domain A: six NEU-like classes, 2 images each, 32 px (labelled class folders)."""
    from defect_plugins.data import make_classification_dataset

    return make_classification_dataset(tmp_path_factory.mktemp("gan") / "line_a", per_class=2, image_size=32, seed=0)


@pytest.fixture(scope="session")
def domain_b(tmp_path_factory) -> Path:
    """Domain B: another seed at 48 px, darker and lower in contrast (another camera), flat folder."""
    from defect_plugins.data import make_classification_dataset

    src = make_classification_dataset(tmp_path_factory.mktemp("gan") / "b_src", per_class=2, image_size=48, seed=1)
    out = tmp_path_factory.mktemp("gan") / "line_b"
    out.mkdir()
    for i, path in enumerate(sorted(src.rglob("*.png"))):
        image = cv2.imread(str(path))
        assert cv2.imwrite(str(out / f"b_{i:02d}.png"), (image.astype(np.float32) * 0.5 + 20).astype(np.uint8))
    return out


TINY_MODEL = dict(type="CycleGAN", generator=dict(base_channels=4, num_blocks=1),
                  discriminator=dict(base_channels=4), pool_size=3)
