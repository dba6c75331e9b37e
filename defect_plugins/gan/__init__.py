"""CycleGAN defect-sample migration (RKD-SARSN, Huang et al. 2023, section 2.1; Zhu et al., ICCV 2017).

Importing this package registers its components in mmpretrain's registries; configs load it with
``custom_imports=dict(imports=['defect_plugins.gan'], allow_failed_imports=False)`` and
``default_scope='mmpretrain'`` (see ``configs/cyclegan/``), and ``defect-train mmpretrain`` trains
them with mmengine's ``Runner``. ``defect-migrate`` (:mod:`defect_plugins.gan.cli`) wraps training
and the translation of a labelled folder.

==============================  ====================================  =========================================
registry                        name                                  module
==============================  ====================================  =========================================
MODELS                          ``CycleGAN``                          :mod:`defect_plugins.gan.models.cyclegan`
MODELS                          ``ResnetGenerator``                   :mod:`defect_plugins.gan.models.generator`
MODELS                          ``PatchDiscriminator``                :mod:`defect_plugins.gan.models.discriminator`
MODELS                          ``UnpairedDataPreprocessor``          :mod:`defect_plugins.gan.models.data_preprocessor`
DATASETS                        ``UnpairedImageDataset``              :mod:`defect_plugins.gan.datasets.unpaired`
HOOKS                           ``CycleGANSampleHook``                :mod:`defect_plugins.gan.hooks.sample_grid`
OPTIM_WRAPPER_CONSTRUCTORS      ``SubmoduleOptimWrapperConstructor``  :mod:`defect_plugins.gan.optim`
==============================  ====================================  =========================================

Why not mmagic's CycleGAN: mmagic 1.2.0 cannot be imported next to this stack (``mmagic.models``
imports every editor, several of which import compiled ``mmcv.ops`` that mmcv-lite lacks, and its
requirements pull opencv-contrib-python, transformers, diffusers and mediapipe); see README.
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (checkpoint loading under torch >= 2.6 for resume)
from defect_plugins.gan import datasets, hooks, models, optim  # noqa: F401,E402
