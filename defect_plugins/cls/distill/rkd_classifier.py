"""Image classifier trained with relational knowledge distillation from a frozen teacher.

RKD-SARSN (Huang et al., Algorithms 16(11):516, 2023) distils a SARSN teacher into a ResNet34
student with RKD (Park et al., CVPR 2019). Here the student is mmpretrain's own
:class:`~mmpretrain.models.classifiers.ImageClassifier` (backbone / neck / head from the config)
and the teacher is any mmpretrain classifier built from its own config file and checkpoint.

Teacher handling (why each point matters):

* it is built once from ``teacher_config`` + ``teacher_checkpoint``; ``teacher_config`` is a file
  path or a packaged config name (``configs/neu_cls/x.py`` works from a wheel too, see
  :func:`defect_plugins.packaged_configs.resolve_config`); a missing file raises
  :class:`FileNotFoundError` naming it; its weights are loaded strictly;
* it is frozen (``requires_grad=False``) and always in eval mode (``train()`` is overridden), so
  BN statistics never drift and DDP ignores it;
* ``init_weights()`` of the classifier does not touch it (mmengine would otherwise re-initialise
  every child, STACK_NOTES), and it is restored bit-for-bit afterwards in case an ``init_cfg``
  of the whole classifier reached it;
* it is left out of ``state_dict()``: every checkpoint this model writes (Runner checkpoints
  included) holds the student only, and loads into a plain ``ImageClassifier`` config of the
  student for testing or export. Resuming rebuilds the teacher from its config and checkpoint.
  Loading a checkpoint back ignores the missing ``teacher.*`` keys.

The student and teacher see the same preprocessed batch (the student's ``data_preprocessor``);
their preprocessing settings must therefore agree, which is checked when the model is built.
"""
from __future__ import annotations

import copy
import os

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

from defect_plugins.cls.distill.losses import hinton_kd_loss, rkd_angle_loss, rkd_distance_loss
from defect_plugins.packaged_configs import ConfigNotFoundError, resolve_config

TEACHER_PREFIX = "teacher."


class TeacherError(ValueError):
    """The teacher cannot be built as asked (bad config, preprocessing that differs from the student's)."""


class TeacherConfigNotFoundError(ConfigNotFoundError, TeacherError):
    """``teacher_config`` names neither an existing file nor a packaged config."""


def build_teacher(teacher_config: str | dict, teacher_checkpoint: str) -> torch.nn.Module:
    """Build an mmpretrain classifier from a config file (or its ``model`` dict) and load its weights."""
    if isinstance(teacher_config, (str, os.PathLike)):
        # Configs name their teacher as 'configs/neu_cls/x.py' (repo-relative): an existing file
        # wins, else the packaged config of that name, so the same config works from a wheel.
        try:
            teacher_config = resolve_config(teacher_config)
        except ConfigNotFoundError as error:
            raise TeacherConfigNotFoundError(f"teacher {error}") from None
        cfg = Config.fromfile(str(teacher_config))
        if "model" not in cfg:
            raise TeacherError(f"teacher config {teacher_config} has no 'model' entry")
        model_cfg = copy.deepcopy(cfg.model)
        # The Runner gives a config's top-level data_preprocessor to its model; do the same.
        if cfg.get("data_preprocessor") is not None:
            model_cfg.setdefault("data_preprocessor", copy.deepcopy(cfg.data_preprocessor))
    elif isinstance(teacher_config, dict):
        model_cfg = copy.deepcopy(teacher_config)
    else:
        raise TeacherError(f"teacher_config must be a config path or a model dict, got {type(teacher_config).__name__}")
    if not teacher_checkpoint or not os.path.isfile(str(teacher_checkpoint)):
        raise FileNotFoundError(
            f"teacher checkpoint {teacher_checkpoint!r} not found: train the teacher first "
            f"(e.g. defect-train mmpretrain <teacher config>) and pass its .pth as teacher_checkpoint")
    teacher = MODELS.build(model_cfg)
    load_checkpoint(teacher, str(teacher_checkpoint), map_location="cpu", strict=True, logger="current")
    return teacher


def _embedding(feats) -> torch.Tensor:
    last = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if last.dim() == 4:
        last = last.mean(dim=(2, 3))
    return last.flatten(1)


def _same_preprocessing(student, teacher) -> bool:
    keys = ("mean", "std")
    for key in keys:
        a, b = getattr(student, key, None), getattr(teacher, key, None)
        if (a is None) != (b is None) or (a is not None and not torch.allclose(a.float().cpu(), b.float().cpu())):
            return False
    return getattr(student, "to_rgb", False) == getattr(teacher, "to_rgb", False)


@MODELS.register_module()
class RKDClassifier(ImageClassifier):
    """``ImageClassifier`` (the student) + frozen teacher + RKD distance/angle (+ optional Hinton KD) losses.

    Args:
        teacher_config: teacher config path or packaged config name (its ``model`` is used), or a
            model config dict.
        teacher_checkpoint: teacher weights (.pth); required.
        distance_weight: weight of the distance-wise RKD loss (paper: 25).
        angle_weight: weight of the angle-wise RKD loss (paper: 50).
        kd_weight: weight of Hinton's logit distillation (0 turns it off).
        temperature: softmax temperature of the logit distillation.
        Other arguments as :class:`mmpretrain.models.ImageClassifier` (they describe the student).
    """

    def __init__(self, backbone: dict, teacher_config: str | dict, teacher_checkpoint: str,
                 neck: dict | None = None, head: dict | None = None, distance_weight: float = 25.0,
                 angle_weight: float = 50.0, kd_weight: float = 0.0, temperature: float = 4.0,
                 pretrained: str | None = None, train_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if head is None:
            raise TeacherError("RKDClassifier needs a classification head for the student")
        teacher = build_teacher(teacher_config, teacher_checkpoint)
        if not _same_preprocessing(self.data_preprocessor, teacher.data_preprocessor):
            raise TeacherError("teacher and student data_preprocessor differ (mean/std/to_rgb): "
                               "the teacher reads the student's preprocessed batch, so they must agree")
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        teacher.eval()
        teacher._is_init = True  # mmengine BaseModule.init_weights skips initialised children
        self.teacher = teacher
        self.teacher_checkpoint = str(teacher_checkpoint)
        self.distance_weight = float(distance_weight)
        self.angle_weight = float(angle_weight)
        self.kd_weight = float(kd_weight)
        self.temperature = float(temperature)
        self._register_state_dict_hook(_drop_teacher_state)
        self.register_load_state_dict_post_hook(_ignore_missing_teacher_keys)

    # -- teacher stays frozen ----------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def init_weights(self) -> None:
        saved = {k: v.clone() for k, v in self.teacher.state_dict().items()}
        super().init_weights()
        self.teacher.load_state_dict(saved)

    # -- losses ------------------------------------------------------------------------------
    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        feats = self.extract_feat(inputs)
        losses = self.head.loss(feats, data_samples)
        with torch.no_grad():
            teacher_feats = self.teacher.extract_feat(inputs)
        student_emb, teacher_emb = _embedding(feats), _embedding(teacher_feats)
        if self.distance_weight:
            losses["loss_rkd_distance"] = self.distance_weight * rkd_distance_loss(student_emb, teacher_emb)
        if self.angle_weight:
            losses["loss_rkd_angle"] = self.angle_weight * rkd_angle_loss(student_emb, teacher_emb)
        if self.kd_weight:
            with torch.no_grad():
                teacher_logits = self.teacher.head(teacher_feats)
            losses["loss_kd"] = self.kd_weight * hinton_kd_loss(self.head(feats), teacher_logits, self.temperature)
        return losses


def _drop_teacher_state(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + TEACHER_PREFIX)]:
        del state_dict[key]
    return state_dict


def _ignore_missing_teacher_keys(module, incompatible_keys) -> None:
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not (k.startswith(TEACHER_PREFIX) or f".{TEACHER_PREFIX}" in k)]
