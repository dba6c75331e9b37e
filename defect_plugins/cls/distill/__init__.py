"""Knowledge distillation for mmpretrain classifiers (relational KD, Park et al. 2019)."""
from defect_plugins.cls.distill.losses import (
    angle_potentials,
    hinton_kd_loss,
    normalized_distances,
    rkd_angle_loss,
    rkd_distance_loss,
)
from defect_plugins.cls.distill.rkd_classifier import RKDClassifier, TeacherError, build_teacher

__all__ = [
    "RKDClassifier",
    "TeacherError",
    "angle_potentials",
    "build_teacher",
    "hinton_kd_loss",
    "normalized_distances",
    "rkd_angle_loss",
    "rkd_distance_loss",
]
