"""mmengine components shared by the mmpretrain and mmseg sides; importing registers them.

==================  ===========================  =============================================
registry            name                         module
==================  ===========================  =============================================
OPTIM_WRAPPERS      ``AutocastOptimWrapper``     :mod:`defect_plugins.engine.autocast`
                    (bf16 mixed precision on
                    CPUs that compute it natively)
==================  ===========================  =============================================

They are registered in mmengine's root registry, which mmpretrain's and mmseg's child registries
search after their own, so configs of either scope can name them.
"""
from defect_plugins.engine.autocast import AutocastOptimWrapper, native_bf16

__all__ = ["AutocastOptimWrapper", "native_bf16"]
