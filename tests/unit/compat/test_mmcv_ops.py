"""The mmcv.ops fallback: mmseg imports with mmcv-lite, and the fallback ops compute the right thing."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from defect_plugins.compat import mmcv_ops
from tests.conftest import run_python

needs_mmcv_lite = pytest.mark.skipif(
    importlib.util.find_spec("mmcv._ext") is not None, reason="full mmcv installed: no fallback needed"
)


@needs_mmcv_lite
def test_mmseg_models_fails_without_the_fallback():
    # Documents the upstream breakage the fix exists for; if this starts passing, the fix can go.
    result = run_python("import mmseg.models")
    assert result.returncode != 0
    assert "mmcv._ext" in result.stderr


def test_mmseg_mmpretrain_anomalib_import_together():
    result = run_python(
        "import defect_plugins.seg, defect_plugins.cls, defect_plugins.anomaly, mmseg.models, mmpretrain.models, "
        "anomalib.models\n"
        "from mmseg.registry import MODELS\n"
        "print(MODELS.get('EncoderDecoder').__name__)"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("EncoderDecoder")


@needs_mmcv_lite
def test_point_sample_is_mmcvs_own_pure_pytorch_function():
    import mmcv.ops

    assert mmcv.ops.__defect_plugins_fallback__
    assert mmcv.ops.point_sample.__module__ == "mmcv.ops.point_sample"
    features = torch.arange(16.0).view(1, 1, 4, 4)
    centre_of_pixel_5 = torch.tensor([[[1.5 / 4, 1.5 / 4]]])  # (x, y) in [0, 1]
    sampled = mmcv.ops.point_sample(features, centre_of_pixel_5, align_corners=False)
    assert sampled.item() == pytest.approx(5.0)


@needs_mmcv_lite
def test_other_compiled_ops_raise_module_not_found_like_upstream():
    import mmcv.ops

    with pytest.raises(ModuleNotFoundError, match="mmcv._ext"):
        mmcv.ops.CrissCrossAttention  # noqa: B018
    with pytest.raises(ImportError):
        exec("from mmcv.ops import PSAMask")


def test_sigmoid_focal_loss_matches_the_formula():
    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    target = torch.tensor([0, 2, 1, 3, 2])  # 3 == num_classes means "no class"
    class_weight = torch.tensor([1.0, 2.0, 0.5])
    gamma, alpha = 2.0, 0.25
    onehot = torch.zeros(5, 3)
    for row, label in enumerate(target.tolist()):
        if label < 3:
            onehot[row, label] = 1
    p = torch.sigmoid(logits)
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha_t = alpha * onehot + (1 - alpha) * (1 - onehot)
    expected = -alpha_t * (1 - p_t) ** gamma * torch.log(p_t) * class_weight
    got = mmcv_ops.sigmoid_focal_loss(logits, target, gamma, alpha, class_weight, "none")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(
        mmcv_ops.sigmoid_focal_loss(logits, target, gamma, alpha, class_weight, "mean"), expected.sum() / 5
    )


def test_fallback_is_not_installed_when_compiled_ops_exist(monkeypatch):
    monkeypatch.setattr(mmcv_ops, "_compiled_ops_available", lambda: True)
    assert mmcv_ops.apply() is False
