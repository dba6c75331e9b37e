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
