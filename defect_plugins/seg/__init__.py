"""mmsegmentation components for ARCD (Zhang Xunfei, ZJU master's thesis 2023, chapters 3-4).

Importing this package registers, in mmseg's registries:

* transforms: ``SimulateAnomaly``, ``PadSquareResize``, ``LoadRegionMap``, ``PackARCDInputs``;
* models: ``ARCDReconstructor`` (plain / ``mdc`` / ``mflm``, thesis Table 4.2), ``ARCDReconstructionModel``
  (stage 1), ``ARCDSegmentor`` (stage 2), ``MFLM``, ``MaskedDilatedConv``, ``SqueezeExcitation``,
  ``ChannelTransformer``, ``CALM``, ``CBAM``, ``CoordAttention``, ``ChannelAttention``,
  ``SpatialAttention``, ``AttentionNeck``, ``AttentionUNet``, ``ARCDDataPreProcessor``, ``PixelFocalLoss``;
* data sets: ``ARCDStripDataset``, ``NEUSegDataset``, ``NormalImageDataset``;
* metrics: ``PixelAUROC``, ``RegionIoUMetric``, ``ReconstructionAccuracy``.

Configs load it with ``custom_imports=dict(imports=['defect_plugins.seg'], allow_failed_imports=False)``
and ``default_scope='mmseg'``.
"""
from defect_plugins.compat import apply_all

apply_all()  # compatibility fixes first (mmcv.ops fallbacks for mmseg, checkpoint loading)
import mmseg.datasets  # noqa: F401
import mmseg.models  # noqa: F401

from defect_plugins import engine  # noqa: F401,E402  (AutocastOptimWrapper)
from . import datasets, losses, metrics, models, transforms

__all__ = ["datasets", "losses", "metrics", "models", "transforms"]
