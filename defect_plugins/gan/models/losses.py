"""CycleGAN loss terms (Zhu et al., ICCV 2017, Eqs. 1-3 and section 5.2; RKD-SARSN, section 2.1, Eqs. 1-4).

* adversarial: Zhu et al. write it as the log-likelihood GAN loss (their Eq. 1) but train with the
  least-squares form (LSGAN, Mao et al. 2017; their section 4): the generator minimises
  ``E[(D(G(x)) - 1)^2]``, the discriminator ``E[(D(y) - 1)^2] + E[D(G(x))^2]``, halved for the
  discriminator so that it learns slower than the generator;
* cycle consistency (their Eq. 2): ``E[|F(G(x)) - x|_1] + E[|G(F(y)) - y|_1]``;
* identity (their section 5.2, after Taigman et al.): ``E[|G(y) - y|_1] + E[|F(x) - x|_1]``, which
  keeps the colour and grey-level composition of an image that already looks like the target.

The full objective (their Eq. 3, with the identity term added) weights these terms; the RKD-SARSN
paper's Eqs. 1-4 are the same adversarial, cycle-consistency and identity terms and their sum.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares adversarial loss of a generator: its outputs should be scored as real (1)."""
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares loss of a discriminator (real -> 1, generated -> 0), halved as in Zhu et al."""
    real = F.mse_loss(real_scores, torch.ones_like(real_scores))
    fake = F.mse_loss(fake_scores, torch.zeros_like(fake_scores))
    return 0.5 * (real + fake)


def l1_reconstruction_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference; the cycle-consistency and identity terms are both of this form."""
    return F.l1_loss(reconstructed, original)
