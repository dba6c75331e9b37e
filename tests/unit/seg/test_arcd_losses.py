"""Focal loss, SSIM loss and the reconstruction-accuracy metric."""
from __future__ import annotations

import math

import kornia
import pytest
import torch

from defect_plugins.seg.losses import PixelFocalLoss
from defect_plugins.seg.metrics import ReconstructionAccuracy


def _direct_focal(logits, target, gamma, alpha, class_weight, ignore_index):
    """Per-pixel loop: -alpha_t * w_t * (1 - p_t)^gamma * log p_t, mean over valid pixels."""
    total, count = 0.0, 0
    probs = torch.softmax(logits.double(), dim=1)
    n, _, h, w = logits.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                t = int(target[b, i, j])
                if t == ignore_index:
                    continue
                p = float(probs[b, t, i, j])
                total += -alpha[t] * class_weight[t] * (1 - p) ** gamma * math.log(p)
                count += 1
    return total / count


def test_focal_loss_matches_direct_computation_with_alpha_and_class_weights():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 4)
    target = torch.randint(0, 3, (2, 5, 4))
    target[0, 0, :2] = 255
    loss = PixelFocalLoss(gamma=2.0, alpha=0.75, class_weight=[1.0, 2.0, 0.5])
    got = loss(logits, target, ignore_index=255)
    expected = _direct_focal(logits, target, 2.0, [0.25, 0.75, 0.75], [1.0, 2.0, 0.5], 255)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert loss.loss_name == "loss_focal"


def test_focal_loss_reduces_to_cross_entropy_without_focusing():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 4, 6, 6), torch.randint(0, 4, (2, 6, 6))
    got = PixelFocalLoss(gamma=0.0, alpha=None)(logits, target)
    assert got.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item(), rel=1e-5)


def test_focal_loss_per_class_alpha_and_errors():
    logits, target = torch.randn(1, 2, 3, 3), torch.zeros(1, 3, 3, dtype=torch.long)
    half = PixelFocalLoss(alpha=[0.5, 1.0])(logits, target)
    full = PixelFocalLoss(alpha=None)(logits, target)
    assert half.item() == pytest.approx(0.5 * full.item(), rel=1e-6)
    with pytest.raises(ValueError, match="outside 0..1"):
        PixelFocalLoss()(logits, torch.full((1, 3, 3), 7))
    with pytest.raises(ValueError, match="class_weight has 3 entries for 2"):
        PixelFocalLoss(class_weight=[1, 1, 1])(logits, target)


def test_focal_loss_count_alpha_follows_the_thesis_eq_3_16():
    """alpha='counts': eps_c = 1 - m_c / N over labelled pixels (ignored ones not counted)."""
    torch.manual_seed(0)
    target = torch.zeros(1, 4, 5, dtype=torch.long)
    target[0, 0, :2] = 1  # 2 of 19 labelled pixels
    target[0, 1, 0] = 2  # 1 of 19
    target[0, 3, 4] = 255  # ignored: not counted
    loss = PixelFocalLoss(alpha="counts")
    expected = torch.tensor([1 - 16 / 19, 1 - 2 / 19, 1 - 1 / 19])
    assert torch.allclose(loss.alpha_vector(3, target), expected)
    logits = torch.randn(1, 3, 4, 5)
    assert loss(logits, target).item() == pytest.approx(
        PixelFocalLoss(alpha=expected.tolist())(logits, target).item(), rel=1e-6)
    # the rare class weighs more than the common one, which weighs more than the background
    assert expected[2] > expected[1] > expected[0]
    with pytest.raises(ValueError, match="'counts'"):
        PixelFocalLoss(alpha="count")


def test_focal_loss_logit_adjustment_follows_menon_eq_10():
    """logit_adjust_tau: the loss sees z_c + tau * log(pi_c), pi from the labelled pixels; tau=0 is the plain loss."""
    from defect_plugins.seg.losses.focal import logit_adjustment, pixel_focal_loss

    torch.manual_seed(0)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 2
    target[1, :2] = 1
    target[1, 3, 3] = 255
    logits = torch.randn(2, 3, 4, 4)
    prior = torch.tensor([22 / 31, 8 / 31, 1 / 31])
    assert torch.allclose(logit_adjustment(target, 3, 0.5).flatten(), 0.5 * prior.log(), atol=1e-6)
    adjusted = PixelFocalLoss(alpha=None, logit_adjust_tau=0.5)(logits, target)
    by_hand = pixel_focal_loss(logits + 0.5 * prior.log().view(1, 3, 1, 1), target, alpha=None)
    assert adjusted.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert PixelFocalLoss(alpha=None, logit_adjust_tau=0.0)(logits, target).item() == pytest.approx(
        pixel_focal_loss(logits, target, alpha=None).item(), rel=1e-6)
    # the rare class is pushed down during training, so its raw logit must grow to win: its loss is larger
    rare = target == 2
    plain = pixel_focal_loss(logits, target, alpha=None, weight=rare.float())
    assert PixelFocalLoss(alpha=None, logit_adjust_tau=1.0)(logits, target, weight=rare.float()) > plain
    with pytest.raises(ValueError, match="logit_adjust_tau"):
        PixelFocalLoss(logit_adjust_tau=-1)


def test_ssim_loss_is_zero_for_identical_images():
    x = torch.rand(2, 3, 32, 32)
    assert kornia.losses.ssim_loss(x, x, 11).item() == pytest.approx(0.0, abs=1e-6)
    assert kornia.losses.ssim_loss(x, torch.rand_like(x), 11).item() > 0.1


def test_reconstruction_accuracy_formula():
    metric = ReconstructionAccuracy()
    clean = torch.rand(3, 32, 32)
    metric.process({}, [{"rec_img": {"data": clean}, "gt_clean": {"data": clean}}])
    assert metric.compute_metrics(metric.results)["RA"] == pytest.approx(1.0, abs=1e-5)
    metric.results.clear()
    noisy = (clean + 0.01).clamp(0, 1)
    metric.process({}, [{"rec_img": {"data": noisy}, "gt_clean": {"data": clean}}])
    out = metric.compute_metrics(metric.results)
    assert out["RA"] == pytest.approx(math.exp(-10000 * (out["L2"] + 0.01 * (1 - out["SSIM"]))))
    assert 0 < out["RA"] < 1
