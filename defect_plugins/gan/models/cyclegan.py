"""CycleGAN as an mmengine ``BaseModel`` trained by mmengine's ``Runner`` with two optimizers.

Unpaired image-to-image translation between domain A (here: the line whose defects are labelled)
and domain B (the new line), after Zhu et al., "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017. It is the first component of RKD-SARSN (Huang et
al., Algorithms 16(11):516, 2023, section 2.1, "Cycle GAN defective sample migration", Eqs. 1-4):
labelled defect images of one production line are translated to the look of another one.

Two generators (``a2b`` = the paper's G: X -> Y, ``b2a`` = F: Y -> X) and two discriminators
(``b`` = D_Y judges B images, ``a`` = D_X judges A images). One :meth:`train_step` does what the
paper's training loop does per iteration: a generator update on the adversarial + cycle +
identity objective with both discriminators frozen, then a discriminator update on real images
and on generated images drawn from the 50-image history pools. The two updates use the two
optimizers of an :class:`~mmengine.optim.OptimWrapperDict` named ``generators`` and
``discriminators`` (built by :class:`~defect_plugins.gan.optim.SubmoduleOptimWrapperConstructor`).
"""
from __future__ import annotations

from typing import Any

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS
from torch import nn

from defect_plugins.gan.models.image_pool import ImagePool
from defect_plugins.gan.models.losses import (
    l1_reconstruction_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)

DIRECTIONS = ("a2b", "b2a")


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for param in module.parameters():
        param.requires_grad_(flag)


@MODELS.register_module()
class CycleGAN(BaseModel):
    """Two ResNet generators, two PatchGAN discriminators, LSGAN + cycle + identity losses.

    Args:
        generator: config of both generators (default :class:`ResnetGenerator`).
        discriminator: config of both discriminators (default :class:`PatchDiscriminator`).
        adversarial_weight: weight of each generator's LSGAN term (paper: 1).
        cycle_weight: lambda of the cycle-consistency terms (paper: 10).
        identity_weight: weight of the identity terms (paper: 0.5 * lambda = 5; 0 switches them off).
        pool_size: generated images kept per domain for the discriminator updates (paper: 50).
        data_preprocessor: config of the preprocessor (default :class:`UnpairedDataPreprocessor`).
    """

    def __init__(self, generator: dict | None = None, discriminator: dict | None = None, *,
                 adversarial_weight: float = 1.0, cycle_weight: float = 10.0, identity_weight: float = 5.0,
                 pool_size: int = 50, data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None):
        # Built through mmpretrain's registry here (not mmengine's root one, which BaseModel would use):
        # this keeps the model buildable outside a Runner, where no default scope is set.
        if data_preprocessor is None or isinstance(data_preprocessor, dict):
            cfg = dict(type="UnpairedDataPreprocessor")
            cfg.update(data_preprocessor or {})
            data_preprocessor = MODELS.build(cfg)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        for name, value in (("adversarial_weight", adversarial_weight), ("cycle_weight", cycle_weight),
                            ("identity_weight", identity_weight)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"CycleGAN: {name} must be a number >= 0, got {value!r}")
        self.adversarial_weight = float(adversarial_weight)
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)
        generator = dict(type="ResnetGenerator", **(generator or {}))
        discriminator = dict(type="PatchDiscriminator", **(discriminator or {}))
        self.generators = nn.ModuleDict({name: MODELS.build(dict(generator)) for name in DIRECTIONS})
        self.discriminators = nn.ModuleDict({name: MODELS.build(dict(discriminator)) for name in ("a", "b")})
        self.pools = nn.ModuleDict({name: ImagePool(pool_size) for name in ("a", "b")})

    def init_weights(self) -> None:
        """Initialise the four networks (N(0, 0.02), Zhu et al.).

        Why explicitly: mmengine's ``BaseModule.init_weights`` only recurses into children that have
        an ``init_weights`` method, and the ``nn.ModuleDict`` holding the networks has none.
        """
        super().init_weights()
        for network in (*self.generators.values(), *self.discriminators.values()):
            network.init_weights()

    # -- inference ---------------------------------------------------------------------------------
    def translate(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Translate a batch in ``[-1, 1]`` with the ``a2b`` (G) or ``b2a`` (F) generator."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        return self.generators[direction](images)

    def forward(self, inputs: dict[str, torch.Tensor], data_samples: Any = None,
                mode: str = "tensor") -> dict[str, torch.Tensor]:
        """``tensor`` / ``predict``: translations and reconstructions of the given domains.

        Returns ``a2b`` and ``a2b2a`` for an ``a`` batch, ``b2a`` and ``b2a2b`` for a ``b`` batch.
        Training goes through :meth:`train_step`, which needs both optimizers, not through ``loss``.
        """
        if mode not in ("tensor", "predict"):
            raise ValueError(f"CycleGAN.forward: mode {mode!r} is not supported (use train_step to train; "
                             "modes: 'tensor', 'predict')")
        out = {}
        if "a" in inputs:
            out["a2b"] = self.generators["a2b"](inputs["a"])
            out["a2b2a"] = self.generators["b2a"](out["a2b"])
        if "b" in inputs:
            out["b2a"] = self.generators["b2a"](inputs["b"])
            out["b2a2b"] = self.generators["a2b"](out["b2a"])
        return out

    # -- training ----------------------------------------------------------------------------------
    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[dict, dict]:
        """The generators' objective; returns (weighted loss terms, generated images)."""
        fake_b = self.generators["a2b"](real_a)
        fake_a = self.generators["b2a"](real_b)
        rec_a = self.generators["b2a"](fake_b)
        rec_b = self.generators["a2b"](fake_a)
        losses = {
            "loss_gan_a2b": self.adversarial_weight * lsgan_generator_loss(self.discriminators["b"](fake_b)),
            "loss_gan_b2a": self.adversarial_weight * lsgan_generator_loss(self.discriminators["a"](fake_a)),
            "loss_cycle_a": self.cycle_weight * l1_reconstruction_loss(rec_a, real_a),
            "loss_cycle_b": self.cycle_weight * l1_reconstruction_loss(rec_b, real_b),
        }
        if self.identity_weight > 0:  # G(b) should leave b alone, F(a) should leave a alone
            losses["loss_idt_b"] = self.identity_weight * l1_reconstruction_loss(self.generators["a2b"](real_b), real_b)
            losses["loss_idt_a"] = self.identity_weight * l1_reconstruction_loss(self.generators["b2a"](real_a), real_a)
        return losses, {"fake_a": fake_a, "fake_b": fake_b}

    def discriminator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor,
                             fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both discriminators' LSGAN losses on real images and on (detached) generated ones."""
        return {
            "loss_d_a": lsgan_discriminator_loss(self.discriminators["a"](real_a),
                                                 self.discriminators["a"](fake_a.detach())),
            "loss_d_b": lsgan_discriminator_loss(self.discriminators["b"](real_b),
                                                 self.discriminators["b"](fake_b.detach())),
        }

    def generator_step(self, real_a: torch.Tensor, real_b: torch.Tensor,
                       optim_wrapper: OptimWrapper) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One generator update; returns (log variables, generated images)."""
        # Frozen, so the generators' backward pass leaves no gradient in the discriminators,
        # whose own optimizer step would otherwise apply it.
        _set_requires_grad(self.discriminators, False)
        try:
            with optim_wrapper.optim_context(self.generators):
                losses, fakes = self.generator_losses(real_a, real_b)
            loss, log_vars = self.parse_losses(losses)
            optim_wrapper.update_params(loss)
        finally:
            _set_requires_grad(self.discriminators, True)
        log_vars["loss_g"] = log_vars.pop("loss")
        return log_vars, fakes

    def discriminator_step(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor,
                           fake_b: torch.Tensor, optim_wrapper: OptimWrapper) -> dict[str, torch.Tensor]:
        """One discriminator update on real images and on generated images from the history pools."""
        fake_a = self.pools["a"].query(fake_a)
        fake_b = self.pools["b"].query(fake_b)
        with optim_wrapper.optim_context(self.discriminators):
            losses = self.discriminator_losses(real_a, real_b, fake_a, fake_b)
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(loss)
        log_vars["loss_d"] = log_vars.pop("loss")
        return log_vars

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapperDict) -> dict[str, torch.Tensor]:
        """Generator update, then discriminator update (Zhu et al.'s order), with the two optimizers."""
        if (not isinstance(optim_wrapper, OptimWrapperDict)
                or not {"generators", "discriminators"} <= set(optim_wrapper.keys())):
            raise TypeError("CycleGAN.train_step needs an OptimWrapperDict with 'generators' and 'discriminators' "
                            "(optim_wrapper=dict(constructor='SubmoduleOptimWrapperConstructor', generators=..., "
                            "discriminators=...) in the config)")
        data = self.data_preprocessor(data, True)
        real_a, real_b = data["inputs"]["a"], data["inputs"]["b"]
        log_vars, fakes = self.generator_step(real_a, real_b, optim_wrapper["generators"])
        log_vars.update(self.discriminator_step(real_a, real_b, fakes["fake_a"], fakes["fake_b"],
                                                optim_wrapper["discriminators"]))
        return log_vars
