"""IEMA, GL-Attention and the MGJR student: shapes, gradients, odd and 1x1 inputs, size budget."""
from __future__ import annotations

import pytest
import torch
from mmpretrain.registry import MODELS
from torch import nn

from defect_plugins.cls.mgjr import GLAttention, IEMA, MGJRStudent
from defect_plugins.cls.mgjr.iema import eca_kernel_size

SIZES = [(1, 1), (3, 5), (7, 7), (13, 17)]


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("channel_attention", [True, False])
def test_iema_shape_and_gradient(hw, channel_attention):
    torch.manual_seed(0)
    block = MODELS.build(dict(type='IEMA', channels=32, groups=8, channel_attention=channel_attention))
    x = torch.randn(2, 32, *hw, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())


def test_iema_gates_lie_between_zero_and_input():
    # EMA/IEMA only re-weight: every output is the input times gates in (0, 1).
    torch.manual_seed(0)
    block = IEMA(16, groups=4).eval()
    x = torch.rand(3, 16, 9, 11) + 0.1
    y = block(x)
    assert (y > 0).all() and (y < x).all()


def test_iema_thin_layers_and_bad_groups():
    assert IEMA(4, groups=8).groups == 4  # fewer channels than groups: one channel per group
    assert IEMA(1, groups=8)(torch.randn(2, 1, 3, 3)).shape == (2, 1, 3, 3)
    with pytest.raises(ValueError, match="divisible"):
        IEMA(30, groups=8)
    with pytest.raises(ValueError, match="built for 16 channels"):
        IEMA(16, groups=4)(torch.randn(1, 8, 4, 4))


def test_eca_kernel_size_formula():
    # ECA-Net: k = |log2(C)/2 + 1/2|, made odd.
    assert [eca_kernel_size(c) for c in (16, 64, 256, 512)] == [3, 3, 5, 5]


@pytest.mark.parametrize("hw", SIZES)
def test_gl_attention_shape_gradient_and_identity_at_init(hw):
    torch.manual_seed(0)
    block = MODELS.build(dict(type='GLAttention', channels=32, num_heads=4, pool_size=7))
    x = torch.randn(2, 32, *hw, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    assert torch.allclose(y, x)  # zero-initialised fusion BN: the block starts as the identity
    with torch.no_grad():
        block.fuse_bn.weight.fill_(1.0)
    y = block(x)
    y.square().mean().backward()
    assert not torch.allclose(y, x)
    assert torch.isfinite(x.grad).all() and block.kv.weight.grad.abs().sum() > 0
    if hw != (1, 1):  # a single key token makes the softmax constant: queries get no gradient there
        assert block.q.weight.grad.abs().sum() > 0
    assert block.local[0].weight.grad.abs().sum() > 0


def test_gl_global_path_is_full_attention_when_pooling_keeps_every_token():
    torch.manual_seed(0)
    block = GLAttention(8, num_heads=2, pool_size=16).eval()
    x = torch.randn(1, 8, 4, 3)
    q = block.q(x).flatten(2).reshape(2, 4, 12)  # heads, dh, tokens
    k, v = block.kv(x).flatten(2).reshape(2, 2, 4, 12).unbind(0)
    attn = torch.softmax(q.transpose(1, 2) @ k * 4 ** -0.5, dim=-1)  # heads, tokens, tokens
    expected = (attn @ v.transpose(1, 2)).transpose(1, 2).reshape(1, 8, 4, 3)
    assert torch.allclose(block.global_path(x), expected, atol=1e-5)


def test_gl_attention_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="num_heads"):
        GLAttention(30, num_heads=8)
    with pytest.raises(ValueError, match="odd"):
        GLAttention(32, local_kernel=4)


def test_blocks_drop_into_an_mmpretrain_backbone():
    resnet = MODELS.build(dict(type='ResNet', depth=18, out_indices=(2, )))
    model = nn.Sequential(resnet, nn.Identity())
    feats = model(torch.randn(2, 3, 64, 64))[0]
    out = MODELS.build(dict(type='GLAttention', channels=256))(MODELS.build(dict(type='IEMA', channels=256))(feats))
    assert out.shape == feats.shape == (2, 256, 4, 4)


@pytest.mark.parametrize("size,grid", [(224, 7), (64, 2), (37, 2), (32, 1), (8, 1)])
def test_student_shapes_on_any_input_size(size, grid):
    model = MGJRStudent(depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_channels=16, iema_groups=4, gl_heads=4,
                        out_indices=(1, 2, 3))
    model.init_weights()
    outs = model(torch.randn(2, 3, size, size))
    assert [o.shape[1] for o in outs] == [32, 64, 128] and outs[-1].shape[-2:] == (grid, grid)
    assert model.out_channels == (32, 64, 128)


def test_student_ablation_switches_remove_modules():
    full = MGJRStudent(depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_channels=16, iema_groups=4, gl_heads=4)
    plain = MGJRStudent(depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_channels=16, use_iema=False,
                        gl_stages=(), fuse_stages=())
    assert any(isinstance(m, IEMA) for m in full.modules()) and any(isinstance(m, GLAttention) for m in full.modules())
    assert not any(isinstance(m, (IEMA, GLAttention)) for m in plain.modules())
    with pytest.raises(ValueError, match="gl_stages"):
        MGJRStudent(gl_stages=(4, ))
