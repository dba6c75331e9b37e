"""Anomaly simulation (thesis eq. 3.1) and the pad-to-square resize."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from defect_plugins.seg.transforms import PadSquareResize, SimulateAnomaly, pad_square_resize


def _image(h=48, w=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 200, (h, w, 3), dtype=np.uint8)


def _check_formula(transform: SimulateAnomaly, image: np.ndarray) -> None:
    out, mask, texture, beta = transform.simulate(image)
    assert set(np.unique(mask)) <= {0, 1} and mask.any(), "the Perlin mask must be binary and non-empty"
    m = mask[..., None].astype(np.float64)
    expected = image * (1 - m) + beta * (image * m) + (1 - beta) * (texture * m)
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5 + 1e-6  # rounding to uint8 only
    assert np.array_equal(out[mask == 0], image[mask == 0]), "pixels outside P must be untouched"
    assert 0.0 <= beta <= 0.8


def test_mask_and_blend_follow_formula_procedural_textures():
    torch.manual_seed(0)
    transform = SimulateAnomaly(texture_dir=None)
    assert transform.textures == []
    for seed in range(3):
        _check_formula(transform, _image(seed=seed))


def test_mask_and_blend_follow_formula_texture_folder(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"tex{i}.png"), rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    torch.manual_seed(0)
    transform = SimulateAnomaly(texture_dir=str(tmp_path))
    assert len(transform.textures) == 3
    _check_formula(transform, _image())


def test_threshold_controls_mask_area():
    torch.manual_seed(0)
    small = SimulateAnomaly(threshold_range=(0.85, 0.85)).perlin_mask(64, 64).mean()
    torch.manual_seed(0)
    large = SimulateAnomaly(threshold_range=(0.3, 0.3)).perlin_mask(64, 64).mean()
    assert large > small > 0


def test_transform_keeps_clean_image_and_is_deterministic_per_path():
    transform = SimulateAnomaly(deterministic=True, seed=3)
    image = _image()
    a = transform.transform({"img": image.copy(), "img_path": "a.png"})
    b = transform.transform({"img": image.copy(), "img_path": "a.png"})
    c = transform.transform({"img": image.copy(), "img_path": "b.png"})
    assert np.array_equal(a["clean_img"], image)
    assert np.array_equal(a["img"], b["img"]) and not np.array_equal(a["img"], c["img"])
    assert a["gt_anomaly_mask"].shape == image.shape[:2]


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="texture_dir"):
        SimulateAnomaly(texture_dir=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no images"):
        SimulateAnomaly(texture_dir=str(tmp_path))
    with pytest.raises(ValueError, match="beta_range"):
        SimulateAnomaly(beta_range=(0.5, 0.2))


def test_pad_then_resize_keeps_aspect():
    image = np.zeros((40, 120, 3), np.uint8)
    image[10:20, 30:60] = 255  # a 10 x 30 block
    results = PadSquareResize(scale=60).transform({"img": image, "img_path": "x.png", "seg_fields": []})
    out = results["img"]
    assert out.shape == (60, 60, 3)
    ys, xs = np.nonzero(out[..., 0] > 127)
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (5, 15)  # factor 0.5 on both axes
    assert results["img_padding_size"] == [0, 0, 0, 40]  # 80 padded rows at the bottom -> 40 after resize
    square, pad = pad_square_resize(np.zeros((30, 10), np.uint8), 30)
    assert square.shape == (30, 30) and pad == (0, 20)


def test_label_maps_follow_and_mismatched_mask_is_rejected():
    image = _image(32, 64)
    label = np.zeros((32, 64), np.uint8)
    label[:, :8] = 1
    results = PadSquareResize(scale=32).transform(
        {"img": image, "gt_seg_map": label.copy(), "seg_fields": ["gt_seg_map"], "img_path": "i.png"})
    assert set(np.unique(results["gt_seg_map"])) == {0, 1, 255}  # padding gets the ignore label
    with pytest.raises(ValueError, match=r"gt_seg_map from 'm\.png' has size \(16, 64\).*'i\.png'"):
        PadSquareResize(scale=32).transform({"img": image, "gt_seg_map": label[:16], "seg_fields": ["gt_seg_map"],
                                             "img_path": "i.png", "seg_map_path": "m.png"})
