"""CycleGAN parts (Zhu et al. 2017): shapes, receptive field, losses, the history pool, one train_step."""
from __future__ import annotations

import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from defect_plugins.gan.models import ImagePool, PatchDiscriminator, ResnetGenerator
from defect_plugins.gan.models.losses import l1_reconstruction_loss, lsgan_discriminator_loss, lsgan_generator_loss
from tests.fixtures.gan import TINY_MODEL

ADAM = dict(optimizer=dict(type="Adam", lr=2e-4, betas=(0.5, 0.999)))


def _tiny_model_and_optim() -> tuple[nn.Module, OptimWrapperDict]:
    torch.manual_seed(0)
    model = MODELS.build(dict(TINY_MODEL))
    model.init_weights()
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type="SubmoduleOptimWrapperConstructor", optim_wrapper_cfg=dict(generators=ADAM, discriminators=ADAM)))
    return model, constructor(model)


def _batch(n: int = 2, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(1)
    return dict(inputs=dict(a=torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
                            b=torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)))


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(p, before[k]) for k, p in module.named_parameters())


def test_generator_layout_shapes_and_range():
    gen = ResnetGenerator(base_channels=8, num_blocks=2)
    gen.init_weights()
    out = gen(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1.0  # tanh output
    convs = [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-8, d16, d32, 2 x R32 (2 convs each), u16, u8, c7s1-3
    assert [(c.kernel_size[0], c.out_channels) for c in convs] == [
        (7, 8), (3, 16), (3, 32), (3, 32), (3, 32), (3, 32), (3, 32), (3, 16), (3, 8), (7, 3)]
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in gen.modules()) == 6  # c7s1 x 2 + 2 per block
    assert 0.015 < convs[3].weight.std().item() < 0.025  # N(0, 0.02), not the ConvModules' Kaiming init
    bigger = ResnetGenerator(base_channels=8, num_blocks=4)
    assert sum(p.numel() for p in bigger.parameters()) > sum(p.numel() for p in gen.parameters())
    with pytest.raises(ValueError, match="divisible by 4"):
        gen(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="num_blocks"):
        ResnetGenerator(num_blocks=-1)


def test_patch_discriminator_is_70x70_patchgan():
    disc = PatchDiscriminator(base_channels=4)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 1]  # C64-C128-C256-C512 (scaled) + 1-channel output
    field = 1
    for conv in reversed(convs):  # receptive field of one output value
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    assert field == 70
    assert disc(torch.randn(2, 3, 32, 32)).shape == (2, 1, 2, 2)
    assert disc(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_lsgan_cycle_and_identity_losses():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert lsgan_generator_loss(ones).item() == 0.0 and lsgan_generator_loss(zeros).item() == 1.0
    assert lsgan_discriminator_loss(ones, zeros).item() == 0.0
    assert lsgan_discriminator_loss(zeros, ones).item() == 1.0  # halved sum of two unit errors
    assert l1_reconstruction_loss(torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)).item() == 0.5


def test_generator_losses_are_weighted_as_configured():
    torch.manual_seed(0)
    base = MODELS.build(dict(TINY_MODEL))
    heavy = MODELS.build(dict(TINY_MODEL, cycle_weight=20.0, identity_weight=0.0))
    heavy.load_state_dict(base.state_dict())
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        l1, _ = base.generator_losses(a, b)
        l2, fakes = heavy.generator_losses(a, b)
    assert set(l1) == {"loss_gan_a2b", "loss_gan_b2a", "loss_cycle_a", "loss_cycle_b", "loss_idt_a", "loss_idt_b"}
    assert set(l2) == {"loss_gan_a2b", "loss_gan_b2a", "loss_cycle_a", "loss_cycle_b"}  # identity off
    assert (torch.allclose(l2["loss_cycle_a"], 2 * l1["loss_cycle_a"])
            and torch.equal(l2["loss_gan_a2b"], l1["loss_gan_a2b"]))
    assert fakes["fake_b"].shape == a.shape


def test_image_pool_history_and_checkpoint_state():
    torch.manual_seed(0)
    assert torch.equal(ImagePool(0).query(torch.ones(2, 3, 4, 4)), torch.ones(2, 3, 4, 4))
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    assert torch.equal(pool.query(first), first) and int(pool.num_stored) == 3  # filling: returned as given
    returned_old, seen = 0, {0.0, 1.0, 2.0}
    for step in range(20):
        new = torch.full((1, 3, 4, 4), 100.0 + step)
        out = pool.query(new)
        returned_old += int(not torch.equal(out, new))
        assert float(out[0, 0, 0, 0]) in seen | {100.0 + step}  # the new image or one queried before
        seen.add(100.0 + step)
    assert 3 <= returned_old <= 17  # about half the queries answer from the history
    fresh = ImagePool(3)  # an empty pool adopts the stored shape and content from a checkpoint
    fresh.load_state_dict(pool.state_dict())
    assert torch.equal(fresh.images, pool.images) and int(fresh.num_stored) == 3
    with pytest.raises(ValueError, match="cannot join"):
        pool.query(torch.zeros(1, 3, 8, 8))


def test_train_step_updates_both_optimizers_and_only_their_own_networks():
    model, optim = _tiny_model_and_optim()
    assert isinstance(optim, OptimWrapperDict) and set(optim.keys()) == {"generators", "discriminators"}
    g_params = {id(p) for p in model.generators.parameters()}
    assert {id(p) for group in optim["generators"].optimizer.param_groups for p in group["params"]} == g_params

    data = model.data_preprocessor(_batch(), True)["inputs"]
    assert data["a"].min() >= -1 and data["a"].max() <= 1 and data["a"].dtype == torch.float32
    g0, d0 = _snapshot(model.generators), _snapshot(model.discriminators)
    log, fakes = model.generator_step(data["a"], data["b"], optim["generators"])
    assert _changed(model.generators, g0) and not _changed(model.discriminators, d0)
    assert all(p.grad is None or not p.grad.any() for p in model.discriminators.parameters())
    assert all(p.requires_grad for p in model.discriminators.parameters())  # unfrozen again

    g1 = _snapshot(model.generators)
    log_d = model.discriminator_step(data["a"], data["b"], fakes["fake_a"], fakes["fake_b"], optim["discriminators"])
    assert _changed(model.discriminators, d0) and not _changed(model.generators, g1)
    assert {"loss_g", "loss_cycle_a", "loss_idt_b"} <= set(log) and {"loss_d", "loss_d_a", "loss_d_b"} <= set(log_d)
    assert int(model.pools["a"].num_stored) == 2

    g2, d2 = _snapshot(model.generators), _snapshot(model.discriminators)
    log_vars = model.train_step(_batch(), optim)  # the Runner's entry point: both updates, one call
    assert _changed(model.generators, g2) and _changed(model.discriminators, d2)
    assert all(torch.isfinite(v) for v in log_vars.values()) and {"loss_g", "loss_d"} <= set(log_vars)
    with pytest.raises(TypeError, match="OptimWrapperDict"):
        model.train_step(_batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))


def test_forward_modes_and_constructor_errors():
    model, _ = _tiny_model_and_optim()
    inputs = model.data_preprocessor(_batch(1), False)["inputs"]
    out = model(inputs, mode="tensor")
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (1, 3, 32, 32) for k in ("a2b", "a2b2a", "b2a", "b2a2b")}
    with pytest.raises(ValueError, match="train_step"):
        model(inputs, mode="loss")
    with pytest.raises(ValueError, match="no sub-module 'generator'"):
        OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type="SubmoduleOptimWrapperConstructor",
                                              optim_wrapper_cfg=dict(generator=ADAM)))(model)
    with pytest.raises(ValueError, match="cycle_weight"):
        MODELS.build(dict(TINY_MODEL, cycle_weight=-1))
