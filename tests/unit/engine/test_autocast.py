"""AutocastOptimWrapper: bf16 autocast for mmengine's Runner on the CPU, float32 weights and losses."""
from __future__ import annotations

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

import defect_plugins.engine.autocast as autocast_module
from defect_plugins.engine import AutocastOptimWrapper, native_bf16


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _wrapper(enabled: bool | str) -> AutocastOptimWrapper:
    model = _Net()
    wrapper = build_optim_wrapper(model, dict(type="AutocastOptimWrapper", enabled=enabled,
                                              optimizer=dict(type="SGD", lr=0.1)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    return wrapper, model


def test_enabled_runs_forward_in_bf16_and_keeps_float32_weights():
    wrapper, model = _wrapper(True)
    before = model.fc.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(4, 8))
        loss = nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0]))
    assert out.dtype == torch.bfloat16
    assert loss.dtype == torch.float32  # autocast keeps losses in float32
    wrapper.update_params(loss)
    assert model.fc.weight.dtype == torch.float32
    assert not torch.equal(model.fc.weight, before)  # the step was taken


def test_disabled_is_plain_float32():
    wrapper, model = _wrapper(False)
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 8)).dtype == torch.float32


@pytest.mark.parametrize(("flags", "expected"), [({"avx512f"}, torch.float32), ({"avx512_bf16"}, torch.bfloat16),
                                                 ({"amx_bf16"}, torch.bfloat16)])
def test_auto_follows_the_cpu(monkeypatch, flags, expected):
    monkeypatch.setattr(autocast_module, "_cpu_flags", lambda: frozenset(flags))
    assert native_bf16("cpu") is (expected == torch.bfloat16)
    wrapper, model = _wrapper("auto")
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 8)).dtype == expected


def test_bad_enabled_value_names_the_key():
    with pytest.raises(ValueError, match=r"optim_wrapper.enabled must be True, False or 'auto', got 'yes'"):
        _wrapper("yes")


def test_found_from_the_mmpretrain_and_mmseg_scopes():
    import defect_plugins.cls  # noqa: F401
    import defect_plugins.seg  # noqa: F401  (registers the mmseg side too)
    from mmpretrain.registry import OPTIM_WRAPPERS as PRETRAIN
    from mmseg.registry import OPTIM_WRAPPERS as SEG

    assert PRETRAIN.get("AutocastOptimWrapper") is AutocastOptimWrapper
    assert SEG.get("AutocastOptimWrapper") is AutocastOptimWrapper


def test_project_losses_are_float32_under_autocast():
    from defect_plugins.anomaly.akf_rd.loss import AkfReverseDistillationLoss
    from defect_plugins.cls.distill.losses import rkd_angle_loss, rkd_distance_loss

    teacher, student = torch.randn(6, 16), torch.randn(6, 16, requires_grad=True)
    maps_t = [torch.randn(2, 4, 5, 5)]
    maps_s = [torch.randn(2, 4, 5, 5, requires_grad=True)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = [rkd_distance_loss(student.bfloat16(), teacher.bfloat16()),
                  rkd_angle_loss(student.bfloat16(), teacher.bfloat16()),
                  AkfReverseDistillationLoss("pixel")([m.bfloat16() for m in maps_t], [m.bfloat16() for m in maps_s])]
    assert all(loss.dtype == torch.float32 for loss in losses)
