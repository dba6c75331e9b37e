"""ARCD as the thesis builds it: the stage-1 loss, eq. 3-1's crop to the real image area, eq. 3-16's focal
weighting, held-out stage-1 validation, attention in the U-Net decoder (the Table 4.2 sizes are checked with the
study's counter: experiments/tests/test_arcd_complexity.py)."""
from __future__ import annotations

import math

import kornia
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from defect_plugins.seg.losses import PixelFocalLoss
from defect_plugins.seg.metrics import ReconstructionAccuracy
from defect_plugins.seg.models import MFLM, ARCDReconstructor, AttentionUNet, MaskedConvBNReLU
from defect_plugins.seg.transforms import PadSquareResize, SimulateAnomaly


def test_mflm_saving_comes_from_the_1x1_corner_kernels():
    """Per replaced convolution: 3x3 conv 9c^2, MDC 4 x 9c^2 (+ SE), MFLM 4 x 1c^2 + a c-independent transformer."""
    c = 32
    def weights(module):
        return sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight") and p.dim() == 4)

    mdc, mflm = MFLM(c, kernel_size=3, attention="se"), MFLM(c, kernel_size=1)
    assert weights(mdc) == 4 * 9 * c * c and weights(mflm) == 4 * c * c
    transformer = lambda ch: sum(p.numel() for n, p in MFLM(ch).gate.named_parameters() if n != "pos")  # noqa: E731
    assert transformer(32) == transformer(256) == 128 + 64 * 960 + 320 * 64 + 64


def test_draem_layout_replaces_the_second_conv_of_every_encoder_block():
    net = ARCDReconstructor(base_channels=4, mflm="mdc")
    assert net.widths == [4, 8, 16, 32, 32]
    for i, block in enumerate(net.encoder):
        assert isinstance(block[1], MaskedConvBNReLU), i
        assert block[1].masked.conv.kernel_size == 3 and block[1].masked.attention == "se"
    # decoder: up-sampling conv keeping the width, then two convs narrowing to the next shallower block's width
    assert [[m.conv.out_channels for m in stage] for stage in net.decoder] == [[32, 32, 16], [16, 16, 8], [8, 8, 4],
                                                                            [4, 4, 4]]
    only_last = ARCDReconstructor(base_channels=4, mflm="mflm", mflm_stages=[4], mflm_cfg=dict(num_heads=2))
    assert [isinstance(b[1], MaskedConvBNReLU) for b in only_last.encoder] == [False] * 4 + [True]
    assert only_last.encoder[4][1].masked.gate.layers[0].heads == 2


# ---------------------------------------------------------------------------------------------- stage-1 loss


def _stage1_model(**kwargs):
    recon = dict(type="ARCDReconstructor", base_channels=4, num_stages=3, mflm="mdc")
    pre = dict(type="ARCDDataPreProcessor", mean=[0.0] * 3, std=[255.0] * 3)
    return MODELS.build(dict(type="ARCDReconstructionModel", reconstructor=recon, data_preprocessor=pre, **kwargs))


def _batch(n=2, size=16):
    torch.manual_seed(0)
    clean = (torch.rand(n, 3, size, size) * 255).round()
    samples = []
    for img in clean:
        s = SegDataSample()
        s.set_data({"clean_img": PixelData(data=img.to(torch.uint8))})
        samples.append(s)
    return clean.clamp(0, 255) * 0.8, samples


def test_stage1_loss_is_l2_plus_one_hundredth_of_one_minus_ssim():
    model = _stage1_model()
    inputs, samples = _batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {"loss_l2", "loss_ssim"}, "SSPCAB's self-supervised term is off by default"
    # by hand (training mode again: batch statistics, so the same reconstruction)
    rec = model.to_unit_unclamped(model.reconstructor(inputs))
    target = model.to_unit(model.normalise_clean(samples, inputs))
    ssim = kornia.metrics.ssim(rec, target, 11).mean().item()
    assert losses["loss_ssim"].item() == pytest.approx(0.01 * (1 - ssim), rel=1e-5)  # not kornia's (1 - SSIM) / 2
    assert losses["loss_l2"].item() == pytest.approx(torch.mean((rec - target) ** 2).item(), rel=1e-5)
    half = _stage1_model(ssim_weight=0.005)  # the project's earlier weighting, 0.01 x kornia's ssim_loss
    half.load_state_dict(model.state_dict())
    expected = 0.01 * kornia.losses.ssim_loss(rec, target, 11).item()
    assert half.loss(inputs, samples)["loss_ssim"].item() == pytest.approx(expected, rel=1e-5)


def test_loss_terms_are_the_ra_metric_exponent():
    """RA = exp(-10000 (L2 + 0.01 (1 - SSIM))): the same two terms, with the same weights, as the loss."""
    model = _stage1_model().eval()
    inputs, samples = _batch(n=1)
    with torch.no_grad():
        out = model.predict(inputs, samples)[0]
    metric = ReconstructionAccuracy()
    metric.process({}, [out.to_dict()])
    ra = metric.compute_metrics(metric.results)
    rec, gt = out.rec_img.data[None], out.gt_clean.data[None]
    loss_terms = torch.mean((rec - gt) ** 2) + (2.0 * 0.01) * kornia.losses.ssim_loss(rec, gt, 11)
    assert ra["RA"] == pytest.approx(math.exp(-10000 * loss_terms.item()), rel=1e-4)


def test_self_supervised_term_is_an_option_over_all_masked_blocks():
    model = _stage1_model(self_sup_weight=0.5)
    inputs, samples = _batch()
    losses = model.loss(inputs, samples)
    per_block = model.reconstructor._self_sup
    assert len(per_block) == 3  # one MSE per masked encoder block
    assert losses["loss_self_sup"].item() == pytest.approx(0.5 * torch.stack(per_block).mean().item())
    assert losses["loss_self_sup"].requires_grad
    silent = _stage1_model()
    silent.loss(inputs, samples)
    assert silent.reconstructor.self_supervised_loss() is None  # not even computed when off
    with pytest.raises(ValueError, match="model.ssim_weight must be >= 0"):
        _stage1_model(ssim_weight=-1)

# ---------------------------------------------------------------------------------------------- eq. 3-1 crop


def _padded(flip: str | None = None) -> dict:
    """A 40 x 120 image padded to 120 x 120 and resized to 60: rows 20..59 are padding."""
    image = np.random.default_rng(0).integers(60, 200, (40, 120, 3), dtype=np.uint8)
    results = PadSquareResize(scale=60).transform({"img": image, "img_path": "x.png", "seg_fields": []})
    if flip:
        from mmseg.registry import TRANSFORMS

        results = TRANSFORMS.build(dict(type="RandomFlip", prob=1.0, direction=flip)).transform(results)
    return results


@pytest.mark.parametrize("flip", [None, "vertical", "horizontal"])
def test_no_anomaly_pixel_lands_in_the_padding(flip):
    base = _padded(flip)
    valid = base["img_valid_mask"] == 1
    real_rows = slice(40, 60) if flip == "vertical" else slice(0, 20)
    assert valid[real_rows].all() and valid.sum() == 20 * 60
    transform = SimulateAnomaly(threshold_range=(0.3, 0.3))  # large anomalies: they would reach the padding
    for seed in range(8):
        torch.manual_seed(seed)
        out = transform.transform({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()})
        mask = out["gt_anomaly_mask"]
        assert mask.any() and not mask[~valid].any(), seed
        assert np.array_equal(out["img"][~valid], out["clean_img"][~valid]), "the padding must stay untouched"


def test_without_the_crop_anomalies_reach_the_padding():
    base = _padded()
    transform = SimulateAnomaly(threshold_range=(0.3, 0.3), crop_to_image=False)
    hits = 0
    for seed in range(8):
        torch.manual_seed(seed)
        hits += bool(transform.transform(dict(base, img=base["img"].copy()))["gt_anomaly_mask"][20:].any())
    assert hits > 0
    # an unpadded image (no img_valid_mask) is all real: the crop changes nothing there
    image = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    a = SimulateAnomaly(deterministic=True).transform({"img": image.copy(), "img_path": "a.png"})
    b = SimulateAnomaly(deterministic=True, crop_to_image=False).transform({"img": image.copy(), "img_path": "a.png"})
    assert np.array_equal(a["img"], b["img"]) and np.array_equal(a["gt_anomaly_mask"], b["gt_anomaly_mask"])


def test_valid_area_errors_name_the_field():
    transform = SimulateAnomaly()
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="img_valid_mask has size"):
        transform.transform({"img": image, "img_valid_mask": np.ones((4, 8), np.uint8), "img_path": "z.png"})
    with pytest.raises(ValueError, match="img_valid_mask"):
        transform.transform({"img": image, "img_valid_mask": np.zeros((8, 8), np.uint8), "img_path": "z.png"})
    assert "img_valid_mask" not in PadSquareResize(scale=8, valid_mask=False).transform(
        {"img": image, "img_path": "z.png", "seg_fields": []})

# ---------------------------------------------------------------------------------------------- eq. 3-16


def test_focal_weighting_defaults_to_class_counts():
    logits = torch.randn(2, 3, 4, 5)
    target = torch.zeros(2, 4, 5, dtype=torch.long)
    target[0, 0, :2] = 1
    target[1, 1:3, 0] = 2
    loss = PixelFocalLoss()
    assert loss.alpha == "counts"
    n = target.numel()
    m = torch.tensor([(target == c).sum().item() for c in range(3)], dtype=torch.float32)
    eps = loss.alpha_vector(3, target)
    assert torch.allclose(eps / (1 - eps), (n - m) / m)  # eq. 3-16: eps / (1 - eps) = n / m, one-vs-rest
    fixed = PixelFocalLoss(alpha=0.75)  # the fixed weighting stays an option
    assert fixed.alpha_vector(3, target).tolist() == [0.25, 0.75, 0.75]
    assert loss(logits, target).item() != pytest.approx(fixed(logits, target).item())


def test_focal_class_counts_fix_epsilon_for_every_batch():
    loss = PixelFocalLoss(class_counts=[900, 60, 40])
    assert torch.allclose(loss.alpha_vector(3), torch.tensor([0.1, 0.94, 0.96]))
    background_only = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.randn(1, 3, 4, 4)
    assert PixelFocalLoss()(logits, background_only).item() == 0.0  # per batch: a one-class batch weighs 0
    assert loss(logits, background_only).item() > 0.0
    with pytest.raises(ValueError, match="class_counts has 3 entries for 2 classes"):
        loss(torch.randn(1, 2, 4, 4), background_only)
    with pytest.raises(ValueError, match="only used with alpha='counts'"):
        PixelFocalLoss(alpha=0.75, class_counts=[1, 1])
    with pytest.raises(ValueError, match="non-negative pixel counts"):
        PixelFocalLoss(class_counts=[0, 0])

# ---------------------------------------------------------------------------------------------- held-out normals


def test_normal_images_split_into_disjoint_train_and_held_out_parts(strip_data):
    def names(split, **kw):
        ds = DATASETS.build(dict(type="NormalImageDataset", data_root=str(strip_data),
                                 data_prefix=dict(img_path="normal_dir"), split=split, pipeline=[], **kw))
        return {info["img_path"].rsplit("/", 1)[-1] for info in ds.load_data_list()}

    everything, train, val = names("all"), names("train", val_fraction=0.25), names("val", val_fraction=0.25)
    assert len(everything) == 4 and len(val) == 1 and not train & val and train | val == everything
    assert names("val", val_fraction=0.25, split_seed=3) != val or names("val", val_fraction=0.25, split_seed=4) != val
    with pytest.raises(ValueError, match="split must be one of"):
        names("test")
    with pytest.raises(ValueError, match="val_fraction must be in"):
        names("val", val_fraction=1.0)


def test_strip_stage1_config_validates_on_held_out_normals(strip_data):
    from tests.fixtures.seg import tiny_config

    cfg = tiny_config("arcd_stage1_recon_strip", strip_data, strip_data / "unused", 1)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    train_paths = {train.get_data_info(i)["img_path"] for i in range(len(train))}
    val_paths = {val.get_data_info(i)["img_path"] for i in range(len(val))}
    assert val_paths and train_paths and not train_paths & val_paths

# ---------------------------------------------------------------------------------------------- CALM in the decoder


def test_attention_inside_the_unet_decoder_reaches_the_last_output():
    kwargs = dict(in_channels=3, base_channels=4, num_stages=3, strides=(1, 1, 1), enc_num_convs=(2, 2, 2),
                  dec_num_convs=(2, 2), downsamples=(True, True), enc_dilations=(1, 1, 1), dec_dilations=(1, 1))
    torch.manual_seed(0)
    net = AttentionUNet(attention=dict(type="CALM"), attention_levels=[1], **kwargs)
    net.eval()  # mmseg's UNet.train() returns None
    assert list(net.attentions) == ["1"] and net.level_channels == [16, 8, 4]
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        outs = net(x)
        assert [o.shape[1] for o in outs] == [16, 8, 4]
        # with the attention at level 1 turned into identity, the last (level-2) output changes: it is inside the chain
        block = net.attentions["1"]
        net.attentions["1"] = torch.nn.Identity()
        plain = net(x)
        net.attentions["1"] = block
    assert torch.allclose(outs[0], plain[0]) and not torch.allclose(outs[2], plain[2])
    assert list(AttentionUNet(attention=dict(type="CBAM"), attention_levels=[-1], **kwargs).attentions) == ["2"]
    with pytest.raises(ValueError, match="attention_levels entry 3 out of range"):
        AttentionUNet(attention=dict(type="CALM"), attention_levels=[3], **kwargs)
