"""MGJR classifier: CNN student + frozen teacher, trained end to end with the unified loss.

Meng et al., "Multi-grained teacher-student joint representation learning for surface defect
classification", J. Industrial Information Integration 48:100958, 2025 (abstract only). The
abstract fixes three ingredients of the loss - task supervision, coarse-level guidance from the
teacher, and AGTS anchor consistency under noise - not their formulas or weights. The choices,
and why:

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
  et al., ICLR 2020), with the teacher as the anchor. How the two views pass through the
  student (one concatenated batch, or split BatchNorm statistics) is described in
  :mod:`defect_plugins.cls.mgjr.views`.
* **Default weights** (:data:`DEFAULT_LOSS_WEIGHTS`): ``task`` 1.0 and 0.25 for each of the four
  teacher terms, so the teacher terms together weigh exactly as much as the task loss, split
  evenly between clean / noisy view and feature / logit (nothing in the abstract favours one).
  An earlier default of 1.0 for every term gave the teacher four times the task's weight; with a
  teacher weaker than the student that lowered the student's clean accuracy (docs/RESULTS.md).
* ``distill_on='teacher_correct'`` (option; default ``'all'``): the four teacher terms are
  averaged over the samples the teacher classifies correctly only (argmax of its logits on the
  clean image = label), so a wrong teacher answer is never imitated; a batch where the teacher
  is always wrong contributes no teacher term. The share of kept samples is logged as
  ``distill_fraction``. Project's choice (as in selective / "correct-only" distillation).
* **Teacher quality**: the stage-1 checkpoint's recorded test accuracy
  (:mod:`defect_plugins.cls.mgjr.eval_meta`) is checked against ``teacher_min_accuracy``; a
  weaker teacher is a warning (``on_weak_teacher='warn'``) or an error (``'error'``); a
  checkpoint without a record is reported as such.

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
from defect_plugins.cls.mgjr.eval_meta import ON_WEAK_TEACHER, check_teacher_accuracy
from defect_plugins.cls.mgjr.views import NoisyViewMixin

LOSS_TERMS = ("task", "coarse_feat", "coarse_logit", "anchor_feat", "anchor_logit")
TEACHER_TERMS = ("coarse_feat", "coarse_logit", "anchor_feat", "anchor_logit")
# Teacher terms together = the task's weight, split evenly (module docstring).
DEFAULT_LOSS_WEIGHTS = dict(task=1.0, coarse_feat=0.25, coarse_logit=0.25, anchor_feat=0.25, anchor_logit=0.25)
DISTILL_ON = ("all", "teacher_correct")


class FeatureDimError(ValueError):
    """Teacher and student features cannot be aligned as configured."""


def pooled_embedding(feats) -> torch.Tensor:
    """Last feature of a backbone/neck output, global-average-pooled if it is a map: ``(B, D)``."""
    last = feats[-1] if isinstance(feats, (tuple, list)) else feats
    if last.dim() == 4:
        last = last.mean(dim=(2, 3))
    return last.flatten(1)


# The teacher terms are computed in float32 even under bf16 autocast (AutocastOptimWrapper): 1 - cos of
# near-aligned embeddings and the KL of softened distributions are small differences of numbers near 1,
# which bf16's 8 mantissa bits would round to 0 or to steps of 0.004.


def cosine_distance_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a_i, b_i)`` per sample, shape ``(B,)``, in float32."""
    return 1.0 - F.cosine_similarity(a.float(), b.float(), dim=1)


def kd_per_sample(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 KL(softmax(t/T) || softmax(s/T))`` per sample, shape ``(B,)`` (its mean is Hinton's batchmean KD),
    in float32."""
    t = float(temperature)
    kl = F.kl_div(F.log_softmax(student_logits.float() / t, dim=1),
                  F.softmax(teacher_logits.detach().float() / t, dim=1), reduction="none")
    return kl.sum(dim=1) * (t * t)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (all when None); 0 (still in the graph) when the mask is empty."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _head_width(head: nn.Module, who: str) -> int:
    width = getattr(head, "in_channels", None)
    if width is None:
        raise FeatureDimError(f"MGJRClassifier: the {who} head {type(head).__name__} has no in_channels; "
                              f"set {who}_dim explicitly")
    return int(width)


@MODELS.register_module()
class MGJRClassifier(NoisyViewMixin, RKDClassifier):
    """MGJR joint training (stage 2): ``ImageClassifier`` student + frozen teacher + unified loss.

    Args:
        backbone / neck / head: the student (as :class:`mmpretrain.models.ImageClassifier`).
        teacher_config: stage-1 teacher config path (its ``model``) or a model dict.
        teacher_checkpoint: stage-1 teacher checkpoint (.pth); required, a missing file raises
            FileNotFoundError naming it.
        loss_weights: weights of ``task``, ``coarse_feat``, ``coarse_logit``, ``anchor_feat``,
            ``anchor_logit`` (missing keys keep :data:`DEFAULT_LOSS_WEIGHTS`: 1.0 and 0.25 each).
        temperature: softmax temperature of the logit terms.
        noise: AGTS corruption (a ``MODELS`` config, default :class:`AGTSNoise`).
        projector: ``'linear'`` (student width -> teacher width) or ``'identity'`` (widths must match).
        student_dim / teacher_dim: optional declared widths, checked against the built networks.
        agts_fraction: share of the batch that also gets a noisy view (1.0: every image, the default;
            smaller values cut the cost of the noisy pass, e.g. 0.5 for CPU training).
        split_bn: separate BatchNorm running statistics for the noisy view
            (:mod:`~defect_plugins.cls.mgjr.views`); default False (one concatenated batch).
        distill_on: ``'all'`` (default) or ``'teacher_correct'`` (teacher terms only on samples the
            teacher classifies correctly).
        teacher_min_accuracy: floor (top-1, %) for the teacher's recorded test accuracy; None: no floor
            (a checkpoint without a record is still reported).
        on_weak_teacher: ``'warn'`` (default) or ``'error'`` when the teacher is below the floor, or has
            no record while a floor is set.
    """

    def __init__(self, backbone: dict, teacher_config, teacher_checkpoint: str, neck: dict | None = None,
                 head: dict | None = None, loss_weights: dict | None = None, temperature: float = 4.0,
                 noise: dict | None = None, projector: str = "linear", student_dim: int | None = None,
                 teacher_dim: int | None = None, agts_fraction: float = 1.0, split_bn: bool = False,
                 distill_on: str = "all", teacher_min_accuracy: float | None = None, on_weak_teacher: str = "warn",
                 pretrained: str | None = None, train_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        if on_weak_teacher not in ON_WEAK_TEACHER:
            raise ValueError(f"MGJRClassifier: on_weak_teacher must be one of {ON_WEAK_TEACHER}, got "
                             f"{on_weak_teacher!r}")
        if distill_on not in DISTILL_ON:
            raise ValueError(f"MGJRClassifier: distill_on must be one of {DISTILL_ON}, got {distill_on!r}")
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
        self.init_noisy_view(noise, agts_fraction, split_bn)
        self.distill_on = distill_on
        self.teacher_min_accuracy = None if teacher_min_accuracy is None else float(teacher_min_accuracy)
        self.on_weak_teacher = on_weak_teacher
        self.teacher_evaluation = check_teacher_accuracy(self.teacher_checkpoint, self.teacher_min_accuracy,
                                                         on_weak_teacher)

    # -- pieces ------------------------------------------------------------------------------
    @property
    def uses_agts(self) -> bool:
        return bool(self.loss_weights["anchor_feat"] or self.loss_weights["anchor_logit"])

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

    def distill_mask(self, teacher_logits: torch.Tensor, data_samples) -> torch.Tensor | None:
        """Samples the teacher terms use: None (all) or, with ``distill_on='teacher_correct'``, the teacher's hits."""
        if self.distill_on == "all":
            return None
        labels = [getattr(sample, "gt_label", None) for sample in data_samples]
        if any(label is None for label in labels):
            raise ValueError("MGJRClassifier: distill_on='teacher_correct' needs a gt_label in every data sample")
        labels = torch.cat([torch.as_tensor(label).view(-1)[:1] for label in labels]).to(teacher_logits.device)
        return teacher_logits.argmax(dim=1) == labels

    def loss_parts(self, inputs: torch.Tensor, data_samples, noisy: torch.Tensor | None = None) -> dict:
        """Unweighted loss terms (``LOSS_TERMS``; the anchor terms only when AGTS is on).

        With ``distill_on='teacher_correct'`` also ``distill_fraction`` (share of samples kept, not a loss).
        """
        use_agts = self.uses_agts
        if use_agts and noisy is None:
            noisy = self.make_noisy(inputs[:self.num_noisy(inputs.shape[0])])
        clean_feats, noisy_feats = self.student_views(inputs, noisy if use_agts else None)
        t_emb, t_logits = self.teacher_outputs(inputs)
        mask = self.distill_mask(t_logits, data_samples)
        parts = {
            "task": self.head.loss(clean_feats, data_samples)["loss"],
            "coarse_feat": masked_mean(cosine_distance_per_sample(self.project(pooled_embedding(clean_feats)), t_emb),
                                       mask),
            "coarse_logit": masked_mean(kd_per_sample(self.head(clean_feats), t_logits, self.temperature), mask),
        }
        if use_agts:
            n_noisy = noisy.shape[0]  # the noisy views are of the first n_noisy images
            noisy_mask = None if mask is None else mask[:n_noisy]
            projected = self.project(pooled_embedding(noisy_feats))
            parts["anchor_feat"] = masked_mean(cosine_distance_per_sample(projected, t_emb[:n_noisy]), noisy_mask)
            parts["anchor_logit"] = masked_mean(kd_per_sample(self.head(noisy_feats), t_logits[:n_noisy],
                                                              self.temperature), noisy_mask)
        if mask is not None:
            parts["distill_fraction"] = mask.float().mean()
        return parts

    def loss(self, inputs: torch.Tensor, data_samples) -> dict:
        """Weighted terms as ``loss_<term>`` (mmengine sums every ``loss*`` key: the unified loss)."""
        parts = self.loss_parts(inputs, data_samples)
        losses = {f"loss_{name}": self.loss_weights[name] * value for name, value in parts.items()
                  if name in self.loss_weights and self.loss_weights[name]}
        if "distill_fraction" in parts:  # logged, not summed (no 'loss' in the key)
            losses["distill_fraction"] = parts["distill_fraction"].detach()
        return losses
