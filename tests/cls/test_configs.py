"""Every NEU-CLS config parses (mmpretrain:: bases through the compat layer) and builds its model."""
from __future__ import annotations


import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from defect_plugins.packaged_configs import config_root, resolve_config

CONFIG_DIR = config_root() / "neu_cls"
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.py"))


def test_all_variants_exist():
    names = {p.stem for p in CONFIGS}
    for size in (64, 224):
        assert f"resnet34_neu_cls_{size}" in names
        for depth in (34, 50, 101):
            assert f"sarsn{depth}_neu_cls_{size}" in names and f"rkd_sarsn{depth}_resnet34_neu_cls_{size}" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses_and_builds(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == "mmpretrain" and "defect_plugins.cls" in cfg.custom_imports["imports"]
    size = cfg.img_size
    assert any(t.get("scale") == (size, size) for t in cfg.test_dataloader.dataset.pipeline if isinstance(t, dict))
    assert {m["type"] for m in cfg.val_evaluator} == {"Accuracy", "SingleLabelMetric", "ConfusionMatrix"}
    if cfg.model.type == "RKDClassifier":
        assert resolve_config(cfg.model.teacher_config).is_file()  # the teacher config it names exists
        assert cfg.model.distance_weight == 25.0 and cfg.model.angle_weight == 50.0
        return
    model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    assert model.head.num_classes == 6
