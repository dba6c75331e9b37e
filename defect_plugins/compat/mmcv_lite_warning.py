"""Silence mmcv-lite's warning about ``MultiScaleDeformableAttention``, printed by every OpenMMLab command.

``mmcv/cnn/bricks/transformer.py`` (mmcv 2.1) tries ``from mmcv.ops.multi_scale_deform_attn
import MultiScaleDeformableAttention`` for backward compatibility when it is imported, which
mmpretrain and mmsegmentation always do; under mmcv-lite that import fails (no compiled
``mmcv._ext``) and the module calls ``warnings.warn('Fail to import ``MultiScaleDeformableAttention``
from ``mmcv.ops.multi_scale_deform_attn``, You should install ``mmcv`` rather than ``mmcv-lite``
if you need this module. ')``, a ``UserWarning``. Harmless here: no model, config or test of this
package uses deformable attention (it serves Deformable DETR-style detectors, which neither
mmpretrain classifiers nor the mmseg segmentors of this package build), and a config that did
would still fail loudly at build time (:mod:`.mmcv_ops` names the missing extension).

The filter matches that message in that module only, so every other warning, mmcv's included,
still shows. When the compiled extension is present (full mmcv) the warning is never issued and
nothing is added.
"""
from __future__ import annotations

import importlib.util
import warnings

MESSAGE = r"Fail to import ``MultiScaleDeformableAttention`` from ``mmcv\.ops\.multi_scale_deform_attn``"
MODULE = r"mmcv\.cnn\.bricks\.transformer"


def apply() -> bool:
    """Add the filter if mmcv is installed without its compiled ops; whether anything was added."""
    if importlib.util.find_spec("mmcv") is None or importlib.util.find_spec("mmcv._ext") is not None:
        return False
    warnings.filterwarnings("ignore", message=MESSAGE, category=UserWarning, module=MODULE)
    return True
