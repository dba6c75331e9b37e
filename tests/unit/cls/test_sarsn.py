"""SARSN backbone: threshold function, shapes, parameter counts against mmpretrain's ResNet."""
from __future__ import annotations

import pytest
import torch
from mmpretrain.models import ResNet
from mmpretrain.registry import MODELS

from defect_plugins.cls.backbones.sarsn import SARSN, AdaptiveShrinkage, directional_threshold


def test_threshold_values_and_gradient_by_hand():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5], requires_grad=True)
    tau, delta = torch.tensor(1.0), torch.tensor(0.5, requires_grad=True)
    y = directional_threshold(x, tau, delta)
    # delta * (x + tau) below -tau, 0 inside [-tau, tau], delta * (x - tau) above tau
    assert torch.allclose(y, torch.tensor([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.75]))
    y.sum().backward()
    # dy/dx = delta outside the threshold, 0 inside; dy/ddelta = soft threshold of x
    assert torch.allclose(x.grad, torch.tensor([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5]))
    assert torch.isclose(delta.grad, torch.tensor(-2.0 + 1.5))


def test_threshold_gradient_wrt_tau():
    x = torch.tensor([-3.0, 0.2, 2.0])
    tau = torch.tensor(1.0, requires_grad=True)
    directional_threshold(x, tau, torch.tensor(2.0)).sum().backward()
    # d/dtau: -delta for x > tau, +delta for x < -tau, 0 inside
    assert torch.isclose(tau.grad, torch.tensor(2.0 - 2.0))


def test_shrinkage_starts_as_soft_threshold_and_tau_rule():
    torch.manual_seed(0)
    module = AdaptiveShrinkage(16, reduction=4)
    x = torch.randn(2, 16, 5, 5)
    tau, delta = module.coefficients(x)
    assert tau.shape == delta.shape == (2, 16, 1, 1)
    mean_abs = x.abs().mean(dim=(2, 3))[..., None, None]
    assert torch.all(tau >= 0) and torch.all(tau <= mean_abs + 1e-6)  # tau = alpha * mean|x|, alpha in (0, 1)
    assert torch.all((delta > 0) & (delta < 2))
    soft = AdaptiveShrinkage(16, reduction=4, learn_slope=False)
    soft.fc1.load_state_dict(module.fc1.state_dict())
    soft.fc2.weight.data.copy_(module.fc2.weight.data[:16])
    soft.fc2.bias.data.copy_(module.fc2.bias.data[:16])
    tau_soft, delta_soft = soft.coefficients(x)
    assert torch.allclose(tau_soft, tau) and torch.all(delta_soft == 1)
    expected = torch.sign(x) * torch.relu(x.abs() - tau)
    assert torch.allclose(soft(x), expected)


def _shrinkage_params(channels: int, reduction: int = 16, min_hidden: int = 8) -> int:
    hidden = max(channels // reduction, min_hidden)
    return channels * hidden + hidden + hidden * 2 * channels + 2 * channels


@pytest.mark.parametrize("depth, blocks, expansion", [(18, (2, 2, 2, 2), 1), (34, (3, 4, 6, 3), 1),
                                                      (50, (3, 4, 6, 3), 4), (101, (3, 4, 23, 3), 4)])
def test_parameter_count_is_resnet_plus_shrinkage_branches(depth, blocks, expansion):
    sarsn, resnet = SARSN(depth), ResNet(depth)
    extra = sum(n * _shrinkage_params(64 * 2 ** stage * expansion) for stage, n in enumerate(blocks))
    assert sum(p.numel() for p in sarsn.parameters()) == sum(p.numel() for p in resnet.parameters()) + extra
    assert sum(isinstance(m, AdaptiveShrinkage) for m in sarsn.modules()) == sum(blocks)


@pytest.mark.parametrize("depth, widths", [(18, (64, 128, 256, 512)), (50, (256, 512, 1024, 2048))])
def test_out_indices_shapes_like_resnet(depth, widths):
    model = SARSN(depth, out_indices=(0, 1, 2, 3))
    model.init_weights()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, c, 16 // 2 ** i, 16 // 2 ** i) for i, c in enumerate(widths)]
    assert tuple(SARSN(depth)(torch.randn(1, 3, 64, 64))[0].shape) == (1, widths[-1], 2, 2)


def test_registered_and_builds_in_a_classifier_that_trains():
    model = MODELS.build(dict(type='ImageClassifier', backbone=dict(type='SARSN', depth=18),
                              neck=dict(type='GlobalAveragePooling'),
                              head=dict(type='LinearClsHead', num_classes=6, in_channels=512)))
    model.init_weights()
    logits = model(torch.randn(4, 3, 32, 32), mode='tensor')
    logits.sum().backward()
    branch = model.backbone.layer1[0].shrinkage.fc1.weight
    assert logits.shape == (4, 6) and branch.grad is not None and branch.grad.abs().sum() > 0


def test_invalid_depth_is_a_clear_error():
    with pytest.raises(KeyError, match="invalid depth 42 for SARSN"):
        SARSN(42)


def test_units_start_near_identity_but_not_switched_off():
    model = SARSN(18)
    model.init_weights()
    block = model.layer2[1]
    assert torch.all(block.norm2.weight == 0.01) and torch.all(block.norm1.weight == 1)
    x = torch.randn(2, 128, 8, 8).abs() + 0.5  # a post-ReLU input
    model.train()
    out = block(x)
    assert torch.allclose(out, x, atol=0.2) and not torch.equal(out, x)  # close to identity, branch alive
    with pytest.raises(ValueError, match="residual_gamma_init must be > 0"):
        SARSN(18, residual_gamma_init=0.0)


# --------------------------------------------------------------------------------------------
# paper stem (Fig. 6), threshold variants, delta initialisation, SE-ResNet-34
# --------------------------------------------------------------------------------------------
def test_paper_stem_keeps_64px_and_ends_at_16x16_at_depth_34():
    model = SARSN(34, stem='paper', out_indices=(0, 1, 2, 3))
    model.init_weights()
    x = torch.randn(2, 3, 64, 64)
    stem_out = model.maxpool(model.relu(model.norm1(model.conv1(x))))
    assert tuple(stem_out.shape) == (2, 64, 64, 64)  # Fig. 6: 64 x 64 x 64 after the stem
    assert (model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
            and isinstance(model.maxpool, torch.nn.Identity))
    outs = model(x)
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 16, 16)]
    # the default stays mmpretrain's ImageNet stem: 2 x 2 at 64 px
    default = SARSN(34)
    assert default.conv1.kernel_size == (7, 7) and isinstance(default.maxpool, torch.nn.MaxPool2d)
    assert tuple(default(x)[0].shape) == (2, 512, 2, 2)


def test_paper_stem_other_depth_strides_and_errors():
    assert tuple(SARSN(50, stem='paper')(torch.randn(1, 3, 64, 64))[0].shape) == (1, 2048, 16, 16)
    assert tuple(SARSN(18, stem='paper', strides=(1, 2, 2, 2))(torch.randn(1, 3, 64, 64))[0].shape) == (1, 512, 8, 8)
    with pytest.raises(ValueError, match="stem='paper'.*deep_stem=True"):
        SARSN(18, stem='paper', deep_stem=True)
    with pytest.raises(ValueError, match=r"stem='cifar' is not a known stem.*'imagenet', 'paper'"):
        SARSN(18, stem='cifar')


def _branch_by_hand(module: AdaptiveShrinkage, x: torch.Tensor) -> torch.Tensor:
    """The formula of each variant (module docstring), written out from the module's own weights."""
    C = module.channels

    def head(fc1, fc2, s):
        return torch.relu(s @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias

    if module.variant == 'sarsn_se':
        e = torch.sigmoid(head(module.se_fc1, module.se_fc2, x.mean(dim=(2, 3))))
        x = e[..., None, None] * x
    s = x.abs().mean(dim=(2, 3))
    z = head(module.fc1, module.fc2, s)
    alpha = torch.sigmoid(z[:, :C])
    if module.variant in ('sarsn', 'sarsn_se'):
        delta = 2 * torch.sigmoid(z[:, C:])
    elif module.variant == 'delta_alpha':
        delta = alpha
    else:
        delta = torch.ones_like(alpha)
    tau = (alpha * s)[..., None, None]
    return delta[..., None, None] * torch.sign(x) * torch.relu(x.abs() - tau)


@pytest.mark.parametrize("variant", ['sarsn', 'sarsn_se', 'delta_alpha', 'drsn'])
def test_each_threshold_variant_follows_its_formula(variant):
    torch.manual_seed(1)
    module = AdaptiveShrinkage(16, reduction=4, variant=variant)
    with torch.no_grad():  # random slope logits too, so that delta != 1 is exercised
        for p in module.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(3, 16, 4, 4)
    y = module(x)
    assert torch.allclose(y, _branch_by_hand(module, x), atol=1e-6)
    soft = torch.sign(x) * torch.relu(x.abs() - module.coefficients(x)[0])  # DRSN's soft threshold of x itself
    assert torch.allclose(y, soft, atol=1e-6) == (variant == 'drsn')
    hidden = 8
    head = 16 * hidden + hidden + hidden * 16 + 16  # FC1 + FC2 with a C-wide output
    expected = {'drsn': head, 'delta_alpha': head, 'sarsn': head + hidden * 16 + 16,
                'sarsn_se': 2 * head + hidden * 16 + 16}[variant]
    assert sum(p.numel() for p in module.parameters()) == expected


def test_delta_alpha_slope_is_the_excitation_and_stays_below_one():
    torch.manual_seed(2)
    module = AdaptiveShrinkage(8, reduction=2, variant='delta_alpha')
    x = torch.randn(4, 8, 3, 3) * 3
    tau, delta = module.coefficients(x)
    alpha = tau / x.abs().mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(delta, alpha, atol=1e-6) and torch.all((delta > 0) & (delta < 1))


@pytest.mark.parametrize("depth, shrinkage", [(18, 'sarsn'), (50, 'sarsn'), (18, 'sarsn_se'), (34, 'sarsn_se')])
def test_delta_is_exactly_one_at_init_for_any_input(depth, shrinkage):
    # init_cfg also re-initialises the Linear layers: init_weights must still leave delta at 1
    init_cfg = [dict(type='Kaiming', layer=['Conv2d', 'Linear'], bias=0.3),
                dict(type='Constant', val=1, layer=['_BatchNorm'])]
    model = SARSN(depth, shrinkage=shrinkage, init_cfg=init_cfg)
    model.init_weights()
    units = [m for m in model.modules() if isinstance(m, AdaptiveShrinkage)]
    assert len(units) == sum(model.stage_blocks)
    torch.manual_seed(0)
    for unit in units:
        assert torch.all(unit.fc2.weight[unit.channels:] == 0) and torch.all(unit.fc2.bias[unit.channels:] == 0)
        assert unit.fc2.weight[:unit.channels].abs().sum() > 0  # only the delta logits are zeroed
        for scale in (1e-3, 1.0, 1e3):
            _, delta = unit.coefficients(torch.randn(3, unit.channels, 5, 5) * scale + scale)
            assert torch.allclose(delta, torch.ones_like(delta), rtol=0, atol=1e-6)
    # ... and the slope is still trainable: its weights get a gradient at once
    unit = units[0]
    x = torch.randn(2, unit.channels, 4, 4)
    unit(x).pow(2).sum().backward()
    assert unit.fc2.weight.grad[unit.channels:].abs().sum() > 0


def test_shrinkage_selection_and_the_older_learn_slope_flag():
    assert SARSN(18).shrinkage == 'sarsn' and SARSN(18).learn_slope
    old = SARSN(18, learn_slope=False)
    assert old.shrinkage == 'drsn' and not old.learn_slope
    assert all(m.variant == 'drsn' and m.fc2.out_features == m.channels
               for m in old.modules() if isinstance(m, AdaptiveShrinkage))
    assert SARSN(18, shrinkage='delta_alpha').layer1[0].shrinkage.variant == 'delta_alpha'
    with pytest.raises(ValueError, match=r"shrinkage='soft' is not a known variant"):
        SARSN(18, shrinkage='soft')
    with pytest.raises(ValueError, match="learn_slope=True contradicts shrinkage='drsn'"):
        SARSN(18, shrinkage='drsn', learn_slope=True)
    with pytest.raises(ValueError, match="learn_slope=False .* contradicts shrinkage='sarsn_se'"):
        SARSN(18, shrinkage='sarsn_se', learn_slope=False)
    with pytest.raises(RuntimeError, match="no separate SE branch"):
        AdaptiveShrinkage(8).excitation(torch.randn(1, 8, 2, 2))


def test_seresnet34_is_resnet34_plus_mmpretrain_se_layers():
    from mmpretrain.models.utils import SELayer

    from defect_plugins.cls.backbones import SEResNetBasic

    se, plain = SEResNetBasic(34), ResNet(34)
    layers = [m for m in se.modules() if isinstance(m, SELayer)]
    assert len(layers) == 3 + 4 + 6 + 3
    assert sum(p.numel() for p in se.parameters()) == (sum(p.numel() for p in plain.parameters())
                                                        + sum(p.numel() for m in layers for p in m.parameters()))
    se.init_weights()
    assert torch.all(se.layer3[2].norm2.weight == 0)  # zero_init_residual as in mmpretrain's ResNet
    assert tuple(se(torch.randn(1, 3, 64, 64))[0].shape) == (1, 512, 2, 2)
    built = MODELS.build(dict(type='SEResNetBasic', depth=18))
    block = built.layer1[0]
    block.eval()
    x = torch.randn(1, 64, 8, 8)
    branch = block.norm2(block.conv2(block.relu(block.norm1(block.conv1(x)))))
    assert torch.allclose(block(x), torch.relu(block.se_layer(branch) + x), atol=1e-6)  # SE before the sum
    with pytest.raises(KeyError, match="invalid depth 50 for SEResNetBasic.*SEResNet"):
        SEResNetBasic(50)
