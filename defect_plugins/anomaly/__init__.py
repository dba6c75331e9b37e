"""anomalib models of defect-plugins.

Use from an anomalib YAML config with
``model: class_path: defect_plugins.anomaly.AkfReverseDistillation``.
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (torch >= 2.6 checkpoint loading, numpy 2)

from .akf_rd import AkfReverseDistillation, AkfReverseDistillationLoss, AkfReverseDistillationModel  # noqa: E402
from .post_processor import RankPreservingPostProcessor  # noqa: E402
from .teacher import load_teacher_weights  # noqa: E402

__all__ = [
    "AkfReverseDistillation",
    "AkfReverseDistillationLoss",
    "AkfReverseDistillationModel",
    "RankPreservingPostProcessor",
    "load_teacher_weights",
]
