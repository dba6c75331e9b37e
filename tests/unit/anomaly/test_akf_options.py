"""The paper's fusion readings: literal fusion, 'positional' (old 'fixed'), C-channel input-conditioned weights,
per-level maps for overlays, live parameter counts."""

from __future__ import annotations

import warnings

import pytest
import torch
from anomalib.data import ImageItem
from anomalib.models import ReverseDistillation
from anomalib.visualization.image.item_visualizer import visualize_image_item

from defect_plugins.anomaly import AkfReverseDistillation
from defect_plugins.anomaly.akf_rd.components import AsymptoticKnowledgeFusion, FusionStep
from defect_plugins.anomaly.params import count_parameters, live_parameters

from tests.unit.anomaly.test_akf_model import SIZE, _model  # one factory for the AKF-RD test models


def test_literal_fusion_weights_the_raw_deeper_level() -> None:
    torch.manual_seed(0)
    step = FusionStep(8, 16, stride=2, weight_mode="positional", deeper_size=(8, 8), lateral=False).eval()
    assert not any("lateral" in key for key in step.state_dict())
    running, deeper = torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        out = step(running, deeper)
        # zero-initialised logits: the plain average of the resampled running result and the raw deeper level
        torch.testing.assert_close(out, 0.5 * step.down(running) + 0.5 * deeper)
    default = FusionStep(8, 16, stride=2, weight_mode="positional", deeper_size=(8, 8))
    lateral = sum(p.numel() for p in default.lateral.parameters())
    assert sum(p.numel() for p in default.parameters()) - sum(p.numel() for p in step.parameters()) == lateral > 0


def test_literal_model_trains_and_default_is_unchanged() -> None:
    literal, default = _model(akf_lateral=False), _model()
    assert all(step.lateral.__class__.__name__ == "Sequential" for step in default.model.bottleneck.fusion.steps)
    assert default.hparams["akf_lateral"] is True and default.hparams["akf_weights"] == "positional"
    literal.model.train()
    loss = literal.loss(*literal.model(torch.rand(2, 3, SIZE, SIZE)))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in literal.model.bottleneck.fusion.parameters())


def test_fixed_is_the_deprecated_name_of_positional() -> None:
    with pytest.warns(DeprecationWarning, match="'positional'"):
        old = _model(akf_weights="fixed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = _model(akf_weights="positional")
    assert old.hparams["akf_weights"] == "positional"  # checkpoints record the new name
    assert {k: v.shape for k, v in old.state_dict().items()} == {k: v.shape for k, v in new.state_dict().items()}
    with pytest.warns(DeprecationWarning):
        fusion = AsymptoticKnowledgeFusion([8, 16, 32], [4, 8, 16], "fixed", (64, 64))
    assert fusion.steps[0].weight_mode == "positional"
    with pytest.raises(ValueError, match="adaptive_channels"):
        AsymptoticKnowledgeFusion([8, 16, 32], [4, 8, 16], "learned", (64, 64))


def test_adaptive_channels_gives_c_weights_per_input_at_any_size() -> None:
    torch.manual_seed(0)
    step = FusionStep(8, 16, stride=2, weight_mode="adaptive_channels")
    assert step.weight_head.out_channels == 2 * 16
    a, b = torch.randn(2, 16, 5, 7), torch.randn(2, 16, 5, 7)
    w_a, w_b = step.level_weights(a, b)
    assert w_a.shape == w_b.shape == (2, 16, 5, 7)
    torch.testing.assert_close(w_a + w_b, torch.ones_like(w_a))
    model = _model(akf_weights="adaptive_channels").eval()
    with torch.no_grad():
        out = model.model(torch.rand(1, 3, 96, 96))
    assert out.anomaly_map.shape[:2] == (1, 1) and torch.isfinite(out.anomaly_map).all()  # map at image_size


def test_per_level_maps_rebuild_the_anomaly_map_and_fit_the_overlay() -> None:
    images = torch.rand(2, 3, SIZE, SIZE)
    model = _model().eval()
    levels = model.level_anomaly_maps(images)
    assert levels.shape == (2, 3, SIZE, SIZE)
    with torch.no_grad():
        summed = model.model(images).anomaly_map
    # RD's map = blur(M1 + M2 + M3) = sum of the blurred level maps (the blur is linear)
    torch.testing.assert_close(levels.sum(dim=1, keepdim=True), summed, atol=1e-5, rtol=1e-5)
    deepest = _model(anomaly_map_level_weights=[0, 0, 1]).eval()
    with torch.no_grad():
        torch.testing.assert_close(deepest.model(images).anomaly_map, deepest.level_anomaly_maps(images)[:, 2:3])
    # anomalib's own item visualiser overlays a level map as it would the anomaly map
    item = ImageItem(image=images[0], anomaly_map=levels[0, 2:3])
    picture = visualize_image_item(item, fields=["image", "anomaly_map"], overlay_fields=[("image", ["anomaly_map"])])
    assert picture is not None and picture.size[0] > 0


def test_live_parameter_counts_leave_out_unused_modules() -> None:
    size = (SIZE, SIZE)
    rd = ReverseDistillation(backbone="resnet18", pre_trained=False, visualizer=False,
                             pre_processor=AkfReverseDistillation.configure_pre_processor(size))
    rd_counts = count_parameters(rd.model, size)
    ocbe = rd.model.bottleneck
    unused = sum(p.numel() for m in (ocbe.conv4, ocbe.bn4) for p in m.parameters())
    assert rd_counts["bottleneck"]["unused"] == unused > 0  # anomalib's conv4/bn4 never run
    concat = count_parameters(_model(fusion="concat").model, size)
    assert concat["bottleneck"]["live"] == rd_counts["bottleneck"]["live"]  # traditional + OCE = RD's OCBE
    default = count_parameters(_model().model, size)
    literal = count_parameters(_model(akf_lateral=False).model, size)
    assert default["bottleneck"]["unused"] == literal["bottleneck"]["unused"] == 0
    laterals = sum(p.numel() for s in _model().model.bottleneck.fusion.steps for p in s.lateral.parameters())
    assert default["bottleneck"]["live"] - literal["bottleneck"]["live"] == laterals
    assert live_parameters(torch.nn.Sequential(torch.nn.Linear(2, 2)), torch.rand(1, 2))["unused"] == 0
