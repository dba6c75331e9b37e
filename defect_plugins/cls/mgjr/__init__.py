"""MGJR: multi-grained teacher-student joint representation learning (Meng et al., J. Industrial
Information Integration 48:100958, 2025), as mmpretrain components.

==================  ==================================================  ======================
registry            name                                                module
==================  ==================================================  ======================
MODELS (block)      ``IEMA``                                            :mod:`.iema`
MODELS (block)      ``GLAttention``                                     :mod:`.gl_attention`
MODELS (backbone)   ``MGJRStudent``                                     :mod:`.student`
MODELS (backbone)   ``TimmViT`` (the teacher)                           :mod:`.teacher`
MODELS              ``AGTSNoise`` (batch corruption for AGTS)           :mod:`.noise`
TRANSFORMS          ``AddGaussianNoise``, ``AddSaltPepperNoise``,       :mod:`.noise`
                    ``AddGaussianBlur`` (the training noise kinds)
TRANSFORMS          ``AddSpeckleNoise``, ``JPEGCompression``,           :mod:`.corruptions`
                    ``AddMotionBlur``, ``ReduceContrast`` (held out)
MODELS (model)      ``MGJRClassifier`` (unified loss, stage 2)          :mod:`.classifier`
MODELS (model)      ``NoiseAugClassifier`` (control: noise + CE only)   :mod:`.noise_aug`
HOOKS               ``EvalInCheckpointHook`` (test accuracy in meta)    :mod:`.eval_meta`
==================  ==================================================  ======================

Training: stage 1 trains the teacher (``configs/mgjr/vit_teacher_*.py``, or the CNN-teacher option
``configs/mgjr/resnet34_teacher_neu_cls_64.py``), stage 2 trains
the student jointly (``configs/mgjr/mgjr_*.py``), both with ``defect-train mmpretrain`` (packaged
configs, see ``defect-configs list``; ``tools/mim_train.sh`` in a clone).
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (a no-op when defect_plugins.cls already applied them)
from defect_plugins.cls.mgjr.classifier import (DEFAULT_LOSS_WEIGHTS, LOSS_TERMS, TEACHER_TERMS, FeatureDimError,
                                                MGJRClassifier)
from defect_plugins.cls.mgjr.corruptions import (HELD_OUT_KINDS, AddMotionBlur, AddSpeckleNoise, JPEGCompression,
                                                 ReduceContrast, jpeg_compress, motion_blur, reduce_contrast,
                                                 speckle_noise)
from defect_plugins.cls.mgjr.eval_meta import (EvalInCheckpointHook, WeakTeacherError, check_teacher_accuracy,
                                               read_evaluation)
from defect_plugins.cls.mgjr.gl_attention import GLAttention
from defect_plugins.cls.mgjr.iema import IEMA
from defect_plugins.cls.mgjr.noise import (NOISE_KINDS, AddGaussianBlur, AddGaussianNoise, AddSaltPepperNoise,
                                           AGTSNoise, gaussian_blur, gaussian_noise, salt_pepper_noise)
from defect_plugins.cls.mgjr.noise_aug import NoiseAugClassifier
from defect_plugins.cls.mgjr.student import MGJRStudent
from defect_plugins.cls.mgjr.teacher import TimmViT
from defect_plugins.cls.mgjr.views import NormalisationError

__all__ = [
    "AGTSNoise", "AddGaussianBlur", "AddGaussianNoise", "AddMotionBlur", "AddSaltPepperNoise", "AddSpeckleNoise",
    "DEFAULT_LOSS_WEIGHTS", "EvalInCheckpointHook", "FeatureDimError", "GLAttention", "HELD_OUT_KINDS", "IEMA",
    "JPEGCompression", "LOSS_TERMS", "MGJRClassifier", "MGJRStudent", "NOISE_KINDS", "NoiseAugClassifier",
    "NormalisationError", "ReduceContrast", "TEACHER_TERMS", "TimmViT", "WeakTeacherError", "check_teacher_accuracy",
    "gaussian_blur", "gaussian_noise", "jpeg_compress", "motion_blur", "read_evaluation", "reduce_contrast",
    "salt_pepper_noise", "speckle_noise",
]
