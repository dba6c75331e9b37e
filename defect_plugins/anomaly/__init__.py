"""anomalib models of defect-plugins.

Use from an anomalib YAML config with
``model: class_path: defect_plugins.anomaly.AkfReverseDistillation``.
"""

from .akf_rd import AkfReverseDistillation, AkfReverseDistillationLoss, AkfReverseDistillationModel
from .teacher import load_teacher_weights

__all__ = [
    "AkfReverseDistillation",
    "AkfReverseDistillationLoss",
    "AkfReverseDistillationModel",
    "load_teacher_weights",
]
