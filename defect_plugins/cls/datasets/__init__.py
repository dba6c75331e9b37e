"""Data sets and data-set wrappers registered in mmpretrain's ``DATASETS``."""
from defect_plugins.cls.datasets.neu_cls import DatasetError, NEUCLSDataset
from defect_plugins.cls.datasets.same_class_mix import SameClassFusionDataset, SameClassMosaicDataset
from defect_plugins.cls.datasets.split import SplitError, stratified_split, write_split

__all__ = [
    "DatasetError",
    "NEUCLSDataset",
    "SameClassFusionDataset",
    "SameClassMosaicDataset",
    "SplitError",
    "stratified_split",
    "write_split",
]
