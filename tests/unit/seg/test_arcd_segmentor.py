"""ARCDSegmentor: frozen reconstructor, stage-1 checkpoint handling, region head, losses."""
from __future__ import annotations

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from defect_plugins.seg.models import ARCDReconstructor, StageOneCheckpointError

RECON = dict(type="ARCDReconstructor", base_channels=4, num_stages=3, mflm="mflm",
             mflm_cfg=dict(num_heads=2, head_dim=8, token_dim=8))
NORM = dict(type="BN", requires_grad=True)


def _segmentor_cfg(ckpt, region=True, **extra):
    head = dict(type="FCNHead", in_channels=4, in_index=2, channels=4, num_convs=1, concat_input=False,
                num_classes=3, norm_cfg=NORM, align_corners=False, loss_decode=dict(type="PixelFocalLoss"))
    cfg = dict(
        type="ARCDSegmentor", reconstructor=RECON, reconstructor_checkpoint=ckpt,
        data_preprocessor=dict(type="ARCDDataPreProcessor", mean=[0.0] * 3, std=[255.0] * 3, size_divisor=4),
        backbone=dict(type="UNet", in_channels=6, base_channels=4, num_stages=3, strides=(1, 1, 1),
                      enc_num_convs=(2, 2, 2), dec_num_convs=(2, 2), downsamples=(True, True),
                      enc_dilations=(1, 1, 1), dec_dilations=(1, 1), norm_cfg=NORM),
        decode_head=head, region_head=dict(head, num_classes=2) if region else None,
        train_cfg=dict(), test_cfg=dict(mode="whole"))
    cfg.update(extra)
    return cfg


@pytest.fixture()
def stage1_ckpt(tmp_path):
    torch.manual_seed(0)
    net = MODELS.build(RECON)
    path = tmp_path / "stage1.pth"
    torch.save({"state_dict": {f"reconstructor.{k}": v for k, v in net.state_dict().items()}}, path)
    return path, net


def _samples(n=2, h=16, w=16):
    out = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, h, w)))
        s.gt_region_map = PixelData(data=torch.randint(0, 2, (1, h, w)))
        out.append(s)
    return out


def test_reconstructor_is_loaded_frozen_and_gets_no_gradient(stage1_ckpt):
    path, net = stage1_ckpt
    model = MODELS.build(_segmentor_cfg(str(path)))
    for k, v in net.state_dict().items():
        assert torch.equal(model.reconstructor.state_dict()[k], v), k
    model.init_weights()  # must not re-initialise the loaded reconstructor
    for k, v in net.state_dict().items():
        assert torch.equal(model.reconstructor.state_dict()[k], v), k
    model.train()
    assert not model.reconstructor.training and model.backbone.training
    losses = model.loss(torch.randn(2, 3, 16, 16), _samples())
    assert {"decode.loss_focal", "region.loss_focal"} <= set(losses)
    sum(v for k, v in losses.items() if "loss" in k).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.reconstructor.parameters())
    assert any(p.grad is not None for p in model.backbone.parameters())


def test_predict_gives_defect_and_region_outputs(stage1_ckpt):
    model = MODELS.build(_segmentor_cfg(str(stage1_ckpt[0]))).eval()
    samples = _samples(1, 16, 16)
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 16, 16), samples)[0]
    assert out.pred_sem_seg.data.shape == (1, 16, 16) and out.seg_logits.data.shape == (3, 16, 16)
    assert out.pred_region.data.shape == (1, 16, 16) and out.region_logits.data.shape == (2, 16, 16)


def test_region_head_is_optional(stage1_ckpt):
    model = MODELS.build(_segmentor_cfg(str(stage1_ckpt[0]), region=False))
    losses = model.loss(torch.randn(2, 3, 16, 16), _samples())
    assert not any(k.startswith("region.") for k in losses)


def test_region_head_without_region_map_is_a_clear_error(stage1_ckpt):
    model = MODELS.build(_segmentor_cfg(str(stage1_ckpt[0])))
    samples = _samples()
    for s in samples:
        del s.gt_region_map
    with pytest.raises(KeyError, match="no gt_region_map"):
        model.loss(torch.randn(2, 3, 16, 16), samples)


def test_missing_or_wrong_stage1_checkpoint_errors(tmp_path, stage1_ckpt):
    with pytest.raises(StageOneCheckpointError, match="reconstructor_checkpoint is not set"):
        MODELS.build(_segmentor_cfg(None))
    with pytest.raises(StageOneCheckpointError, match="not found"):
        MODELS.build(_segmentor_cfg(str(tmp_path / "nope.pth")))
    with pytest.raises(StageOneCheckpointError, match="no 'last_checkpoint'"):
        MODELS.build(_segmentor_cfg(str(tmp_path)))
    with pytest.raises(StageOneCheckpointError, match="do not fit"):
        MODELS.build(_segmentor_cfg(str(stage1_ckpt[0]), reconstructor=dict(RECON, base_channels=8)))
    # an inference build (mmseg.apis.init_model passes train_cfg=None) only warns
    model = MODELS.build(_segmentor_cfg(None, train_cfg=None))
    assert isinstance(model.reconstructor, ARCDReconstructor)


def test_data_preprocessor_pads_region_map(stage1_ckpt):
    model = MODELS.build(_segmentor_cfg(str(stage1_ckpt[0])))
    samples = _samples(2, 14, 15)
    data = {"inputs": [torch.randint(0, 255, (3, 14, 15), dtype=torch.uint8)] * 2, "data_samples": samples}
    out = model.data_preprocessor(data, training=True)
    assert out["inputs"].shape[-2:] == (16, 16)
    for s in out["data_samples"]:
        assert s.gt_region_map.data.shape[-2:] == (16, 16) and s.gt_sem_seg.data.shape[-2:] == (16, 16)
        assert (s.gt_region_map.data[..., 14:, :] == 255).all()
