"""AGTS noise models: statistics, strength ranges, the normalised-batch path and the pipeline transforms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS, TRANSFORMS

from defect_plugins.cls.mgjr.noise import gaussian_blur, gaussian_noise, salt_pepper_noise

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)


def _grey(value=128.0, n=2, size=128):
    return torch.full((n, 3, size, size), value)


def test_gaussian_noise_has_the_requested_std_and_zero_mean():
    g = torch.Generator().manual_seed(0)
    noisy = gaussian_noise(_grey(), torch.tensor([0.02, 0.08]), generator=g)
    diff = noisy - 128.0
    assert abs(diff[0].std().item() - 0.02 * 255) / (0.02 * 255) < 0.03
    assert abs(diff[1].std().item() - 0.08 * 255) / (0.08 * 255) < 0.03
    assert abs(diff.mean().item()) < 0.2
    assert torch.equal(noisy[:, 0], noisy[:, 2])  # grey stays grey (channel_shared)
    assert not torch.equal(gaussian_noise(_grey(), 0.05, channel_shared=False)[:, 0],
                           gaussian_noise(_grey(), 0.05, channel_shared=False)[:, 2])
    assert gaussian_noise(_grey(250.0), 0.2).max() <= 255.0  # clipped


def test_salt_and_pepper_fraction_and_balance():
    g = torch.Generator().manual_seed(0)
    noisy = salt_pepper_noise(_grey(n=1, size=256), 0.1, generator=g)[0, 0]
    salt, pepper = (noisy == 255).float().mean().item(), (noisy == 0).float().mean().item()
    assert abs(salt + pepper - 0.1) < 0.005 and abs(salt - pepper) < 0.005
    assert ((noisy == 128) | (noisy == 255) | (noisy == 0)).all()


def test_blur_keeps_the_mean_and_lowers_the_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=g) * 255
    y = gaussian_blur(x, 1.5)
    assert abs(y.mean().item() - x.mean().item()) < 1.0
    assert y.var().item() < 0.2 * x.var().item()
    assert torch.equal(gaussian_blur(x, 0.0), x)
    assert gaussian_blur(torch.rand(2, 3, 1, 1), 2.0).shape == (2, 3, 1, 1)  # 1-pixel images work


def test_agts_noise_draws_strengths_inside_the_range_on_normalised_batches():
    noise = MODELS.build(dict(type='AGTSNoise', kinds=('gaussian', ), gaussian_sigma=(0.05, 0.05)))
    pixels = _grey(n=4)
    normalised = (pixels - MEAN) / STD
    out = noise(normalised, MEAN, STD, generator=torch.Generator().manual_seed(0))
    back = out * STD + MEAN
    assert abs((back - pixels).std().item() - 0.05 * 255) < 0.4
    sp = MODELS.build(dict(type='AGTSNoise', kinds=('salt_pepper', ), sp_amount=(0.02, 0.04)))
    frac = [((sp.corrupt(_grey(n=1, size=128)) != 128).float().mean().item()) for _ in range(20)]
    assert 0.015 < min(frac) and max(frac) < 0.045
    with pytest.raises(ValueError, match="kinds"):
        MODELS.build(dict(type='AGTSNoise', kinds=('speckle', )))
    with pytest.raises(ValueError, match="gaussian_sigma"):
        MODELS.build(dict(type='AGTSNoise', gaussian_sigma=(0.3, 0.1)))


def test_agts_noise_mixes_kinds_per_sample():
    noise = MODELS.build(dict(type='AGTSNoise', sp_amount=(0.05, 0.05), gaussian_sigma=(0.05, 0.05)))
    x = torch.rand(64, 3, 16, 16) * 200 + 20
    out = noise.corrupt(x, torch.Generator().manual_seed(0))
    extremes = ((out == 0) | (out == 255)).flatten(1).float().mean(1)
    assert (extremes > 0.02).sum() > 5 and (extremes == 0).sum() > 20  # some s&p, others Gaussian/blur


def test_agts_noise_under_bf16_autocast_stays_float32_and_matches_full_precision():
    # AutocastOptimWrapper trains under bf16 autocast; the blur's convolution would otherwise return bf16
    # (and fail to write back into the float32 batch) and quantise the images
    noise = MODELS.build(dict(type='AGTSNoise', kinds=('blur', 'gaussian'), blur_sigma=(1.0, 1.0)))
    x = (torch.rand(16, 3, 16, 16) * 200 + 20 - MEAN) / STD
    reference = noise(x, MEAN, STD, generator=torch.Generator().manual_seed(0))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = noise(x, MEAN, STD, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference)


@pytest.mark.parametrize("cfg", [dict(type='AddGaussianNoise', sigma=(0.05, 0.1)),
                                 dict(type='AddSaltPepperNoise', amount=0.05),
                                 dict(type='AddGaussianBlur', sigma=1.0)])
def test_pipeline_transforms_keep_shape_and_dtype(cfg):
    img = np.full((32, 40, 3), 128, np.uint8)
    img[8:16] = 30
    out = TRANSFORMS.build(dict(cfg, seed=0))(dict(img=img.copy()))["img"]
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    again = TRANSFORMS.build(dict(cfg, seed=0))(dict(img=img.copy()))["img"]
    assert np.array_equal(out, again)  # seeded: reproducible evaluation
    untouched = TRANSFORMS.build(dict(cfg, prob=0.0))(dict(img=img.copy()))["img"]
    assert np.array_equal(untouched, img)


def test_pipeline_transform_statistics_on_uint8():
    img = np.full((200, 200, 3), 128, np.uint8)
    out = TRANSFORMS.build(dict(type='AddGaussianNoise', sigma=0.04, seed=1))(dict(img=img))["img"].astype(float)
    assert abs(out.std() - 0.04 * 255) < 0.3
    sp = TRANSFORMS.build(dict(type='AddSaltPepperNoise', amount=0.1, seed=1))(dict(img=img.copy()))["img"]
    assert abs((sp[..., 0] != 128).mean() - 0.1) < 0.01
    with pytest.raises(ValueError, match="amount"):
        TRANSFORMS.build(dict(type='AddSaltPepperNoise', amount=1.5))


def test_agts_noise_generator_lives_on_the_batch_device_and_a_seed_gives_a_private_stream():
    x = torch.rand(6, 3, 16, 16) * 255
    noise = MODELS.build(dict(type='AGTSNoise', seed=5))
    assert noise.generator_for(x.device).device == x.device
    before = torch.get_rng_state()
    first = noise.corrupt(x)
    assert torch.equal(torch.get_rng_state(), before)  # a seeded stream leaves the global RNG alone
    assert torch.equal(MODELS.build(dict(type='AGTSNoise', seed=5)).corrupt(x), first)  # same seed, same draws
    assert not torch.equal(noise.corrupt(x), first)  # the stream moves on
    unseeded = MODELS.build(dict(type='AGTSNoise'))
    torch.manual_seed(1)
    a = unseeded.corrupt(x)
    torch.manual_seed(1)
    assert torch.equal(unseeded.corrupt(x), a)  # seed=None follows the global seed (randomness.seed)
    with pytest.raises(ValueError, match="seed must be None or a non-negative int"):
        MODELS.build(dict(type='AGTSNoise', seed=-1))


def test_a_generator_on_another_device_is_a_clear_error():
    cpu_generator = torch.Generator().manual_seed(0)
    on_meta = torch.empty(2, 3, 8, 8, device="meta")
    for call in (lambda: gaussian_noise(on_meta, 0.1, generator=cpu_generator),
                 lambda: salt_pepper_noise(on_meta, 0.1, generator=cpu_generator),
                 lambda: MODELS.build(dict(type='AGTSNoise')).corrupt(on_meta, cpu_generator)):
        with pytest.raises(ValueError, match="generator is on cpu but the images are on meta"):
            call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_agts_noise_on_cuda_uses_a_cuda_generator():
    x = (torch.rand(4, 3, 16, 16) * 255).cuda()
    noise = MODELS.build(dict(type='AGTSNoise', seed=0))
    out = noise.corrupt(x)
    assert out.device == x.device and noise.generator_for(x.device).device.type == "cuda"
    assert torch.equal(MODELS.build(dict(type='AGTSNoise', seed=0)).corrupt(x), out)
