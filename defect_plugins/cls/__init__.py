"""mmpretrain components; importing this package registers them in mmpretrain's registries.

==================  ===============================  =============================================
registry            name                             module
==================  ===============================  =============================================
MODELS (backbone)   ``SARSN``                        :mod:`defect_plugins.cls.backbones.sarsn`
MODELS (backbone)   ``SEResNetBasic`` (SE-ResNet     :mod:`defect_plugins.cls.backbones.seresnet_basic`
                    18/34, the ablation baseline)
MODELS (loss)       ``ImbalanceAdaptiveLoss``        :mod:`defect_plugins.cls.losses.imbalance_adaptive`
MODELS (model)      ``RKDClassifier``                :mod:`defect_plugins.cls.distill.rkd_classifier`
HOOKS               ``ImbalanceAdaptiveWeightHook``  :mod:`defect_plugins.cls.hooks.imbalance_adaptive_hook`
DATASETS            ``NEUCLSDataset``                :mod:`defect_plugins.cls.datasets.neu_cls`
DATASETS            ``SameClassMosaicDataset``,      :mod:`defect_plugins.cls.datasets.same_class_mix`
                    ``SameClassFusionDataset``
TRANSFORMS          ``CheckedLoadImageFromFile``     :mod:`defect_plugins.cls.transforms.loading`
TRANSFORMS          ``SteelBilateralFilter``,        :mod:`defect_plugins.cls.transforms.preprocessing`
                    ``HistogramContrastStretch``,
                    ``SteelOtsuDefectMask``
==================  ===============================  =============================================

Configs load them with ``custom_imports=dict(imports=['defect_plugins.cls'], allow_failed_imports=False)``
and ``default_scope='mmpretrain'`` (see ``configs/neu_cls/``). Each further method lives in its own
subpackage and is imported here too: :mod:`defect_plugins.cls.mgjr` (MGJR, see its docstring).
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (mmcv.ops fallbacks for mmseg, checkpoint loading)
from defect_plugins import engine  # noqa: F401,E402  (AutocastOptimWrapper)
from defect_plugins.cls import backbones, datasets, distill, hooks, losses, transforms  # noqa: F401
from defect_plugins.cls import mgjr  # noqa: F401,E402  (MGJR: IEMA, GL-Attention, ViT teacher, AGTS)
