"""One optimizer per sub-module, as an mmengine ``OptimWrapperDict`` (what GAN training needs).

mmengine's ``Runner`` builds an :class:`~mmengine.optim.OptimWrapperDict` only through a constructor
(its default one builds a single optimizer over all parameters). This constructor takes one ordinary
optim-wrapper config per attribute of the model and builds each with mmengine's
``DefaultOptimWrapperConstructor`` on that attribute alone::

    optim_wrapper = dict(
        constructor='SubmoduleOptimWrapperConstructor',
        generators=dict(optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))),
        discriminators=dict(optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))))

Parameters of the model that no entry names get no optimizer (the CycleGAN's image pools have none).
"""
from __future__ import annotations

import copy

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SubmoduleOptimWrapperConstructor:
    """Build ``OptimWrapperDict(name=optim wrapper of model.<name>)`` from ``{name: optim wrapper config}``."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise ValueError("SubmoduleOptimWrapperConstructor: expected a dict {submodule name: optim wrapper config}")
        for name, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict) or "optimizer" not in cfg:
                raise ValueError(f"SubmoduleOptimWrapperConstructor: entry {name!r} must be an optim wrapper config "
                                 f"with an 'optimizer', got {cfg!r}")
        if paramwise_cfg is not None:
            raise ValueError("SubmoduleOptimWrapperConstructor: put paramwise_cfg inside each entry")
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            module = getattr(model, name, None)
            if not isinstance(module, nn.Module):
                raise ValueError(f"SubmoduleOptimWrapperConstructor: the model has no sub-module {name!r}")
            cfg = copy.deepcopy(cfg)
            paramwise = cfg.pop("paramwise_cfg", None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
        return OptimWrapperDict(**wrappers)
