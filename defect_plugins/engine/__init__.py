"""mmengine components shared by the mmpretrain and mmseg sides; importing registers them.

==================  ================================  =============================================
registry            name                              module
==================  ================================  =============================================
OPTIM_WRAPPERS      ``AutocastOptimWrapper``          :mod:`defect_plugins.engine.autocast`
                    (bf16 mixed precision on
                    CPUs that compute it natively)
HOOKS               ``ResumedFinalValidationHook``    :mod:`defect_plugins.engine.final_validation`
                    (the final validation of a run
                    killed during it)
==================  ================================  =============================================

They are registered in mmengine's root registry, which mmpretrain's and mmseg's child registries
search after their own, so configs of either scope can name them.
"""
from defect_plugins.engine.autocast import AutocastOptimWrapper, native_bf16
from defect_plugins.engine.final_validation import ResumedFinalValidationHook

__all__ = ["AutocastOptimWrapper", "ResumedFinalValidationHook", "native_bf16"]
