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
                    ``AddGaussianBlur``
MODELS (model)      ``MGJRClassifier`` (unified loss, stage 2)          :mod:`.classifier`
==================  ==================================================  ======================

Training: stage 1 fine-tunes the teacher (``configs/mgjr/vit_teacher_*.py``), stage 2 trains
the student jointly (``configs/mgjr/mgjr_*.py``), both with ``defect-train mmpretrain`` (packaged
configs, see ``defect-configs list``; ``tools/mim_train.sh`` in a clone).
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (a no-op when defect_plugins.cls already applied them)
from defect_plugins.cls.mgjr.classifier import DEFAULT_LOSS_WEIGHTS, LOSS_TERMS, FeatureDimError, MGJRClassifier
from defect_plugins.cls.mgjr.gl_attention import GLAttention
from defect_plugins.cls.mgjr.iema import IEMA
from defect_plugins.cls.mgjr.noise import (AddGaussianBlur, AddGaussianNoise, AddSaltPepperNoise, AGTSNoise,
                                           gaussian_blur, gaussian_noise, salt_pepper_noise)
from defect_plugins.cls.mgjr.student import MGJRStudent
from defect_plugins.cls.mgjr.teacher import TimmViT

__all__ = [
    "AGTSNoise", "AddGaussianBlur", "AddGaussianNoise", "AddSaltPepperNoise", "DEFAULT_LOSS_WEIGHTS",
    "FeatureDimError", "GLAttention", "IEMA", "LOSS_TERMS", "MGJRClassifier", "MGJRStudent", "TimmViT",
    "gaussian_blur", "gaussian_noise", "salt_pepper_noise",
]
