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


ABLATION = {  # config stem -> (backbone type, depth, what else the backbone must say)
    "resnet50_neu_cls_64": ("ResNet", 50, {}),
    "seresnet34_neu_cls_64": ("SEResNetBasic", 34, {}),
    "seresnet50_neu_cls_64": ("SEResNet", 50, {}),
    "drsn34_neu_cls_64": ("SARSN", 34, dict(shrinkage="drsn", stem="imagenet")),
    "drsn50_neu_cls_64": ("SARSN", 50, dict(shrinkage="drsn", stem="imagenet")),
    "sarsn34_neu_cls_64": ("SARSN", 34, dict(shrinkage="sarsn", stem="imagenet")),
    "sarsn50_neu_cls_64": ("SARSN", 50, dict(shrinkage="sarsn", stem="imagenet")),
    "sarsn34-se_neu_cls_64": ("SARSN", 34, dict(shrinkage="sarsn_se", stem="imagenet")),
    "sarsn34-deltaalpha_neu_cls_64": ("SARSN", 34, dict(shrinkage="delta_alpha", stem="imagenet")),
    "sarsn34-paperstem_neu_cls_64": ("SARSN", 34, dict(shrinkage="sarsn", stem="paper")),
    "sarsn34-paperstem-densehead_neu_cls_64": ("SARSN", 34, dict(shrinkage="sarsn", stem="paper")),
}


@pytest.mark.parametrize("name", sorted(ABLATION))
def test_ablation_configs_say_what_their_names_say(name):
    cfg = Config.fromfile(str(CONFIG_DIR / f"{name}.py"))
    kind, depth, extra = ABLATION[name]
    backbone = cfg.model.backbone
    assert backbone.type == kind and backbone.depth == depth and cfg.img_size == 64
    assert {k: backbone.get(k) for k in extra} == extra
    assert "learn_slope" not in backbone  # the variant is named by shrinkage only
    head = cfg.model.head
    if name.endswith("densehead_neu_cls_64"):  # Fig. 1b: dense layer + dropout, then the FC classifier
        assert head.type == "StackedLinearClsHead" and head.mid_channels == [256] and head.dropout_rate == 0.5
    else:
        assert head.type == "LinearClsHead"
    assert head.in_channels == (512 if depth == 34 else 2048)


@pytest.mark.parametrize("backbone", ["resnet34", "sarsn34"])
def test_imbalance_adaptive_config_names_its_k_mode(backbone):
    cfg = Config.fromfile(str(CONFIG_DIR / f"{backbone}_ial_neu_cls_64.py"))
    loss = cfg.model.head.loss
    assert loss.type == "ImbalanceAdaptiveLoss" and loss.k_mode == "per_class" and loss.imbalance_ratio is None
    assert [h["type"] for h in cfg.custom_hooks] == ["ImbalanceAdaptiveWeightHook"]


@pytest.mark.parametrize("backbone", ["resnet34", "sarsn34"])
def test_imbalance_benchmark_configs_differ_from_the_baseline_in_the_loss_only(backbone):
    """The imbalanced benchmark compares losses: everything else is the baseline's."""
    base = Config.fromfile(str(CONFIG_DIR / f"{backbone}_neu_cls_64.py"))
    for variant, loss_type in (("focal", "FocalLoss"), ("ial", "ImbalanceAdaptiveLoss")):
        cfg = Config.fromfile(str(CONFIG_DIR / f"{backbone}_{variant}_neu_cls_64.py"))
        assert cfg.model.head.loss.type == loss_type
        assert cfg.model.backbone == base.model.backbone
        assert cfg.optim_wrapper == base.optim_wrapper and cfg.train_cfg == base.train_cfg
        assert cfg.train_dataloader == base.train_dataloader


def test_paper_augmentation_config_differs_from_sarsn34_in_the_data_only():
    """The augmentation study compares the paper's enhancement on / off: model and recipe are SARSN-34's."""
    base = Config.fromfile(str(CONFIG_DIR / "sarsn34_neu_cls_64.py"))
    cfg = Config.fromfile(str(CONFIG_DIR / "sarsn34_paperaug_neu_cls_64.py"))
    assert cfg.model == base.model and cfg.optim_wrapper == base.optim_wrapper and cfg.train_cfg == base.train_cfg
    fusion = cfg.train_dataloader.dataset
    assert fusion.type == "SameClassFusionDataset" and fusion.dataset.type == "SameClassMosaicDataset"
    assert fusion.dataset.dataset.type == "NEUCLSDataset" and fusion.dataset.pipeline == []
    loads = [t["type"] for t in fusion.dataset.dataset.pipeline]
    assert loads == ["CheckedLoadImageFromFile", "SteelBilateralFilter", "HistogramContrastStretch"]
    assert [t["type"] for t in cfg.test_dataloader.dataset.pipeline][:3] == loads  # test images preprocessed alike


def test_paper_preprocessing_config_is_paperaug_without_the_mixing():
    """Point 6 split in two: the preprocessing-only run differs from SARSN-34 in its load steps only."""
    base = Config.fromfile(str(CONFIG_DIR / "sarsn34_neu_cls_64.py"))
    pre = Config.fromfile(str(CONFIG_DIR / "sarsn34_paperpre_neu_cls_64.py"))
    aug = Config.fromfile(str(CONFIG_DIR / "sarsn34_paperaug_neu_cls_64.py"))
    assert pre.model == base.model and pre.optim_wrapper == base.optim_wrapper and pre.train_cfg == base.train_cfg
    loads = aug.train_dataloader.dataset.dataset.dataset.pipeline
    assert pre.train_dataloader.dataset.type == "NEUCLSDataset"
    assert pre.train_dataloader.dataset.pipeline == loads + aug.train_dataloader.dataset.pipeline
    assert pre.train_dataloader.dataset.pipeline[len(loads):] == base.train_dataloader.dataset.pipeline[1:]
    assert pre.test_dataloader == aug.test_dataloader


def test_rkd_students_name_their_teacher_and_student():
    for student, depth in (("resnet34", 34), ("resnet18", 18)):
        cfg = Config.fromfile(str(CONFIG_DIR / f"rkd_sarsn34_{student}_neu_cls_64.py"))
        alone = Config.fromfile(str(CONFIG_DIR / f"{student}_neu_cls_64.py"))
        assert cfg.model.backbone == alone.model.backbone and cfg.model.backbone.depth == depth
        assert cfg.model.teacher_config.endswith("sarsn34_neu_cls_64.py")
        assert cfg.optim_wrapper == alone.optim_wrapper and cfg.train_dataloader == alone.train_dataloader
