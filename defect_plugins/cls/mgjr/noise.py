"""Noise models for AGTS (anchor-guided training) and for the noise-robustness evaluation.

MGJR's AGTS (Meng et al., J. Industrial Information Integration 48:100958, 2025) feeds the
student a *noisy* view of an image while the teacher sees the clean one; the abstract does not
list the corruptions. The three used here are the standard sensor / optics degradations of
the image-corruption literature (Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019) and of scikit-image's
``random_noise``:

* **Gaussian**: ``x + N(0, sigma^2)``, ``sigma`` given as a fraction of the 0-255 range.
* **Salt-and-pepper**: a fraction ``amount`` of the pixels is set to 0 or 255 with equal
  probability (scikit-image's ``s&p`` with ``salt_vs_pepper=0.5``).
* **Blur**: Gaussian blur with standard deviation ``sigma`` pixels (kornia's
  ``gaussian_blur2d``, replicate border so that 1-pixel images work).

Every function works on float tensors ``(B, C, H, W)`` in the 0-255 range and draws one
strength per sample. Random draws take an optional ``torch.Generator``, which must live on the
images' device (a CPU generator cannot drive CUDA sampling; the mismatch is an error naming both
devices). :class:`AGTSNoise` makes that generator itself, on the batch's device (see its
``seed``). ``channel_shared=True`` (default) draws one noise value per pixel for all channels:
NEU-CLS and most steel-line cameras are grayscale stored as R=G=B, where per-channel noise would
create colour the sensor cannot produce.

Two registered front ends share these functions:

* :class:`AGTSNoise` (``MODELS``) corrupts a normalised batch inside the classifier (it
  de-normalises with the data preprocessor's mean/std, corrupts, clips, re-normalises);
* :class:`AddGaussianNoise`, :class:`AddSaltPepperNoise`, :class:`AddGaussianBlur`
  (``TRANSFORMS``) corrupt a uint8 image in a data pipeline (robustness evaluation).

The corruptions held out of training (speckle, JPEG, motion blur, contrast) are in
:mod:`defect_plugins.cls.mgjr.corruptions`; :class:`AGTSNoise` refuses them.
"""
from __future__ import annotations

import math
from typing import Sequence

import kornia
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.registry import MODELS, TRANSFORMS
from torch import nn

NOISE_KINDS = ("gaussian", "salt_pepper", "blur")


def _check_range(name: str, value: Sequence[float] | float, low: float, high: float) -> tuple[float, float]:
    lo, hi = (float(value), float(value)) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must be a number or a (min, max) range inside [{low}, {high}], got {value!r}")
    return lo, hi


def _per_sample(strength: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(strength, dtype=x.dtype, device=x.device)
    return s.expand(x.shape[0]) if s.ndim == 0 else s


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cpu":
        return True
    current = torch.cuda.current_device() if a.type == "cuda" and torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def check_generator(generator: torch.Generator | None, x: torch.Tensor) -> None:
    """Raise ValueError unless ``generator`` is None or lives on ``x``'s device."""
    if generator is not None and not _same_device(torch.device(generator.device), x.device):
        raise ValueError(f"noise generator is on {generator.device} but the images are on {x.device}: create it "
                         f"on the images' device, torch.Generator(device=images.device)")


def _noise_shape(x: torch.Tensor, channel_shared: bool) -> tuple[int, ...]:
    b, c, h, w = x.shape
    return (b, 1, h, w) if channel_shared else (b, c, h, w)


def gaussian_noise(x: torch.Tensor, sigma: torch.Tensor | float, *, channel_shared: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Add zero-mean Gaussian noise, std ``sigma * 255`` per sample; result clipped to 0-255."""
    check_generator(generator, x)
    s = _per_sample(sigma, x).view(-1, 1, 1, 1) * 255.0
    noise = torch.randn(_noise_shape(x, channel_shared), generator=generator, dtype=x.dtype, device=x.device)
    return (x + noise * s).clamp(0.0, 255.0)


def salt_pepper_noise(x: torch.Tensor, amount: torch.Tensor | float, *, channel_shared: bool = True,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a fraction ``amount`` of pixels to 0 (pepper) or 255 (salt), half each on average."""
    check_generator(generator, x)
    a = _per_sample(amount, x).view(-1, 1, 1, 1)
    shape = _noise_shape(x, channel_shared)
    hit = torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device) < a
    salt = torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device) < 0.5
    value = salt.to(x.dtype) * 255.0
    return torch.where(hit.expand_as(x), value.expand_as(x), x)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Gaussian blur with per-sample ``sigma`` (pixels); kernel ``2*ceil(3*max sigma)+1``."""
    s = _per_sample(sigma, x)
    if float(s.max()) <= 0:
        return x
    k = 2 * math.ceil(3.0 * float(s.max())) + 1
    sig = s.clamp_min(1e-3).view(-1, 1).expand(-1, 2).contiguous()
    return kornia.filters.gaussian_blur2d(x, (k, k), sig, border_type="replicate")


@MODELS.register_module()
class AGTSNoise(nn.Module):
    """Random corruption of a normalised batch (the student's view in AGTS).

    Each sample gets one kind drawn uniformly from ``kinds`` and a strength drawn uniformly
    from that kind's range.

    Args:
        kinds: subset of ``("gaussian", "salt_pepper", "blur")``.
        gaussian_sigma: std range as a fraction of 0-255 (0.02-0.12: mild to strong sensor noise).
        sp_amount: fraction of corrupted pixels (0.01-0.08).
        blur_sigma: blur std in pixels (0.5-1.5, for 64-224 px inputs).
        channel_shared: one noise value per pixel for all channels (grayscale sensors).
        seed: ``None`` (default): every call draws one seed from the global torch RNG (which the
            Runner seeds with ``randomness.seed``) and samples with a fresh generator on the
            batch's device seeded with it, so the noise follows the run's seed and re-seeding the
            global RNG repeats a draw. An ``int``: a private stream per device, seeded with
            ``seed + rank`` (distributed ranks differ), independent of the global RNG (the noise
            then does not shift any other random draw of the run). Project's choice; the paper
            says nothing about seeding. The private stream is not checkpointed: resuming restarts it.
    """

    def __init__(self, kinds: Sequence[str] = NOISE_KINDS, gaussian_sigma=(0.02, 0.12), sp_amount=(0.01, 0.08),
                 blur_sigma=(0.5, 1.5), channel_shared: bool = True, seed: int | None = None):
        super().__init__()
        bad = [k for k in kinds if k not in NOISE_KINDS]
        if bad or not kinds:
            raise ValueError(f"AGTSNoise: kinds must be a non-empty subset of {NOISE_KINDS}, got {tuple(kinds)}")
        self.kinds = tuple(kinds)
        self.ranges = {
            "gaussian": _check_range("gaussian_sigma", gaussian_sigma, 0.0, 1.0),
            "salt_pepper": _check_range("sp_amount", sp_amount, 0.0, 1.0),
            "blur": _check_range("blur_sigma", blur_sigma, 0.0, 20.0),
        }
        self.channel_shared = channel_shared
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"AGTSNoise: seed must be None or a non-negative int, got {seed!r}")
        self.seed = seed
        self._streams: dict[str, torch.Generator] = {}

    def generator_for(self, device: torch.device | str) -> torch.Generator:
        """The generator the next draw on ``device`` uses (see ``seed``); it lives on ``device``."""
        device = torch.device(device)
        if self.seed is None:
            return torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1, ))))
        key = str(device)
        if key not in self._streams:
            from mmengine.dist import get_rank

            self._streams[key] = torch.Generator(device=device).manual_seed(self.seed + get_rank())
        return self._streams[key]

    def corrupt(self, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Corrupt a 0-255 batch; returns a new tensor of the same shape.

        ``generator`` (default: :meth:`generator_for` the batch's device) must be on ``pixels``' device.
        """
        generator = self.generator_for(pixels.device) if generator is None else generator
        check_generator(generator, pixels)
        b, device = pixels.shape[0], pixels.device
        choice = torch.randint(len(self.kinds), (b, ), generator=generator, device=device)
        out = pixels.clone()
        for index, kind in enumerate(self.kinds):
            rows = (choice == index).nonzero().flatten()
            if rows.numel() == 0:
                continue
            lo, hi = self.ranges[kind]
            strength = lo + (hi - lo) * torch.rand(rows.numel(), generator=generator, device=device,
                                                   dtype=pixels.dtype)
            part = pixels[rows]
            if kind == "gaussian":
                part = gaussian_noise(part, strength, channel_shared=self.channel_shared, generator=generator)
            elif kind == "salt_pepper":
                part = salt_pepper_noise(part, strength, channel_shared=self.channel_shared, generator=generator)
            else:
                part = gaussian_blur(part, strength)
            out[rows] = part
        return out

    def forward(self, inputs: torch.Tensor, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Corrupt a batch normalised as ``(x - mean) / std`` (None: already 0-255).

        The corruption is input synthesis, not part of the network: it runs in the inputs' dtype with
        autocast off, so that under bf16 mixed precision (``AutocastOptimWrapper``) the blur's
        convolution neither quantises the images to 8 mantissa bits nor returns another dtype.
        """
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            if mean is None or std is None:
                return self.corrupt(inputs, generator)
            pixels = inputs * std + mean
            return (self.corrupt(pixels, generator) - mean) / std


class _ImageNoise(BaseTransform):
    """Shared code of the pipeline transforms: uint8/float HWC image -> corrupted image, same dtype."""

    def __init__(self, strength, name: str, high: float, prob: float = 1.0, seed: int | None = None):
        self.range = _check_range(name, strength, 0.0, high)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must lie in [0, 1], got {prob}")
        self.prob = prob
        self.rng = np.random.default_rng(seed)

    def apply(self, x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        if self.rng.random() >= self.prob:
            return results
        img = results["img"]
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        strength = float(self.rng.uniform(*self.range))
        x = torch.from_numpy(np.ascontiguousarray(img)).float()
        x = x.unsqueeze(-1) if x.ndim == 2 else x
        y = self.apply(x.permute(2, 0, 1).unsqueeze(0), strength, gen)[0].permute(1, 2, 0)
        y = y[..., 0] if img.ndim == 2 else y
        results["img"] = (y.round().clamp(0, 255).numpy().astype(img.dtype) if img.dtype == np.uint8
                          else y.numpy().astype(img.dtype))
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(range={self.range}, prob={self.prob})"


@TRANSFORMS.register_module()
class AddGaussianNoise(_ImageNoise):
    """Pipeline transform: Gaussian noise, ``sigma`` (fraction of 0-255) fixed or a (min, max) range."""

    def __init__(self, sigma=0.05, prob: float = 1.0, channel_shared: bool = True, seed: int | None = None):
        super().__init__(sigma, "sigma", 1.0, prob, seed)
        self.channel_shared = channel_shared

    def apply(self, x, strength, generator):
        return gaussian_noise(x, strength, channel_shared=self.channel_shared, generator=generator)


@TRANSFORMS.register_module()
class AddSaltPepperNoise(_ImageNoise):
    """Pipeline transform: salt-and-pepper noise on a fraction ``amount`` of the pixels."""

    def __init__(self, amount=0.02, prob: float = 1.0, channel_shared: bool = True, seed: int | None = None):
        super().__init__(amount, "amount", 1.0, prob, seed)
        self.channel_shared = channel_shared

    def apply(self, x, strength, generator):
        return salt_pepper_noise(x, strength, channel_shared=self.channel_shared, generator=generator)


@TRANSFORMS.register_module()
class AddGaussianBlur(_ImageNoise):
    """Pipeline transform: Gaussian blur with ``sigma`` pixels (fixed or a (min, max) range)."""

    def __init__(self, sigma=1.0, prob: float = 1.0, seed: int | None = None):
        super().__init__(sigma, "sigma", 20.0, prob, seed)

    def apply(self, x, strength, generator):
        return gaussian_blur(x, strength)
