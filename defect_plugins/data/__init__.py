"""Deterministic synthetic steel-surface data sets, written in the layouts upstream loaders read.

The pixels imitate rolled strip steel (NEU-CLS / NEU-DET, steel-mill camera
views) closely enough for models to learn something real, so tests, demos and
CI can train and evaluate without downloading any data set.

* :func:`make_anomaly_dataset` -- MVTec AD layout (anomalib ``MVTecAD`` / ``Folder``)
* :func:`make_classification_dataset` -- one folder per NEU class (mmpretrain ``CustomDataset``)
* :func:`make_segmentation_dataset` -- mmsegmentation ``img_dir``/``ann_dir`` strips on a machine bed

Console command: ``defect-synth {anomaly,cls,seg} OUT``.
"""

from .atomic import DataGenerationError
from .defects import ANOMALY_DEFECT_TYPES, NEU_CLASSES, SEG_CLASSES
from .layouts import GENERATOR_VERSION, make_anomaly_dataset, make_classification_dataset, make_segmentation_dataset

__all__ = [
    "ANOMALY_DEFECT_TYPES",
    "DataGenerationError",
    "GENERATOR_VERSION",
    "NEU_CLASSES",
    "SEG_CLASSES",
    "make_anomaly_dataset",
    "make_classification_dataset",
    "make_segmentation_dataset",
]
