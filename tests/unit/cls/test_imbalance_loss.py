"""Imbalance-adaptive loss: formula, weights that follow the misclassified class, per-class K, checkpointed buffers."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from defect_plugins.cls.hooks import ImbalanceAdaptiveWeightHook
from defect_plugins.cls.losses import class_imbalance_ratios
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
    expected = (loss.class_weights[labels] * -p.log()[torch.arange(5), labels]
                + 0.5 * ((p - target) ** 2).sum(1)).mean()
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


# --------------------------------------------------------------------------------------------
# per-class K_c = n_max / n_c (the paper's reading) against the global K (the first reading)
# --------------------------------------------------------------------------------------------
# every class: 8 of 10 right, 2 predicted as the next class -> identical recall, specificity, accuracy
EQUAL_ERRORS = torch.tensor([[8, 2, 0], [0, 8, 2], [2, 0, 8]])


def test_ratios_from_counts_per_class_and_global():
    assert class_imbalance_ratios([300, 150, 30]).tolist() == pytest.approx([1.0, 2.0, 10.0])
    assert class_imbalance_ratios([300, 150, 30], 'global').tolist() == pytest.approx([10.0] * 3)
    # a class without training images gets the largest present ratio (finite)
    assert class_imbalance_ratios([40, 0, 10]).tolist() == pytest.approx([1.0, 4.0, 4.0])
    with pytest.raises(ValueError, match="non-negative integers"):
        class_imbalance_ratios([10, -1])
    with pytest.raises(ValueError, match="no class has a training sample"):
        class_imbalance_ratios([0, 0])
    with pytest.raises(ValueError, match="k_mode must be one of"):
        class_imbalance_ratios([1, 2], 'median')


def test_per_class_k_gives_the_majority_class_the_smallest_weight_under_equal_errors():
    counts = [100, 50, 10]  # class 0 is the majority, class 2 ten times rarer
    per_class = ImbalanceAdaptiveLoss(num_classes=3, class_counts=counts)
    assert per_class.k_mode == 'per_class' and per_class.class_ratios.tolist() == pytest.approx([1.0, 2.0, 10.0])
    weights = per_class.update_weights(EQUAL_ERRORS.clone())
    # by hand: recall 0.8, specificity 18/20, accuracy 26/30 for every class
    error = 1 - (torch.sqrt(torch.tensor(0.8 * 0.9)) + 26 / 30) / 2
    assert torch.allclose(weights, 1 + torch.tanh(torch.tensor([1.0, 2.0, 10.0]) * error), atol=1e-6)
    assert weights.argmin().item() == 0 and weights[0] < weights[1] < weights[2]
    # the global K (the first reading) ignores class frequency: equal errors, equal weights
    glob = ImbalanceAdaptiveLoss(num_classes=3, k_mode='global', class_counts=counts)
    assert glob.class_ratios.tolist() == pytest.approx([10.0] * 3)
    weights_global = glob.update_weights(EQUAL_ERRORS.clone())
    assert torch.allclose(weights_global, weights_global[0].expand(3))
    # weight_offset=0: a nearly perfect majority class's weight goes close to 0 (the paper's wording)
    nearly = torch.tensor([[99, 1, 0], [0, 49, 1], [1, 0, 9]])
    low = ImbalanceAdaptiveLoss(num_classes=3, class_counts=counts, weight_offset=0.0).update_weights(nearly)
    assert low[0] < 0.02 and low.argmin().item() == 0 and torch.all(low >= 0)


def test_k_mode_arguments_are_checked():
    assert ImbalanceAdaptiveLoss(num_classes=3).k_mode == 'per_class'  # default: K_c from the counts
    assert ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=4.0).k_mode == 'global'  # one K given: global
    with pytest.raises(ValueError, match=r"imbalance_ratio=4.0 is one global K, but k_mode='per_class'"):
        ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=4.0, k_mode='per_class')
    with pytest.raises(ValueError, match="either imbalance_ratio .* or class_counts"):
        ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=4.0, class_counts=[1, 2, 3])
    with pytest.raises(ValueError, match="k_mode must be one of"):
        ImbalanceAdaptiveLoss(num_classes=3, k_mode='perclass')
    with pytest.raises(ValueError, match=r"class_counts: expected 3 counts"):
        ImbalanceAdaptiveLoss(num_classes=3, class_counts=[5, 5])
    with pytest.raises(ValueError, match="weight_offset must be >= 0"):
        ImbalanceAdaptiveLoss(num_classes=3, weight_offset=-1.0)


def _runner(model, labels, classes):
    messages = []
    dataset = SimpleNamespace(get_gt_labels=lambda: labels, metainfo=dict(classes=classes))
    logger = SimpleNamespace(info=messages.append)
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset), logger=logger), messages


def test_hook_counts_the_training_labels_before_training():
    per_class = ImbalanceAdaptiveLoss(num_classes=3)
    glob = ImbalanceAdaptiveLoss(num_classes=3, k_mode='global')
    fixed = ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=2.0)
    labels = [0] * 60 + [1] * 20 + [2] * 6
    runner, messages = _runner(torch.nn.ModuleList([per_class, glob, fixed]), labels, ('a', 'b', 'c'))
    ImbalanceAdaptiveWeightHook().before_train(runner)
    assert per_class.class_ratios.tolist() == pytest.approx([1.0, 3.0, 10.0])
    assert (glob.class_ratios.tolist() == pytest.approx([10.0] * 3)
            and glob.imbalance_ratio.item() == pytest.approx(10.0))
    assert fixed.class_ratios.tolist() == pytest.approx([2.0] * 3)  # a given K is left alone
    assert any("k_mode=per_class" in m and "c=10.000 (n=6)" in m for m in messages)
    runner, _ = _runner(torch.nn.ModuleList([ImbalanceAdaptiveLoss(num_classes=2)]), [0, 1, 2], None)
    with pytest.raises(RuntimeError, match="labels go up to 2.*num_classes=2"):
        ImbalanceAdaptiveWeightHook().before_train(runner)


def test_checkpoint_from_before_per_class_k_loads_with_its_global_k():
    old = ImbalanceAdaptiveLoss(num_classes=3, imbalance_ratio=3.0).state_dict()
    del old["class_ratios"]  # what a checkpoint of the first version holds
    loss = ImbalanceAdaptiveLoss(num_classes=3)
    loss.load_state_dict(old)  # strict: no missing key
    assert loss.class_ratios.tolist() == pytest.approx([3.0] * 3)
