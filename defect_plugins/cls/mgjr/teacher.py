"""MGJR teacher: a timm Vision Transformer as an mmpretrain backbone.

MGJR (Meng et al., J. Industrial Information Integration 48:100958, 2025) uses a ViT teacher
for "holistic, coarse-grained global features"; the size is not given in the abstract, so it
is configurable (``arch``: any timm ViT, e.g. ``vit_tiny_patch16_224`` or
``vit_small_patch16_224``). The backbone returns the pre-logits embedding (the class token
after the final norm, timm's ``forward_head(pre_logits=True)``) as a 1-tuple, so an
mmpretrain ``ImageClassifier`` with a ``LinearClsHead`` fine-tunes it on the task (stage 1)
and :class:`~defect_plugins.cls.mgjr.classifier.MGJRClassifier` reads the same embedding as
the coarse-grained anchor (stage 2).

Weights, in the order of precedence:

* ``weights='path.pth'`` - a local timm-format state dict (``.pth``/``.bin``/``.safetensors``),
  loaded through timm's own pretrained loader (``pretrained_cfg_overlay=dict(file=...)``), which
  drops the classifier and resamples the position (and patch) embeddings to ``img_size`` /
  ``patch_size`` (timm ``checkpoint_filter_fn``). A missing file raises FileNotFoundError
  naming it.
* ``pretrained=True`` - the usual hub download of timm (needs network).
* neither - random initialisation (tests, offline training from scratch).
"""
from __future__ import annotations

import os

import timm
import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS


@MODELS.register_module()
class TimmViT(BaseBackbone):
    """A timm ViT returning ``(embedding,)`` with ``embedding`` of shape ``(B, num_features)``.

    Args:
        arch: timm model name (a Vision Transformer).
        img_size: input resolution the position embedding is built for (timm ``img_size``).
        patch_size: patch size (None: the architecture's own); 8 suits 64x64 inputs.
        weights: local weights file (see the module docstring).
        pretrained: download the architecture's default weights from the hub.
        dynamic_img_size: accept other input sizes by interpolating the position embedding.
        drop_path_rate: stochastic depth.
        model_kwargs: further timm constructor arguments (e.g. ``depth=2`` for a tiny test model).
    """

    def __init__(self, arch: str = "vit_tiny_patch16_224", img_size: int = 224, patch_size: int | None = None,
                 weights: str | None = None, pretrained: bool = False, dynamic_img_size: bool = True,
                 drop_path_rate: float = 0.0, model_kwargs: dict | None = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        kwargs = dict(model_kwargs or {})
        kwargs.update(num_classes=0, img_size=img_size, dynamic_img_size=dynamic_img_size,
                      drop_path_rate=drop_path_rate)
        if patch_size is not None:
            kwargs["patch_size"] = patch_size
        if weights:
            if not os.path.isfile(weights):
                raise FileNotFoundError(f"TimmViT: teacher weights file {weights} not found")
            kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(weights)))
        else:
            kwargs["pretrained"] = bool(pretrained)
        try:
            self.vit = timm.create_model(arch, **kwargs)
        except RuntimeError as error:
            raise RuntimeError(f"TimmViT: cannot build {arch!r} (weights={weights!r}): {error}") from error
        if not hasattr(self.vit, "forward_head") or not hasattr(self.vit, "patch_embed"):
            raise ValueError(f"TimmViT: {arch!r} is not a timm Vision Transformer")
        self.num_features = int(self.vit.num_features)
        self.out_channels = (self.num_features, )
        # timm already initialised (or loaded) the weights; mmengine must not touch them.
        self._is_init = True

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.vit.forward_head(self.vit.forward_features(x), pre_logits=True), )
