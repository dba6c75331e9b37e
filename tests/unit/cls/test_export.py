"""OpenVINO export of a SARSN classifier through the one export path: preprocessing as OpenVINO steps, f32 parity."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

from defect_plugins.deploy.export.families import classifier as family
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.runtime import compile_model, latency, openvino_predict, save_ir

PRE = dict(num_classes=6, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier', backbone=dict(type='SARSN', depth=18),
                              neck=dict(type='GlobalAveragePooling'),
                              head=dict(type='LinearClsHead', num_classes=6, in_channels=512), data_preprocessor=PRE))
    model.init_weights()
    with torch.no_grad():  # sharpen the random head so probabilities differ clearly between images
        model.head.fc.weight.normal_(0, 1.0)
    return model.eval()


def mmpretrain_probabilities(classifier, images: np.ndarray) -> np.ndarray:
    """mmpretrain's own path (data_preprocessor + predict) on uint8 BGR ``(N, H, W, 3)``."""
    inputs = [torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))) for img in images]
    with torch.no_grad():
        data = classifier.data_preprocessor({"inputs": inputs}, False)
        return classifier(data["inputs"], mode="tensor").softmax(dim=1).numpy()


def test_export_parity_at_f32_and_latency(classifier, tmp_path):
    ov_model = family.convert(classifier, (32, 32), dynamic=False)
    metadata = ModelMetadata(family="classifier", precision="FP32", input_size=(32, 32),
                             class_names=[str(i) for i in range(6)], outputs=["probs"])
    xml = save_ir(ov_model, tmp_path / "out" / "sarsn18.xml", metadata)
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and xml.with_suffix(".meta.json").is_file()
    assert not [p for p in xml.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    reference = mmpretrain_probabilities(classifier, images)
    assert reference.max() - reference.min() > 0.05  # a meaningful comparison, not uniform outputs
    with torch.no_grad():  # the torch reference of the export path is mmpretrain's own preprocessing
        ours = family.reference_module(classifier)(torch.from_numpy(images)).numpy()
    assert np.abs(ours - reference).max() < 1e-5
    assert np.abs(openvino_predict(xml)(images)[0] - reference).max() < 1e-4
    # the graph really applies BGR->RGB: swapping channels changes the output
    assert np.abs(mmpretrain_probabilities(classifier, images[..., ::-1].copy()) - reference).max() > 1e-4
    timing = latency(compile_model(xml, "f32", num_threads=1), images[:1], runs=5, warmup=1)
    assert timing["p50_ms"] > 0


def test_cli_reports_missing_checkpoint(tmp_path, repo_root, capsys):
    from defect_plugins.deploy.export import main

    assert main(["classifier", "--config", str(repo_root / "configs/neu_cls/sarsn34_neu_cls_64.py"),
                 "--checkpoint", str(tmp_path / "none.pth"), "--out", str(tmp_path / "m.xml")]) == 1
    assert "none.pth not found" in capsys.readouterr().err and not (tmp_path / "m.xml").exists()
