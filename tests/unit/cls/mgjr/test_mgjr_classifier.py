"""MGJR classifier: unified loss = weighted sum of its parts, frozen teacher, clear errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from defect_plugins.cls.mgjr import FeatureDimError
from tests.fixtures.mgjr import TEACHER_WIDTH, TINY_STUDENT, TINY_TEACHER


def _batch(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g)
    samples = [DataSample().set_gt_label(i % 6) for i in range(n)]
    return inputs, samples


def test_unified_loss_is_the_weighted_sum_of_independently_computed_parts(mgjr):
    mgjr.eval()  # fixed BN statistics: the clean half of the concatenated batch equals a clean-only pass
    inputs, samples = _batch()
    torch.manual_seed(3)
    losses = mgjr.loss(inputs, samples)
    assert set(losses) == {f"loss_{k}" for k in ("task", "coarse_feat", "coarse_logit", "anchor_feat", "anchor_logit")}
    total, _ = mgjr.parse_losses(losses)

    torch.manual_seed(3)
    noisy = mgjr.make_noisy(inputs)  # the same draw as inside loss()
    with torch.no_grad():
        t_feat = mgjr.teacher.extract_feat(inputs)[-1]
        t_logits = mgjr.teacher.head((t_feat, ))
        s_emb = mgjr.extract_feat(inputs)[-1]
        s_noisy_emb = mgjr.extract_feat(noisy)[-1]
        s_logits, s_noisy_logits = mgjr.head((s_emb, )), mgjr.head((s_noisy_emb, ))
    labels = torch.tensor([s.gt_label.item() for s in samples])
    T = mgjr.temperature

    def kd(s, t):
        return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T

    def cos(s, t):
        return (1 - F.cosine_similarity(mgjr.projector(s), t, dim=1)).mean()

    parts = dict(task=F.cross_entropy(s_logits, labels), coarse_feat=cos(s_emb, t_feat),
                 coarse_logit=kd(s_logits, t_logits), anchor_feat=cos(s_noisy_emb, t_feat),
                 anchor_logit=kd(s_noisy_logits, t_logits))
    w = mgjr.loss_weights
    assert w == dict(task=1.0, coarse_feat=0.5, coarse_logit=2.0, anchor_feat=3.0, anchor_logit=0.25)
    for name, value in parts.items():
        assert torch.isclose(losses[f"loss_{name}"], w[name] * value, rtol=1e-4, atol=1e-6), name
    assert torch.isclose(total, sum(w[k] * v for k, v in parts.items()), rtol=1e-4)
    assert parts["anchor_feat"] > 0 and not torch.equal(noisy, inputs)


def test_under_bf16_autocast_every_term_is_float32_and_finite(mgjr):
    # the runs train under AutocastOptimWrapper: the noisy view is synthesised in float32 and the teacher
    # terms are computed in float32 (bf16 would round 1 - cos of aligned embeddings to steps of 0.004)
    inputs, samples = _batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = mgjr.loss(inputs, samples)
    for name in ("coarse_feat", "coarse_logit", "anchor_feat", "anchor_logit"):
        assert losses[f"loss_{name}"].dtype == torch.float32, name
    assert all(torch.isfinite(v) for v in losses.values())


def test_zero_anchor_weights_turn_agts_off(teacher_checkpoint):
    model = MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER,
                              teacher_checkpoint=str(teacher_checkpoint), **TINY_STUDENT,
                              loss_weights=dict(anchor_feat=0, anchor_logit=0)))
    model.init_weights()
    calls = []
    model.noise.register_forward_hook(lambda *a: calls.append(1))
    losses = model.loss(*_batch())
    assert set(losses) == {"loss_task", "loss_coarse_feat", "loss_coarse_logit"} and not calls


def test_agts_fraction_corrupts_only_part_of_the_batch(mgjr):
    mgjr.eval()
    mgjr.agts_fraction = 0.5
    seen = []
    mgjr.noise.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    inputs, samples = _batch(n=6)
    parts = mgjr.loss_parts(inputs, samples)
    assert seen == [3] and torch.isfinite(parts["anchor_feat"]) and torch.isfinite(parts["anchor_logit"])
    noisy = inputs[:3].clone()  # a "noisy" view equal to the clean images: anchor terms equal the coarse ones
    same = mgjr.loss_parts(inputs[:3], samples[:3], noisy=noisy)
    assert torch.isclose(same["anchor_feat"], same["coarse_feat"], atol=1e-6)
    assert torch.isclose(same["anchor_logit"], same["coarse_logit"], atol=1e-6)
    with pytest.raises(ValueError, match="agts_fraction"):
        MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER,
                          teacher_checkpoint=str(mgjr.teacher_checkpoint), **TINY_STUDENT, agts_fraction=0))


def test_teacher_gets_no_gradient_and_stays_frozen_in_training(mgjr, teacher_checkpoint):
    mgjr.train()
    assert not mgjr.teacher.training
    before = {k: v.clone() for k, v in mgjr.teacher.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD([p for p in mgjr.parameters() if p.requires_grad], lr=0.1))
    inputs, samples = _batch()
    for _ in range(2):
        log = mgjr.train_step(dict(inputs=[(x * 50 + 128).clamp(0, 255).to(torch.uint8) for x in inputs],
                                   data_samples=samples), optim)
    assert torch.isfinite(log["loss"])
    assert all(not p.requires_grad and p.grad is None for p in mgjr.teacher.parameters())
    after = mgjr.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    total, _ = mgjr.parse_losses(mgjr.loss(inputs, samples))
    total.backward()
    assert all(p.grad is None for p in mgjr.teacher.parameters())
    assert mgjr.projector.weight.grad.abs().sum() > 0
    assert mgjr.backbone.stages[0][0].conv1.weight.grad.abs().sum() > 0
    # student-only checkpoints: no teacher keys, projector kept (needed to resume)
    keys = mgjr.state_dict().keys()
    assert not any(k.startswith("teacher.") for k in keys) and "projector.weight" in keys
    # init_weights (called by the Runner) leaves the loaded teacher alone
    saved = torch.load(teacher_checkpoint, weights_only=False)["state_dict"]
    assert torch.equal(mgjr.teacher.state_dict()["head.fc.weight"], saved["head.fc.weight"])


def test_feature_dimension_mismatch_is_a_clear_error(teacher_checkpoint):
    base = dict(type='MGJRClassifier', teacher_config=TINY_TEACHER, teacher_checkpoint=str(teacher_checkpoint),
                **TINY_STUDENT)
    with pytest.raises(FeatureDimError, match=rf"student 128-d, teacher {TEACHER_WIDTH}-d"):
        MODELS.build(dict(base, projector='identity'))
    with pytest.raises(FeatureDimError, match="teacher_dim=384"):
        MODELS.build(dict(base, teacher_dim=384))
    model = MODELS.build(base)
    with pytest.raises(FeatureDimError, match="student features are 64-d"):
        model.project(torch.randn(2, 64))


def test_missing_teacher_checkpoint_is_a_clear_error(tmp_path):
    missing = tmp_path / "stage1" / "epoch_30.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER, teacher_checkpoint=str(missing),
                          **TINY_STUDENT))


def test_unknown_loss_weight_is_rejected(teacher_checkpoint):
    with pytest.raises(ValueError, match="unknown loss_weights keys"):
        MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER,
                          teacher_checkpoint=str(teacher_checkpoint), **TINY_STUDENT, loss_weights=dict(anchor=1)))


def test_vit_teacher_local_weights_and_missing_file(tmp_path):
    import timm

    kwargs = dict(depth=2, embed_dim=48, num_heads=3)
    source = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32, patch_size=8, num_classes=6,
                               **kwargs)
    path = tmp_path / "vit.pth"
    torch.save(source.state_dict(), path)
    backbone = MODELS.build(dict(type='TimmViT', arch='vit_tiny_patch16_224', img_size=32, patch_size=8,
                                 weights=str(path), model_kwargs=kwargs))
    assert torch.equal(backbone.vit.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)
    (emb, ) = backbone(torch.randn(2, 3, 32, 32))
    assert emb.shape == (2, 48) and backbone.out_channels == (48, )
    assert backbone(torch.randn(1, 3, 48, 40))[0].shape == (1, 48)  # dynamic image size
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        MODELS.build(dict(type='TimmViT', weights=str(tmp_path / "nowhere.pth")))
