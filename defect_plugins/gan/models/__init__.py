"""CycleGAN models registered in mmpretrain's ``MODELS`` (Zhu et al. 2017; RKD-SARSN section 2.1)."""
from defect_plugins.gan.models.cyclegan import DIRECTIONS, CycleGAN
from defect_plugins.gan.models.data_preprocessor import UnpairedDataPreprocessor, to_uint8, to_unit_range
from defect_plugins.gan.models.discriminator import PatchDiscriminator
from defect_plugins.gan.models.generator import ResnetGenerator
from defect_plugins.gan.models.image_pool import ImagePool

__all__ = ["CycleGAN", "DIRECTIONS", "ImagePool", "PatchDiscriminator", "ResnetGenerator",
           "UnpairedDataPreprocessor", "to_uint8", "to_unit_range"]
