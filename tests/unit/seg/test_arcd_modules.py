"""MFLM (masked dilated conv + channel transformer), CALM / CBAM / CA, reconstructor variants."""
from __future__ import annotations

import pytest
import torch
from mmseg.registry import DATASETS, METRICS, MODELS, TRANSFORMS

from defect_plugins.seg.models import (CALM, CBAM, MFLM, ARCDReconstructor, AttentionNeck, ChannelTransformer,
                                       CoordAttention, MaskedDilatedConv, SqueezeExcitation)


def test_components_are_registered_in_mmseg():
    for name in ("ARCDReconstructor", "ARCDReconstructionModel", "ARCDSegmentor", "MFLM", "MaskedDilatedConv",
                 "SqueezeExcitation", "ChannelTransformer", "CALM", "CBAM", "CoordAttention", "AttentionNeck",
                 "AttentionUNet", "PixelFocalLoss", "ARCDDataPreProcessor"):
        assert name in MODELS.module_dict, name
    for name in ("SimulateAnomaly", "PadSquareResize", "LoadRegionMap", "PackARCDInputs"):
        assert name in TRANSFORMS.module_dict, name
    for name in ("ARCDStripDataset", "NEUSegDataset", "NormalImageDataset"):
        assert name in DATASETS.module_dict, name
    for name in ("PixelAUROC", "RegionIoUMetric", "ReconstructionAccuracy"):
        assert name in METRICS.module_dict, name


@pytest.mark.parametrize("k,d", [(1, 1), (3, 1), (2, 2)])
def test_masked_dilated_conv_never_sees_the_centre(k, d):
    torch.manual_seed(0)
    conv = MaskedDilatedConv(2, 3, kernel_size=k, dilation=d).eval()
    x = torch.randn(1, 2, 15, 15)
    y = conv(x)
    assert y.shape == (1, 3, 15, 15)
    centre = x.clone()
    centre[..., 7, 7] += 10.0
    assert torch.allclose(conv(centre)[..., 7, 7], y[..., 7, 7]), "output at a pixel must not depend on that pixel"
    ring = x.clone()  # the masked ring of width d around the centre is hidden too
    ring[..., 7 + d, 7] += 10.0
    assert torch.allclose(conv(ring)[..., 7, 7], y[..., 7, 7])
    corner = x.clone()  # a pixel inside a corner sub-kernel is seen
    corner[..., 7 - d - 1, 7 - d - 1] += 10.0
    assert not torch.allclose(conv(corner)[..., 7, 7], y[..., 7, 7])
    assert sum(p.numel() for n, p in conv.named_parameters() if "weight" in n) == 4 * k * k * 2 * 3


def test_channel_transformer_and_mflm_shapes():
    x = torch.randn(2, 10, 8, 6)
    ct = ChannelTransformer(10, token_dim=64, num_heads=5, head_dim=64)
    assert ct(x).shape == x.shape
    assert ct.layers[0].qkv.out_features == 3 * 5 * 64
    # SSMCTB form: token projection 1->64, bias-free QKV 64->960, output projection 320->64; nothing else
    counted = sum(p.numel() for n, p in ct.named_parameters() if n != "pos")
    assert counted == (64 + 64) + 64 * 960 + (320 * 64 + 64)
    assert ChannelTransformer(10, residual_mlp=True)(x).shape == x.shape
    assert MFLM(10)(x).shape == x.shape
    assert MFLM(10).conv.kernel_size == 1 and isinstance(MFLM(10).gate, ChannelTransformer)
    assert isinstance(MFLM(10, attention="none").gate, torch.nn.Identity)
    assert isinstance(MFLM(16, kernel_size=3, attention="se").gate, SqueezeExcitation)
    with pytest.raises(ValueError, match="attention must be one of"):
        MFLM(10, attention="cbam")


def test_gates_rescale_channels_only():
    """SE and channel-transformer gates multiply each channel by one factor in (0, 1)."""
    torch.manual_seed(0)
    x = torch.rand(2, 16, 5, 7) + 0.1
    for gate in (SqueezeExcitation(16, 8), ChannelTransformer(16, token_dim=8, num_heads=2, head_dim=4)):
        ratio = gate(x) / x
        assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)
        assert ((ratio > 0) & (ratio < 1)).all()


@pytest.mark.parametrize("cls", [CALM, CBAM, CoordAttention])
def test_attention_shapes(cls):
    x = torch.randn(2, 16, 12, 20)  # H != W catches swapped coordinate gates
    module = cls(16)
    out = module(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x)


def test_attention_neck_applies_selected_levels():
    feats = [torch.randn(1, 8, 4, 4), torch.randn(1, 4, 8, 8)]
    neck = AttentionNeck([8, 4], attention=dict(type="CALM"), levels=[1])
    out = neck(feats)
    assert out[0] is feats[0] and out[1].shape == feats[1].shape
    with pytest.raises(ValueError, match="level 2"):
        AttentionNeck([8, 4], attention=dict(type="CALM"), levels=[2])


@pytest.mark.parametrize("layout", ["draem", "compact"])
@pytest.mark.parametrize("mode", ["none", "mdc", "mflm"])
def test_reconstructor_variants(mode, layout):
    net = ARCDReconstructor(base_channels=8, num_stages=3, mflm=mode, layout=layout)
    x = torch.randn(2, 3, 16, 24)
    assert net(x).shape == x.shape
    masked = [m for m in net.modules() if isinstance(m, MFLM)]
    assert len(masked) == (0 if mode == "none" else 3 if layout == "draem" else 1)
    if mode != "none":
        assert net.self_supervised_loss() is not None
        net.eval()
        net(x)
        assert net.self_supervised_loss() is None, "the self-supervised MSE is a training-time quantity"
    if layout == "compact":
        with pytest.raises(ValueError, match="divisible by 4"):
            net(torch.randn(1, 3, 18, 16))
    else:  # up-sampling goes back to the size before each pooling, so odd sizes work
        assert net(torch.randn(1, 3, 18, 14)).shape == (1, 3, 18, 14)
    with pytest.raises(ValueError, match="smaller than 4"):
        net(torch.randn(1, 3, 3, 16))


def test_reconstructor_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mflm must be one of"):
        ARCDReconstructor(mflm="sspcab")
    with pytest.raises(ValueError, match="layout must be one of"):
        ARCDReconstructor(layout="unet")
    with pytest.raises(ValueError, match=r"mflm_stages \[5\] out of range"):
        ARCDReconstructor(base_channels=4, mflm="mdc", mflm_stages=[0, 5])
    with pytest.raises(ValueError, match=r"mflm_cfg keys \['heads'\] are not MFLM arguments"):
        ARCDReconstructor(base_channels=4, mflm="mflm", mflm_cfg=dict(heads=2))


CONFIG_DIR = __import__("pathlib").Path(__file__).resolve().parents[3] / "configs" / "arcd"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_every_config_builds_and_runs_forward(path):
    """Each shipped config parses, builds (inference build: no stage-1 file needed) and runs one forward."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    model_cfg = cfg.model
    if "reconstructor_checkpoint" in model_cfg:
        model_cfg.train_cfg = None
        model_cfg.reconstructor_checkpoint = None
    model = MODELS.build(model_cfg).eval()
    size = 64
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size), None, mode="tensor")
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape[0] == 1 and out.dim() == 4
