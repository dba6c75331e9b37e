"""mmseg metrics for ARCD: pixel AUROC, region IoU/MPA, reconstruction accuracy (RA)."""
from .pixel_auroc import PixelAUROC
from .reconstruction import ReconstructionAccuracy
from .region_iou import RegionIoUMetric

__all__ = ["PixelAUROC", "ReconstructionAccuracy", "RegionIoUMetric"]
