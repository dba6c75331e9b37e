"""Control for MGJR: the student trained on AGTS-noisy views with cross-entropy only (no teacher).

MGJR (Meng et al., J. Industrial Information Integration 48:100958, 2025) credits its noise
robustness to AGTS, anchor consistency between a teacher on the clean image and the student on a
corrupted one. Part of any such gain can come from merely *seeing* corrupted images. This control
keeps everything of AGTS except the anchor: the same noise module, the same share of noisy views
(``agts_fraction``), the same way the views go through the student (joint batch or split BN,
:mod:`defect_plugins.cls.mgjr.views`), and replaces the teacher terms by the task loss on the
noisy view:

``loss = w_task * CE(s(x), y) + w_noisy_task * CE(s(x~), y)``

with ``w_task = w_noisy_task = 1.0`` by default (the project's choice: plain augmentation, as if
the batch were enlarged by the noisy copies). MGJR minus this control isolates the anchor terms'
contribution. The model is an ``ImageClassifier`` in every other respect (test, export and
``experiments/mgjr/noise_robustness.py`` use it unchanged).
"""
from __future__ import annotations

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS

from defect_plugins.cls.mgjr.views import NoisyViewMixin

NOISE_AUG_TERMS = ("task", "noisy_task")


@MODELS.register_module()
class NoiseAugClassifier(NoisyViewMixin, ImageClassifier):
    """``ImageClassifier`` + AGTS noisy views trained with the task loss only (the noise-augmentation control).

    Args:
        backbone / neck / head: the student (as :class:`mmpretrain.models.ImageClassifier`).
        noise: the corruption (a ``MODELS`` config, default :class:`~defect_plugins.cls.mgjr.noise.AGTSNoise`).
        loss_weights: ``task`` (clean view) and ``noisy_task`` (noisy view), both 1.0 by default.
        agts_fraction: share of each batch that also gets a noisy view (the first images).
        split_bn: separate BatchNorm running statistics for the noisy view.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, head: dict | None = None, noise: dict | None = None,
                 loss_weights: dict | None = None, agts_fraction: float = 1.0, split_bn: bool = False,
                 pretrained: str | None = None, train_cfg: dict | None = None, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None):
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if head is None:
            raise ValueError("NoiseAugClassifier needs a classification head")
        unknown = sorted(set(loss_weights or {}) - set(NOISE_AUG_TERMS))
        if unknown:
            raise ValueError(f"NoiseAugClassifier: unknown loss_weights keys {unknown}; expected "
                             f"{list(NOISE_AUG_TERMS)}")
        self.loss_weights = {"task": 1.0, "noisy_task": 1.0, **{k: float(v) for k, v in (loss_weights or {}).items()}}
        self.init_noisy_view(noise, agts_fraction, split_bn)

    def loss_parts(self, inputs: torch.Tensor, data_samples, noisy: torch.Tensor | None = None) -> dict:
        """Unweighted ``task`` (clean) and ``noisy_task`` (noisy views of the first images) losses."""
        if noisy is None:
            noisy = self.make_noisy(inputs[:self.num_noisy(inputs.shape[0])])
        clean_feats, noisy_feats = self.student_views(inputs, noisy)
        return {"task": self.head.loss(clean_feats, data_samples)["loss"],
                "noisy_task": self.head.loss(noisy_feats, list(data_samples)[:noisy.shape[0]])["loss"]}

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """Weighted terms as ``loss_task`` / ``loss_noisy_task`` (mmengine sums them)."""
        parts = self.loss_parts(inputs, data_samples)
        return {f"loss_{name}": self.loss_weights[name] * value for name, value in parts.items()
                if self.loss_weights[name]}
