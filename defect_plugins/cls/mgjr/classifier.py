"""MGJR classifier: CNN student + frozen ViT teacher, trained end to end with the unified loss.

Meng et al., "Multi-grained teacher-student joint representation learning for surface defect
classification", J. Industrial Information Integration 48:100958, 2025 (abstract only). The
abstract fixes three ingredients of the loss - task supervision, coarse-level guidance from the
teacher, and AGTS anchor consistency under noise - not their formulas. The choices, and why:

``unified = w_task * L_task + w_cf * L_coarse_feat + w_cl * L_coarse_logit
          + w_af * L_anchor_feat + w_al * L_anchor_logit``

* ``L_task``: the student head's own loss (cross-entropy unless the config says otherwise) on
  the clean batch.
* **Coarse-level guidance** (clean input): the teacher's pre-logits embedding ``t(x)`` is the
  holistic, coarse-grained signal. ``L_coarse_feat = 1 - cos(P(s(x)), t(x))`` with ``P`` a
  linear projector from the student's pooled feature to the teacher's width (the FitNets
  regressor, Romero et al., ICLR 2015; cosine rather than L2 so the scale of the two networks
  does not matter), and ``L_coarse_logit = T^2 KL(softmax(z_t/T) || softmax(z_s/T))`` (Hinton
  et al., 2015).
* **AGTS anchor consistency**: the teacher sees the *clean* image (the stable anchor), the
  student a *corrupted* copy ``x~`` (:class:`~defect_plugins.cls.mgjr.noise.AGTSNoise`:
  Gaussian, salt-and-pepper or blur with random strength); the same two terms are computed
  between ``t(x)`` / ``z_t(x)`` and the student's response to ``x~``. This is the
  clean-anchor / perturbed-view consistency pattern of AugMix's Jensen-Shannon term (Hendrycks
  et al., ICLR 2020), with the teacher as the anchor. Clean and noisy views go through the
  student as one concatenated batch (as in AugMix), so one forward pass serves both.

All teacher outputs are computed under ``torch.no_grad``; the teacher's parameters are frozen
and it stays in eval mode. Teacher building, freezing, initialisation safety and its exclusion
from checkpoints are inherited from :class:`~defect_plugins.cls.distill.RKDClassifier` (its
RKD terms are switched off here). Setting ``anchor_*`` weights to 0 gives the "no AGTS"
ablation (and skips the noisy pass).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import nn

from defect_plugins.cls.distill import RKDClassifier
from defect_plugins.cls.distill.losses import hinton_kd_loss

LOSS_TERMS = ("task", "coarse_feat", "coarse_logit", "anchor_feat", "anchor_logit")
DEFAULT_LOSS_WEIGHTS = dict(task=1.0, coarse_feat=1.0, coarse_logit=1.0, anchor_feat=1.0, anchor_logit=1.0)


class FeatureDimError(ValueError):
    """Teacher and student features cannot be aligned as configured."""


def pooled_embedding(feats) -> torch.Tensor:
    """Last feature of a backbone/neck output, global-average-pooled if it is a map: ``(B, D)``."""
    last = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if last.dim() == 4:
        last = last.mean(dim=(2, 3))
    return last.flatten(1)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(a_i, b_i)`` over the batch."""
    return (1.0 - F.cosine_similarity(a, b, dim=1)).mean()


def _head_width(head: nn.Module, who: str) -> int:
    width = getattr(head, "in_channels", None)
    if width is None:
        raise FeatureDimError(f"MGJRClassifier: the {who} head {type(head).__name__} has no in_channels; "
                              f"set {who}_dim explicitly")
    return int(width)


@MODELS.register_module()
class MGJRClassifier(RKDClassifier):
    """MGJR joint training (stage 2): ``ImageClassifier`` student + frozen teacher + unified loss.

    Args:
        backbone / neck / head: the student (as :class:`mmpretrain.models.ImageClassifier`).
        teacher_config: stage-1 teacher config path (its ``model``) or a model dict.
        teacher_checkpoint: stage-1 teacher checkpoint (.pth); required, a missing file raises
            FileNotFoundError naming it.
        loss_weights: weights of ``task``, ``coarse_feat``, ``coarse_logit``, ``anchor_feat``,
            ``anchor_logit`` (missing keys keep the defaults, all 1.0).
        temperature: softmax temperature of the logit terms.
        noise: AGTS corruption (a ``MODELS`` config, default :class:`AGTSNoise`).
        projector: ``'linear'`` (student width -> teacher width) or ``'identity'`` (widths must match).
        student_dim / teacher_dim: optional declared widths, checked against the built networks.
        agts_fraction: share of the batch that also gets a noisy view (1.0: every image, the default;
            smaller values cut the cost of the noisy pass, e.g. 0.5 for CPU training).
    """

    def __init__(self, backbone: dict, teacher_config, teacher_checkpoint: str, neck: dict | None = None,
                 head: dict | None = None, loss_weights: dict | None = None, temperature: float = 4.0,
                 noise: dict | None = None, projector: str = "linear", student_dim: int | None = None,
                 teacher_dim: int | None = None, agts_fraction: float = 1.0, pretrained: str | None = None,
                 train_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(backbone=backbone, teacher_config=teacher_config, teacher_checkpoint=teacher_checkpoint,
                         neck=neck, head=head, distance_weight=0.0, angle_weight=0.0, kd_weight=0.0,
                         temperature=temperature, pretrained=pretrained, train_cfg=train_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        unknown = sorted(set(loss_weights or {}) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"MGJRClassifier: unknown loss_weights keys {unknown}; expected {list(LOSS_TERMS)}")
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **{k: float(v) for k, v in (loss_weights or {}).items()}}
        s_dim, t_dim = _head_width(self.head, "student"), _head_width(self.teacher.head, "teacher")
        for name, declared, actual in (("student_dim", student_dim, s_dim), ("teacher_dim", teacher_dim, t_dim)):
            if declared is not None and int(declared) != actual:
                raise FeatureDimError(f"MGJRClassifier: {name}={declared} but the built network gives {actual}-d "
                                      f"features")
        s_classes, t_classes = getattr(self.head, "num_classes", None), getattr(self.teacher.head, "num_classes", None)
        if s_classes != t_classes:
            raise FeatureDimError(f"MGJRClassifier: student has {s_classes} classes, teacher {t_classes}")
        if projector == "linear":
            self.projector = nn.Linear(s_dim, t_dim)
        elif projector == "identity":
            if s_dim != t_dim:
                raise FeatureDimError(f"MGJRClassifier: teacher/student feature-dimension mismatch: student "
                                      f"{s_dim}-d, teacher {t_dim}-d; use projector='linear'")
            self.projector = nn.Identity()
        else:
            raise ValueError(f"MGJRClassifier: projector must be 'linear' or 'identity', got {projector!r}")
        self.student_dim, self.teacher_dim = s_dim, t_dim
        self.noise = MODELS.build(noise if noise is not None else dict(type="AGTSNoise"))
        if not 0.0 < agts_fraction <= 1.0:
            raise ValueError(f"MGJRClassifier: agts_fraction must lie in (0, 1], got {agts_fraction}")
        self.agts_fraction = float(agts_fraction)

    # -- pieces ------------------------------------------------------------------------------
    @property
    def uses_agts(self) -> bool:
        return bool(self.loss_weights["anchor_feat"] or self.loss_weights["anchor_logit"])

    def make_noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        """The student's AGTS view: ``inputs`` (normalised) corrupted in pixel space."""
        pre = self.data_preprocessor
        mean = getattr(pre, "mean", None) if getattr(pre, "_enable_normalize", False) else None
        std = getattr(pre, "std", None) if getattr(pre, "_enable_normalize", False) else None
        with torch.no_grad():
            return self.noise(inputs, mean, std)

    def project(self, student_emb: torch.Tensor) -> torch.Tensor:
        if student_emb.shape[1] != self.student_dim:
            raise FeatureDimError(f"MGJRClassifier: student features are {student_emb.shape[1]}-d, the projector "
                                  f"expects {self.student_dim}-d (head in_channels)")
        projected = self.projector(student_emb)
        if projected.shape[1] != self.teacher_dim:
            raise FeatureDimError(f"MGJRClassifier: teacher/student feature-dimension mismatch: projected student "
                                  f"{projected.shape[1]}-d vs teacher {self.teacher_dim}-d")
        return projected

    @torch.no_grad()
    def teacher_outputs(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher embedding and logits on the clean batch (no gradient)."""
        feats = self.teacher.extract_feat(inputs)
        emb = pooled_embedding(feats)
        if emb.shape[1] != self.teacher_dim:
            raise FeatureDimError(f"MGJRClassifier: teacher features are {emb.shape[1]}-d, expected "
                                  f"{self.teacher_dim}-d")
        return emb, self.teacher.head(feats)

    def loss_parts(self, inputs: torch.Tensor, data_samples, noisy: torch.Tensor | None = None) -> dict:
        """Unweighted loss terms (``LOSS_TERMS``; the anchor terms only when AGTS is on)."""
        batch = inputs.shape[0]
        use_agts = self.uses_agts
        n_noisy = max(1, int(round(self.agts_fraction * batch)))
        if use_agts and noisy is None:
            noisy = self.make_noisy(inputs[:n_noisy])
        student_in = torch.cat([inputs, noisy], dim=0) if use_agts else inputs
        feats = self.extract_feat(student_in)
        emb = pooled_embedding(feats)
        logits = self.head(feats)
        t_emb, t_logits = self.teacher_outputs(inputs)
        clean_feats = tuple(f[:batch] for f in feats) if isinstance(feats, (tuple, list)) else feats[:batch]
        projected = self.project(emb)
        parts = {
            "task": self.head.loss(clean_feats, data_samples)["loss"],
            "coarse_feat": cosine_distance(projected[:batch], t_emb),
            "coarse_logit": hinton_kd_loss(logits[:batch], t_logits, self.temperature),
        }
        if use_agts:
            n_noisy = noisy.shape[0]  # the noisy views are of the first n_noisy images
            parts["anchor_feat"] = cosine_distance(projected[batch:], t_emb[:n_noisy])
            parts["anchor_logit"] = hinton_kd_loss(logits[batch:], t_logits[:n_noisy], self.temperature)
        return parts

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """Weighted terms as ``loss_<term>`` (mmengine sums every ``loss*`` key: the unified loss)."""
        parts = self.loss_parts(inputs, data_samples)
        return {f"loss_{name}": self.loss_weights[name] * value for name, value in parts.items()
                if self.loss_weights[name]}
