"""Imbalance-adaptive loss: formula, weights that follow the misclassified class, checkpointed buffers."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from defect_plugins.cls.losses.imbalance_adaptive import ImbalanceAdaptiveLoss, gmean_accuracy_weights


def test_weights_by_hand_for_a_two_class_confusion():
    confusion = torch.tensor([[8, 2], [0, 10]])  # class 0: recall 0.8; class 1: recall 1.0
    weights = gmean_accuracy_weights(confusion, imbalance_ratio=2.0)
    # class 0: G = sqrt(0.8 * 1.0), acc = 18/20; class 1: G = sqrt(1.0 * 0.8), acc = 18/20
    g, acc = 0.8 ** 0.5, 0.9
    expected = 1 + torch.tanh(torch.tensor(2.0 * (1 - (g + acc) / 2)))
    assert torch.allclose(weights, expected.repeat(2).float(), atol=1e-6)


def test_weights_move_toward_the_misclassified_class_and_stay_bounded():
    loss = ImbalanceAdaptiveLoss(num_classes=4, imbalance_ratio=5.0)
    loss.train()
    labels = torch.arange(4).repeat(8)
    logits = F.one_hot(labels, 4).float() * 5
    wrong = labels == 2
    logits[wrong] = F.one_hot(torch.full((int(wrong.sum()),), 3), 4).float() * 5  # class 2 always predicted as 3
    loss(logits, labels)
    assert loss.confusion.sum() == 32 and loss.confusion[2, 3] == 8
    weights = loss.update_weights()
    assert weights.argmax().item() == 2
    assert weights[2] > weights[3] > weights[0] == weights[1]  # 3 suffers false positives only
    assert torch.all(weights >= 1) and torch.all(weights < 2)
    assert loss.confusion.sum() == 0  # counts reset after each update
    # a better-classified next epoch lowers class 2's weight again
    loss(F.one_hot(labels, 4).float() * 5, labels)
    assert loss.update_weights()[2] < weights[2]


def test_loss_equals_weighted_ce_plus_squared_error():
    torch.manual_seed(0)
    loss = ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=1.0, beta=0.2, mse_weight=0.5)
    loss.class_weights.copy_(torch.tensor([1.0, 1.5, 1.2]))
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    p = logits.softmax(1)
    target = F.one_hot(labels, 3).float() * 0.8 + 0.2 / 3
    expected = (loss.class_weights[labels] * -p.log()[torch.arange(5), labels] + 0.5 * ((p - target) ** 2).sum(1)).mean()
    loss.eval()  # no accumulation in eval
    assert torch.isclose(loss(logits, labels), expected, atol=1e-6)
    assert loss.confusion.sum() == 0


def test_weights_are_saved_in_the_state_dict():
    loss = ImbalanceAdaptiveLoss(num_classes=3)
    loss.class_weights.copy_(torch.tensor([1.1, 1.7, 1.3]))
    restored = ImbalanceAdaptiveLoss(num_classes=3)
    restored.load_state_dict(loss.state_dict())
    assert torch.equal(restored.class_weights, loss.class_weights)
    assert {"class_weights", "confusion", "imbalance_ratio"} <= set(loss.state_dict())
