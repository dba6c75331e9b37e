"""Held-out corruptions: shape, dtype, effect, determinism under a seed; kept out of AGTS (their use in the noise
study: experiments/tests/test_noise_robustness.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS, TRANSFORMS

from defect_plugins.cls.mgjr.corruptions import (HELD_OUT_KINDS, jpeg_compress, motion_blur, motion_blur_kernel,
                                                 reduce_contrast, speckle_noise)
from defect_plugins.cls.mgjr.noise import NOISE_KINDS


def _image(shape=(16, 20, 3)):
    """A tiny grey image with a bright bar and a dark square (edges for blur / JPEG to act on)."""
    img = np.full(shape, 120, np.uint8)
    img[4:7] = 220
    img[10:14, 3:8] = 30
    return img


TRANSFORM_CFGS = {
    "speckle": dict(type='AddSpeckleNoise', sigma=0.3),
    "jpeg": dict(type='JPEGCompression', quality=20),
    "motion_blur": dict(type='AddMotionBlur', length=5),
    "contrast": dict(type='ReduceContrast', reduction=0.5),
}


@pytest.mark.parametrize("kind", HELD_OUT_KINDS)
@pytest.mark.parametrize("shape", [(16, 20, 3), (16, 20)])
def test_each_held_out_corruption_keeps_shape_and_dtype_changes_the_image_and_repeats_under_a_seed(kind, shape):
    img = _image(shape)
    out = TRANSFORMS.build(dict(TRANSFORM_CFGS[kind], seed=3))(dict(img=img.copy()))["img"]
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img.astype(int)).sum() > 0
    again = TRANSFORMS.build(dict(TRANSFORM_CFGS[kind], seed=3))(dict(img=img.copy()))["img"]
    assert np.array_equal(out, again)
    untouched = TRANSFORMS.build(dict(TRANSFORM_CFGS[kind], prob=0.0, seed=3))(dict(img=img.copy()))["img"]
    assert np.array_equal(untouched, img)


def test_random_corruptions_differ_between_seeds_and_keep_grey_images_grey():
    img = _image()
    a = TRANSFORMS.build(dict(type='AddSpeckleNoise', sigma=0.3, seed=1))(dict(img=img.copy()))["img"]
    b = TRANSFORMS.build(dict(type='AddSpeckleNoise', sigma=0.3, seed=2))(dict(img=img.copy()))["img"]
    assert not np.array_equal(a, b)
    assert np.array_equal(a[..., 0], a[..., 2])  # one draw per pixel for all channels
    m1 = TRANSFORMS.build(dict(type='AddMotionBlur', length=7, seed=1))
    angles = {float(np.random.default_rng(s).uniform(0, 180)) for s in (1, 2)}
    assert len(angles) == 2 and m1(dict(img=img.copy()))["img"].shape == img.shape


def test_speckle_is_multiplicative_and_contrast_keeps_the_mean():
    rng = np.random.default_rng(0)
    dark = np.zeros((8, 8, 3), np.uint8)
    assert np.array_equal(speckle_noise(dark, 0.5, rng), dark)  # x + x*n: black stays black
    flat = np.full((64, 64), 100, np.uint8)
    noisy = speckle_noise(flat, 0.2, np.random.default_rng(0)).astype(float)
    assert abs(noisy.std() - 0.2 * 100) < 1.5 and abs(noisy.mean() - 100) < 1.5
    img = _image().astype(np.float32)
    reduced = reduce_contrast(img, 0.5)
    assert reduced.dtype == np.float32 and abs(reduced.mean() - img.mean()) < 1e-3
    assert np.isclose(reduced.std(), 0.5 * img.std(), rtol=1e-4)
    assert np.array_equal(reduce_contrast(_image(), 0.0), _image())
    assert np.ptp(reduce_contrast(_image(), 1.0)) == 0


def test_jpeg_quality_orders_the_error_and_motion_kernel_is_a_normalised_line():
    img = _image((32, 32, 3))
    err = {q: np.abs(jpeg_compress(img, q).astype(int) - img.astype(int)).mean() for q in (95, 20, 5)}
    assert err[95] < err[20] < err[5]
    for angle in (0.0, 45.0, 90.0):
        kernel = motion_blur_kernel(7, angle)
        assert kernel.shape == (7, 7) and np.isclose(kernel.sum(), 1.0) and kernel[3, 3] > 0
    horizontal = motion_blur_kernel(5, 0.0)
    assert horizontal[2].sum() > 0.99  # all weight on the middle row
    stripes = np.zeros((9, 9), np.uint8)
    stripes[:, ::2] = 255
    assert np.array_equal(motion_blur(stripes, 5, 90.0), stripes)  # blur along the stripes changes nothing
    assert np.array_equal(motion_blur(stripes, 1, 30.0), stripes)


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="quality must be an int in 1..100"):
        TRANSFORMS.build(dict(type='JPEGCompression', quality=0))
    with pytest.raises(ValueError, match="length must be an int >= 1"):
        TRANSFORMS.build(dict(type='AddMotionBlur', length=2.5))
    with pytest.raises(ValueError, match=r"reduction must lie in \[0, 1\]"):
        TRANSFORMS.build(dict(type='ReduceContrast', reduction=1.5))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        TRANSFORMS.build(dict(type='AddSpeckleNoise', sigma=-0.1))
    with pytest.raises(ValueError, match="HxW or HxWxC"):
        speckle_noise(np.zeros(5, np.uint8), 0.1, np.random.default_rng(0))


def test_held_out_kinds_are_never_training_kinds():
    assert not set(HELD_OUT_KINDS) & set(NOISE_KINDS)
    for kind in HELD_OUT_KINDS:
        with pytest.raises(ValueError, match="kinds must be a non-empty subset"):
            MODELS.build(dict(type='AGTSNoise', kinds=(kind, )))


def test_training_noise_and_held_out_transforms_work_in_one_pipeline_on_a_tensor_free_image():
    img = _image()
    results = dict(img=img.copy())
    for cfg in (dict(type='AddGaussianNoise', sigma=0.05, seed=0), dict(type='JPEGCompression', quality=20)):
        results = TRANSFORMS.build(cfg)(results)
    assert results["img"].shape == img.shape and results["img"].dtype == np.uint8
    assert torch.from_numpy(results["img"]).float().std() > 0
