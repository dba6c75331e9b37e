"""Relational knowledge distillation losses (Park, Kim, Lu, Cho, "Relational Knowledge
Distillation", CVPR 2019) and Hinton et al.'s logit distillation ("Distilling the Knowledge in
a Neural Network", 2015).

For a batch of embeddings t_1..t_N (teacher) and s_1..s_N (student), possibly of different widths:

* distance-wise:  psi_D(t_i, t_j) = ||t_i - t_j||_2 / mu,  mu = mean of ||t_i - t_j||_2 over the
  N(N-1) ordered pairs i != j;  L_D = mean over i != j of Huber(psi_D(s_i, s_j), psi_D(t_i, t_j)).
* angle-wise:  e_ij = (t_i - t_j) / ||t_i - t_j||_2,  psi_A(t_i, t_j, t_k) = <e_ij, e_kj>;
  L_A = mean over all (i, j, k) of Huber(psi_A(s), psi_A(t)) (degenerate triplets give 0 on both sides).

Huber is ``smooth_l1`` with delta 1, as in the paper. The paper's weights are 25 (distance) and
50 (angle); they are applied by the caller (:class:`~defect_plugins.cls.distill.RKDClassifier`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _flatten(embedding: torch.Tensor) -> torch.Tensor:
    # float32 even under bf16 autocast: normalised distances and angles need more than bf16's 8 bits
    embedding = embedding.float()
    if embedding.dim() == 4:  # (N, C, H, W) feature map: global average pooling
        embedding = embedding.mean(dim=(2, 3))
    return embedding.flatten(1)


def normalized_distances(embedding: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``||e_i - e_j|| / mu`` for all pairs (N x N, zero diagonal)."""
    embedding = _flatten(embedding)
    n = embedding.shape[0]
    diff = embedding.unsqueeze(0) - embedding.unsqueeze(1)
    distances = diff.pow(2).sum(-1).clamp(min=eps).sqrt() * (1 - torch.eye(n, device=embedding.device,
                                                                           dtype=embedding.dtype))
    mu = distances.sum() / max(n * (n - 1), 1)
    return distances / mu.clamp(min=eps)


def angle_potentials(embedding: torch.Tensor) -> torch.Tensor:
    """``<e_ij, e_kj>`` with ``e_ij = normalize(e_i - e_j)``, as an N x N x N tensor indexed [j, i, k]."""
    embedding = _flatten(embedding)
    diff = F.normalize(embedding.unsqueeze(0) - embedding.unsqueeze(1), p=2, dim=2)  # [j, i] = e_i - e_j
    return torch.bmm(diff, diff.transpose(1, 2))


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance-wise RKD loss (unweighted); the teacher side is not differentiated."""
    n = student.shape[0]
    if n < 2:
        return student.sum() * 0.0
    mask = ~torch.eye(n, dtype=torch.bool, device=student.device)
    with torch.no_grad():
        target = normalized_distances(teacher)
    return F.smooth_l1_loss(normalized_distances(student)[mask], target[mask])


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD loss (unweighted); the teacher side is not differentiated."""
    if student.shape[0] < 3:
        return student.sum() * 0.0
    with torch.no_grad():
        target = angle_potentials(teacher)
    return F.smooth_l1_loss(angle_potentials(student), target)


def hinton_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float = 4.0) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits.detach() / t, dim=1),
                    reduction="batchmean") * (t * t)
