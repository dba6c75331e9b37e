"""Datasets registered in mmpretrain's ``DATASETS`` for CycleGAN training."""
from defect_plugins.gan.datasets.unpaired import (
    IMAGE_SUFFIXES,
    ImageFolderError,
    UnpairedImageDataset,
    check_image_folder,
    list_images,
    read_image,
)

__all__ = ["IMAGE_SUFFIXES", "ImageFolderError", "UnpairedImageDataset", "check_image_folder", "list_images",
           "read_image"]
