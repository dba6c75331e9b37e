"""OpenVINO export of a classifier with its preprocessing: f32 parity, latency, atomic files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS

from defect_plugins.deploy.classifier_openvino import benchmark, export_classifier, parity, torch_probabilities

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


def test_export_parity_at_f32_and_latency(classifier, tmp_path):
    xml = export_classifier(classifier, tmp_path / "out" / "sarsn18.xml", 32, classes=[str(i) for i in range(6)])
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and xml.with_suffix(".json").is_file()
    assert not [p for p in xml.parent.iterdir() if p.name.startswith(".export-")]  # no leftovers
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    reference = torch_probabilities(classifier, images)
    assert reference.max() - reference.min() > 0.05  # a meaningful comparison, not uniform outputs
    assert parity(classifier, xml, images) < 1e-4
    # the graph really applies BGR->RGB: swapping channels changes the output
    assert np.abs(torch_probabilities(classifier, images[..., ::-1].copy()) - reference).max() > 1e-4
    timing = benchmark(xml, 32, runs=5, warmup=1, threads=1)
    assert timing["median_ms"] > 0 and timing["precision"] == "f32"


def test_cli_reports_missing_checkpoint(tmp_path, repo_root):
    from defect_plugins.deploy.classifier_openvino import main

    assert main([str(repo_root / "configs/neu_cls/sarsn34_neu_cls_64.py"), str(tmp_path / "none.pth"),
                 "--out", str(tmp_path)]) == 2
