"""AKF reverse distillation (Zhao, Wang, Zhu, Xue, 2025) for anomalib.

Reverse distillation (Deng & Li, CVPR 2022) with asymptotic knowledge fusion
(AKF) and a residual one-class embedding (OCE) as its bottleneck.
"""

from .lightning_model import AkfReverseDistillation
from .loss import AkfReverseDistillationLoss
from .torch_model import AkfReverseDistillationModel

__all__ = ["AkfReverseDistillation", "AkfReverseDistillationLoss", "AkfReverseDistillationModel"]
