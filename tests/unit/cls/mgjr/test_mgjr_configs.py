"""Every configs/mgjr config parses and builds its model (stage-2 configs with a saved teacher of their
teacher config); the teacher configs say what the recipe says."""
from __future__ import annotations

import copy

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from defect_plugins.packaged_configs import config_root, resolve_config

CONFIG_DIR = config_root() / "mgjr"
CONFIGS = sorted(CONFIG_DIR.glob("*.py"))
TEACHERS_64 = ("vit_teacher_p8_neu_cls_64", "resnet34_teacher_neu_cls_64")


def _model_cfg(cfg: Config) -> dict:
    model = copy.deepcopy(cfg.model)
    model.setdefault("data_preprocessor", copy.deepcopy(cfg.data_preprocessor))
    return model


@pytest.fixture(scope="module")
def saved_teachers(tmp_path_factory):
    """teacher config -> a checkpoint of that teacher (random weights, a recorded 99 % accuracy)."""
    folder, cache = tmp_path_factory.mktemp("teachers"), {}

    def get(teacher_config: str) -> str:
        if teacher_config not in cache:
            teacher = MODELS.build(_model_cfg(Config.fromfile(str(resolve_config(teacher_config)))))
            path = folder / f"t{len(cache)}.pth"
            torch.save({"state_dict": teacher.state_dict(),
                        "meta": {"evaluation": dict(metric="accuracy/top1", value=99.0, epoch=1, split={})}}, path)
            cache[teacher_config] = str(path)
        return cache[teacher_config]

    return get


def test_the_issue_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"vit_teacher_p8_neu_cls_64", "resnet34_teacher_neu_cls_64", "mgjr_neu_cls_64_cnn-teacher",
            "mgjr_student_agts-ce_neu_cls_64", "mgjr_neu_cls_64_split-bn", "mgjr_neu_cls_64_teacher-correct"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses_and_builds(path, saved_teachers):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == "mmpretrain" and "defect_plugins.cls" in cfg.custom_imports["imports"]
    model_cfg = _model_cfg(cfg)
    if "teacher_config" in model_cfg:
        model_cfg["teacher_checkpoint"] = saved_teachers(model_cfg["teacher_config"])
    model = MODELS.build(model_cfg)
    assert model.head.num_classes == 6
    if "teacher" in path.stem and "mgjr" not in path.stem:  # a stage-1 teacher: its accuracy goes into its checkpoints
        assert [h["type"] for h in cfg.custom_hooks] == ["EvalInCheckpointHook"]


@pytest.mark.parametrize("name", TEACHERS_64)
def test_stage_one_teachers_use_the_strong_recipe(name):
    cfg = Config.fromfile(str(CONFIG_DIR / f"{name}.py"))
    assert 50 <= cfg.train_cfg.max_epochs <= 100 and cfg.param_scheduler[0].type == "LinearLR"
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_epochs
    steps = [t["type"] for t in cfg.train_dataloader.dataset.pipeline]
    assert steps[1] == "RandomResizedCrop" and steps.count("RandomFlip") == 2
    assert cfg.model.head.loss.type == "LabelSmoothLoss" and cfg.model.head.loss.label_smooth_val == 0.1
    if name.startswith("vit"):
        assert cfg.optim_wrapper.optimizer.type == "AdamW"
        backbone = MODELS.build(cfg.model.backbone)
        grid = backbone.vit.patch_embed.grid_size
        assert grid[0] >= 8 and grid[1] >= 8  # 8x8 tokens at 64 px
        assert backbone(torch.randn(1, 3, 64, 64))[0].shape == (1, 192)


def test_stage_two_configs_name_the_right_teacher_and_the_control_shares_the_noise():
    mgjr = Config.fromfile(str(CONFIG_DIR / "mgjr_neu_cls_64.py")).model
    assert mgjr.teacher_config.endswith("vit_teacher_p8_neu_cls_64.py") and mgjr.teacher_min_accuracy > 90
    cnn = Config.fromfile(str(CONFIG_DIR / "mgjr_neu_cls_64_cnn-teacher.py")).model
    assert cnn.teacher_config.endswith("resnet34_teacher_neu_cls_64.py")
    control = Config.fromfile(str(CONFIG_DIR / "mgjr_student_agts-ce_neu_cls_64.py")).model
    assert control.type == "NoiseAugClassifier" and "teacher_config" not in control
    assert control.noise == mgjr.noise and control.agts_fraction == mgjr.agts_fraction
    assert Config.fromfile(str(CONFIG_DIR / "mgjr_neu_cls_64_split-bn.py")).model.split_bn is True
    assert Config.fromfile(str(CONFIG_DIR / "mgjr_neu_cls_64_teacher-correct.py")).model.distill_on == "teacher_correct"
