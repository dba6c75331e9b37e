"""MGJR options: default loss budget, distilling on the teacher's hits only, split BN, the
normalisation check, and the noise-augmentation control (NoiseAugClassifier)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from defect_plugins.cls.mgjr import DEFAULT_LOSS_WEIGHTS, TEACHER_TERMS, NormalisationError
from defect_plugins.cls.mgjr.views import pixel_normalisation
from tests.fixtures.mgjr import TINY_STUDENT, TINY_TEACHER


def _batch(n=6, size=32, seed=0, labels=None):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g)
    labels = [i % 6 for i in range(n)] if labels is None else labels
    return inputs, [DataSample().set_gt_label(int(label)) for label in labels]


def _mgjr(checkpoint, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER, teacher_checkpoint=str(checkpoint),
                              **TINY_STUDENT, **kwargs))
    model.init_weights()
    return model


def test_default_teacher_terms_weigh_at_most_the_task(teacher_checkpoint):
    assert sum(DEFAULT_LOSS_WEIGHTS[t] for t in TEACHER_TERMS) <= DEFAULT_LOSS_WEIGHTS["task"]
    assert _mgjr(teacher_checkpoint).loss_weights == DEFAULT_LOSS_WEIGHTS
    from mmengine.config import Config

    from defect_plugins.packaged_configs import resolve_config

    weights = Config.fromfile(str(resolve_config("mgjr/mgjr_neu_cls_64.py"))).model.loss_weights
    assert sum(weights[t] for t in TEACHER_TERMS) <= weights["task"]


def test_teacher_correct_distils_only_on_the_teachers_hits(teacher_checkpoint):
    model = _mgjr(teacher_checkpoint, distill_on='teacher_correct').eval()  # fixed BN: per-sample features
    inputs, _ = _batch()
    with torch.no_grad():
        predicted = model.teacher_outputs(inputs)[1].argmax(dim=1)
    right = [2, 5]
    labels = [int(p) if i in right else (int(p) + 1) % 6 for i, p in enumerate(predicted)]
    _, samples = _batch(labels=labels)
    noisy = model.make_noisy(inputs)
    parts = model.loss_parts(inputs, samples, noisy=noisy)
    assert parts["distill_fraction"] == pytest.approx(2 / 6)
    model.distill_on = 'all'
    subset = model.loss_parts(inputs[right], [samples[i] for i in right], noisy=noisy[right])
    for term in TEACHER_TERMS:
        assert torch.isclose(parts[term], subset[term], rtol=1e-4, atol=1e-6), term
    assert not torch.isclose(parts["task"], subset["task"])  # the task loss still uses the whole batch
    assert "distill_fraction" not in subset
    # a teacher wrong on every sample: no teacher term, no gradient from it
    model.distill_on = 'teacher_correct'
    _, all_wrong = _batch(labels=[(int(p) + 1) % 6 for p in predicted])
    losses = model.loss(inputs, all_wrong)
    assert all(losses[f"loss_{t}"] == 0 for t in TEACHER_TERMS) and losses["distill_fraction"] == 0
    total, log = model.parse_losses(losses)
    total.backward()
    assert model.projector.weight.grad is None or model.projector.weight.grad.abs().sum() == 0
    assert "distill_fraction" in log and torch.isclose(total, losses["loss_task"])
    with pytest.raises(ValueError, match="distill_on must be one of"):
        _mgjr(teacher_checkpoint, distill_on='correct')


def _bn_state(model):
    return {name: (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
            for name, bn in model._student_batchnorms()}


def test_split_bn_keeps_the_clean_running_statistics_free_of_the_noisy_pass(teacher_checkpoint):
    model = _mgjr(teacher_checkpoint, split_bn=True).train()
    inputs, samples = _batch()
    noisy = model.make_noisy(inputs) * 3 + 2  # a very different distribution, so a leak would show
    clean_only, noisy_only = copy.deepcopy(model), copy.deepcopy(model)
    parts = model.loss_parts(inputs, samples, noisy=noisy)
    assert torch.isfinite(parts["anchor_feat"]) and torch.isfinite(parts["anchor_logit"])
    clean_only.extract_feat(inputs)  # what a clean-only pass does to the statistics
    noisy_only.extract_feat(noisy)
    got, want, want_noisy = _bn_state(model), _bn_state(clean_only), _bn_state(noisy_only)
    assert len(got) > 10
    for name in got:
        for a, b in zip(got[name], want[name]):
            assert torch.allclose(a, b, atol=1e-6), name
        aux = model.noisy_bn_stats[name.replace(".", "__")]
        assert torch.allclose(aux.running_mean, want_noisy[name][0], atol=1e-6), name
        assert torch.allclose(aux.running_var, want_noisy[name][1], atol=1e-5), name
        assert int(aux.num_batches_tracked) == 1
    # the second set is not part of checkpoints (or exports) and is only used inside noisy_bn()
    assert not any("noisy_bn_stats" in key for key in model.state_dict())
    first_name = next(iter(got))
    with model.noisy_bn():  # inside, the layers hold the noisy view's statistics
        assert torch.allclose(dict(model._student_batchnorms())[first_name].running_mean, want_noisy[first_name][0])
    assert torch.equal(dict(model._student_batchnorms())[first_name].running_mean, got[first_name][0])


def test_without_split_bn_the_noisy_view_shares_the_statistics(teacher_checkpoint):
    model = _mgjr(teacher_checkpoint).train()
    inputs, samples = _batch()
    noisy = model.make_noisy(inputs) * 3 + 2
    clean_only = copy.deepcopy(model)
    model.loss_parts(inputs, samples, noisy=noisy)
    clean_only.extract_feat(inputs)
    stem = "backbone.stem.1"
    assert not torch.allclose(dict(model._student_batchnorms())[stem].running_mean,
                              dict(clean_only._student_batchnorms())[stem].running_mean)
    assert model.noisy_bn_stats is None


def test_a_preprocessor_that_hides_its_normalisation_is_an_error(mgjr):
    inputs, _ = _batch()
    mgjr.data_preprocessor = BaseDataPreprocessor()
    with pytest.raises(NormalisationError,
                       match=r"BaseDataPreprocessor has no '_enable_normalize'.*ClsDataPreprocessor"):
        mgjr.make_noisy(inputs)

    class HalfDone(torch.nn.Module):
        _enable_normalize = True

    with pytest.raises(NormalisationError, match=r"normalises \(_enable_normalize=True\) but has no 'mean'/'std'"):
        pixel_normalisation(HalfDone(), "X")
    control = MODELS.build(dict(type='NoiseAugClassifier', **TINY_STUDENT))
    control.data_preprocessor = BaseDataPreprocessor()
    with pytest.raises(NormalisationError, match="NoiseAugClassifier: data_preprocessor BaseDataPreprocessor"):
        control.make_noisy(inputs)
    raw = MODELS.build(dict(type='NoiseAugClassifier', **dict(TINY_STUDENT, data_preprocessor=dict(num_classes=6))))
    assert pixel_normalisation(raw.data_preprocessor, "X") == (None, None)  # no normalisation: inputs are pixels


def test_noise_aug_control_is_cross_entropy_on_clean_and_noisy_views_without_a_teacher():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='NoiseAugClassifier', **TINY_STUDENT, agts_fraction=0.5))
    model.init_weights()
    assert not hasattr(model, "teacher") and model.loss_weights == {"task": 1.0, "noisy_task": 1.0}
    model.eval()
    inputs, samples = _batch()
    torch.manual_seed(4)
    losses = model.loss(inputs, samples)
    assert set(losses) == {"loss_task", "loss_noisy_task"}
    torch.manual_seed(4)
    noisy = model.make_noisy(inputs[:3])  # the same draw as inside loss(); half the batch
    labels = torch.tensor([s.gt_label.item() for s in samples])
    with torch.no_grad():
        clean_logits, noisy_logits = model(inputs, mode="tensor"), model(noisy, mode="tensor")
    assert torch.isclose(losses["loss_task"], F.cross_entropy(clean_logits, labels), rtol=1e-4)
    assert torch.isclose(losses["loss_noisy_task"], F.cross_entropy(noisy_logits, labels[:3]), rtol=1e-4)
    assert not torch.equal(noisy, inputs[:3])
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(dict(inputs=[(x * 50 + 128).clamp(0, 255).to(torch.uint8) for x in inputs],
                                data_samples=samples), optim)
    assert torch.isfinite(log["loss"]) and "loss_noisy_task" in log
    with pytest.raises(ValueError, match="unknown loss_weights keys"):
        MODELS.build(dict(type='NoiseAugClassifier', **TINY_STUDENT, loss_weights=dict(anchor_feat=1.0)))
    split = MODELS.build(dict(type='NoiseAugClassifier', **TINY_STUDENT, split_bn=True))
    assert split.noisy_bn_stats is not None and set(split.state_dict()) == set(model.state_dict())
