"""mmseg metrics for ARCD: per-class IoU, pixel AUROC, region IoU/MPA, reconstruction accuracy (RA)."""
from .class_iou import ClassIoUMetric
from .pixel_auroc import PixelAUROC
from .reconstruction import ReconstructionAccuracy
from .region_iou import RegionIoUMetric

__all__ = ["ClassIoUMetric", "PixelAUROC", "ReconstructionAccuracy", "RegionIoUMetric"]
