"""mmseg data sets for ARCD (synthetic strips, NEU-Seg, normal images)."""
from .arcd_datasets import ARCDStripDataset, NEUSegDataset, NormalImageDataset

__all__ = ["ARCDStripDataset", "NEUSegDataset", "NormalImageDataset"]
