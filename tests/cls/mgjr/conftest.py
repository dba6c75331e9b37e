"""Fixtures for the MGJR tests: tiny teacher / student configs and a saved random teacher."""
from __future__ import annotations

import pytest
import torch
from mmpretrain.registry import MODELS

import defect_plugins.cls  # noqa: F401  (registers the components)

PRE = dict(num_classes=6, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
TEACHER_WIDTH = 48
TINY_TEACHER = dict(
    type='ImageClassifier',
    backbone=dict(type='TimmViT', arch='vit_tiny_patch16_224', img_size=32, patch_size=8,
                  model_kwargs=dict(depth=2, embed_dim=TEACHER_WIDTH, num_heads=3)),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=TEACHER_WIDTH),
    data_preprocessor=PRE)
TINY_STUDENT = dict(
    backbone=dict(type='MGJRStudent', depths=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_channels=16,
                  iema_groups=4, gl_heads=4),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=128),
    data_preprocessor=PRE)


@pytest.fixture(scope="session")
def teacher_checkpoint(tmp_path_factory):
    """A random tiny ViT teacher saved like an mmengine checkpoint (``{'state_dict': ...}``)."""
    torch.manual_seed(0)
    teacher = MODELS.build(TINY_TEACHER)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pth"
    torch.save({"state_dict": teacher.state_dict(), "meta": {}}, path)
    return path


@pytest.fixture()
def mgjr(teacher_checkpoint):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER,
                              teacher_checkpoint=str(teacher_checkpoint), **TINY_STUDENT,
                              loss_weights=dict(task=1.0, coarse_feat=0.5, coarse_logit=2.0, anchor_feat=3.0,
                                                anchor_logit=0.25)))
    model.init_weights()
    return model


@pytest.fixture(scope="session")
def tiny_neu(tmp_path_factory):
    """Six NEU-like classes, 4 synthetic 32x32 images each, split 2/2 (project's own generator)."""
    from defect_plugins.cls.datasets.split import write_split
    from defect_plugins.data import NEU_CLASSES, make_classification_dataset

    data = make_classification_dataset(tmp_path_factory.mktemp("neu") / "neu", per_class=4, image_size=32, seed=0)
    split = tmp_path_factory.mktemp("neu_split")
    write_split(data, split, NEU_CLASSES, train_ratio=0.5, seed=0)
    return data, split
