"""AKF-RD model: every ablation variant trains, the loss falls, backbones set the channels, bad input is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.models.image.reverse_distillation.loss import ReverseDistillationLoss
from anomalib.metrics import AUPRO, AUROC, F1Score

from defect_plugins.anomaly import AkfReverseDistillation, AkfReverseDistillationLoss, load_teacher_weights
from defect_plugins.anomaly.akf_rd.components import OneClassEmbedding, ResampleEmbedding
from defect_plugins.anomaly.akf_rd.components.fusion import AsymptoticKnowledgeFusion, ConcatFusion

SIZE = 64


def _model(**kwargs: object) -> AkfReverseDistillation:
    torch.manual_seed(0)
    defaults = {"backbone": "resnet18", "image_size": (SIZE, SIZE), "pre_trained": False, "visualizer": False}
    defaults.update(kwargs)
    return AkfReverseDistillation(**defaults)  # type: ignore[arg-type]


def _batch(n: int = 4, size: int = SIZE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, size, size, generator=generator)


@pytest.mark.parametrize(
    ("fusion", "oce", "akf_weights", "fusion_type", "embedding_type"),
    [
        ("concat", False, "fixed", ConcatFusion, ResampleEmbedding),  # traditional fusion
        ("concat", True, "fixed", ConcatFusion, OneClassEmbedding),  # traditional + OCE (= RD)
        ("akf", False, "fixed", AsymptoticKnowledgeFusion, ResampleEmbedding),  # AKF
        ("akf", True, "fixed", AsymptoticKnowledgeFusion, OneClassEmbedding),  # AKF + OCE (paper)
        ("akf", True, "adaptive", AsymptoticKnowledgeFusion, OneClassEmbedding),  # input-conditioned weights
    ],
)
def test_every_ablation_variant_builds_and_trains_a_step(
    fusion: str, oce: bool, akf_weights: str, fusion_type: type, embedding_type: type
) -> None:
    model = _model(fusion=fusion, oce=oce, akf_weights=akf_weights)
    assert isinstance(model.model.bottleneck.fusion, fusion_type)
    assert isinstance(model.model.bottleneck.embedding, embedding_type)
    optimizer = model.configure_optimizers()
    teacher_before = [p.detach().clone() for p in model.model.encoder.parameters()]
    student_before = [p.detach().clone() for p in model.trainable_parameters()]
    model.model.train()
    loss = model.loss(*model.model(_batch()))
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(student_before, model.trainable_parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, model.model.encoder.parameters(), strict=True))
    model.model.eval()
    with torch.no_grad():
        out = model.model(_batch(2))
    assert out.anomaly_map.shape == (2, 1, SIZE, SIZE)
    assert out.pred_score.shape == (2, 1)


def test_loss_falls_on_a_fixed_batch() -> None:
    model = _model(lr=1e-3)
    optimizer = model.configure_optimizers()
    batch = _batch()
    model.model.train()
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = model.loss(*model.model(batch))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_paper_optimizer_defaults() -> None:
    model = _model()
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == pytest.approx(1e-4)
    trainable = {id(p) for p in model.trainable_parameters()}
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == trainable
    assert not trainable & {id(p) for p in model.model.encoder.parameters()}


@pytest.mark.parametrize(("backbone", "decoder_channels"), [("resnet34", 512), ("resnet50", 2048)])
def test_channels_follow_the_backbone(backbone: str, decoder_channels: int) -> None:
    model = _model(backbone=backbone)
    teacher = list(model.model.encoder(_batch(1)).values())
    fused = model.model.bottleneck(teacher)
    assert fused.shape == (1, decoder_channels, SIZE // 32, SIZE // 32)
    model.model.eval()
    with torch.no_grad():
        assert model.model(_batch(1)).anomaly_map.shape == (1, 1, SIZE, SIZE)


def test_metrics_are_defined_in_the_model() -> None:
    metrics = _model().evaluator.test_metrics
    names = {metric.name for metric in metrics}
    assert names == {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score", "pixel_AUPRO"}
    assert {type(m) for m in metrics} == {AUROC, F1Score, AUPRO}


def test_wrong_input_size_names_the_expected_size() -> None:
    model = _model()
    model.model.eval()
    with pytest.raises(ValueError, match=r"built for input size \(64, 64\), got \(96, 96\)"):
        model.model(_batch(1, size=96))
    # the full module resizes any image to image_size first, as the exported model does
    model.eval()
    with torch.no_grad():
        assert model(_batch(1, size=96)).anomaly_map.shape[-2:] == (SIZE, SIZE)


def test_adaptive_model_takes_other_sizes() -> None:
    model = _model(akf_weights="adaptive")
    model.model.eval()
    with torch.no_grad():
        assert model.model(_batch(1, size=96)).anomaly_map.shape[-2:] == (SIZE, SIZE)


def test_bad_configuration_errors() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        _model(image_size=(80, 80))
    with pytest.raises(ValueError, match="fusion"):
        _model(fusion="sum")
    with pytest.raises(ValueError, match="exactly three teacher layers"):
        _model(layers=("layer1", "layer2"))


def test_loss_modes() -> None:
    torch.manual_seed(0)
    teacher = [torch.randn(2, 8, 4, 4), torch.randn(2, 16, 2, 2)]
    student = [torch.randn(2, 8, 4, 4), torch.randn(2, 16, 2, 2)]
    flat = AkfReverseDistillationLoss("flat")(teacher, student)
    assert torch.allclose(flat, ReverseDistillationLoss()(teacher, student))
    pixel = AkfReverseDistillationLoss("pixel")(teacher, student)
    expected = sum((1 - torch.nn.functional.cosine_similarity(t, s, dim=1)).mean() for t, s in zip(teacher, student))
    assert torch.allclose(pixel, expected)
    assert AkfReverseDistillationLoss("pixel")(teacher, teacher) == pytest.approx(0.0, abs=1e-6)


def test_teacher_weights_from_a_torchvision_state_dict(tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(3)
    state = {k: v for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}
    path = tmp_path / "resnet18_tv.pth"
    torch.save(state, path)
    model = _model(teacher_weights=str(path), pre_trained=True)  # the local file wins over the hub
    loaded = model.model.encoder.feature_extractor.state_dict()
    assert torch.equal(loaded["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    assert torch.equal(loaded["conv1.weight"], state["conv1.weight"])
    # wrapped checkpoints ({"state_dict": {"module.<key>": ...}}) load too
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    unused = load_teacher_weights(model.model.encoder.feature_extractor, wrapped)
    assert all(k.startswith("layer4.") for k in unused)


def test_missing_teacher_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "teacher.pth"
    with pytest.raises(FileNotFoundError, match="teacher.pth"):
        _model(teacher_weights=str(missing))


def test_mismatched_teacher_weights_file_is_named(tmp_path: Path) -> None:
    import torchvision

    wrong = tmp_path / "resnet34_like.pth"
    state = torchvision.models.resnet18().state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(256, 64, 3, 3)  # another network's layer shape
    torch.save(state, wrong)
    with pytest.raises(ValueError, match=r"resnet34_like\.pth.*shape mismatches.*layer2\.0\.conv1\.weight"):
        _model(teacher_weights=str(wrong))
    few = tmp_path / "few.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, few)
    with pytest.raises(ValueError, match=r"few\.pth.*missing"):
        _model(teacher_weights=str(few))
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(ValueError, match=r"list\.pth"):
        _model(teacher_weights=str(not_a_state_dict))


def test_checkpoint_reload_needs_neither_hub_nor_teacher_file(tmp_path: Path) -> None:
    """The checkpoint holds the teacher: reload/export work offline and without the weights file."""
    import torchvision
    from lightning.pytorch import Trainer

    teacher = tmp_path / "teacher.pth"
    state = torchvision.models.resnet18().state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, teacher)
    model = _model(teacher_weights=str(teacher), fusion="concat", oce=False)
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_epochs=0)
    trainer.strategy.connect(model)
    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    teacher.unlink()
    reloaded = AkfReverseDistillation.load_from_checkpoint(checkpoint, map_location="cpu")
    assert reloaded.hparams["fusion"] == "concat" and reloaded.hparams["oce"] is False
    original = model.model.encoder.feature_extractor.state_dict()
    for key, value in reloaded.model.encoder.feature_extractor.state_dict().items():
        assert torch.equal(value, original[key]), key


def test_anomaly_map_level_weights_and_sigma() -> None:
    """Default weights reproduce anomalib's RD map; [0, 0, 1] is the blurred deepest-level map (paper Fig. 6, M3)."""
    from anomalib.models.components import GaussianBlur2d
    from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerator

    from defect_plugins.anomaly.akf_rd.anomaly_map import build_anomaly_map_generator

    torch.manual_seed(0)
    student = [torch.randn(2, c, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]
    teacher = [torch.randn_like(f) for f in student]
    default = build_anomaly_map_generator((32, 32), "add", sigma=2)
    assert torch.allclose(default(student, teacher),
                          AnomalyMapGenerator((32, 32), sigma=2, mode="add")(student, teacher))
    deepest = build_anomaly_map_generator((32, 32), "add", sigma=2, level_weights=(0, 0, 1))
    m3 = deepest.level_maps(student, teacher)[2]
    blur = GaussianBlur2d(kernel_size=(deepest.kernel_size, deepest.kernel_size), sigma=(2, 2))
    assert torch.allclose(deepest(student, teacher), blur(m3), atol=1e-6)
    weighted = build_anomaly_map_generator((32, 32), "add", sigma=2, level_weights=(0.5, 1, 2))
    maps = weighted.level_maps(student, teacher)
    assert torch.allclose(weighted(student, teacher), blur(0.5 * maps[0] + maps[1] + 2 * maps[2]), atol=1e-5)
    for bad in ((1, 1), (0, 0, 0), (1, -1, 1)):
        with pytest.raises(ValueError, match="anomaly_map_level_weights"):
            build_anomaly_map_generator((32, 32), level_weights=bad)
    model = _model(anomaly_map_level_weights=[0, 0, 1], anomaly_map_sigma=6)
    generator = model.model.anomaly_map_generator
    assert generator.level_weights == (0.0, 0.0, 1.0) and generator.sigma == 6
