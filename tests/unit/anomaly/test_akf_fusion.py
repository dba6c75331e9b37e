"""AKF fusion: adjacent levels only, per-position weights that learn, size checks, RD equivalence."""

from __future__ import annotations

import pytest
import torch
from anomalib.models.image.reverse_distillation.components import get_bottleneck_layer

from defect_plugins.anomaly.akf_rd.components import AkfBottleneck, AsymptoticKnowledgeFusion, ConcatFusion, FusionStep

CHANNELS = [8, 16, 32]
REDUCTIONS = [4, 8, 16]
IMAGE = (64, 64)


def _levels(batch: int = 2, image: tuple[int, int] = IMAGE, requires_grad: bool = False) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [
        torch.randn(batch, c, image[0] // r, image[1] // r, requires_grad=requires_grad)
        for c, r in zip(CHANNELS, REDUCTIONS, strict=True)
    ]


def test_each_step_fuses_running_result_with_adjacent_deeper_level_only() -> None:
    fusion = AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "fixed", IMAGE).eval()
    levels = _levels()
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    hooks = [
        step.register_forward_hook(lambda _m, inputs, output: seen.append((inputs[0], inputs[1], output)))
        for step in fusion.steps
    ]
    out = fusion(levels)
    for hook in hooks:
        hook.remove()
    assert len(fusion.steps) == 2
    # step 1: (f1, f2); step 2: (result of step 1, f3) -- f1 and f3 never meet directly
    assert seen[0][0] is levels[0] and seen[0][1] is levels[1]
    assert seen[1][0] is seen[0][2] and seen[1][1] is levels[2]
    assert out is seen[1][2]
    assert out.shape == levels[2].shape


def test_first_step_does_not_see_the_deepest_level() -> None:
    fusion = AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "fixed", IMAGE).eval()
    levels = _levels(requires_grad=True)
    first = fusion.steps[0](levels[0], levels[1])
    first.sum().backward()
    assert levels[2].grad is None  # f3 takes no part in fusing f1 with f2
    assert levels[0].grad.abs().sum() > 0 and levels[1].grad.abs().sum() > 0
    levels2 = _levels(requires_grad=True)
    fusion(levels2).sum().backward()
    assert all(level.grad.abs().sum() > 0 for level in levels2)  # the full fusion uses every level


def test_fixed_weights_have_the_paper_shape_and_get_per_position_gradients() -> None:
    fusion = AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "fixed", IMAGE).train()
    for step, channels, reduction in zip(fusion.steps, CHANNELS[1:], REDUCTIONS[1:], strict=True):
        # one C x H x W weight per fused input (the paper's W_n, shape of the level f_n)
        assert step.weight_logits.shape == (2, channels, IMAGE[0] // reduction, IMAGE[1] // reduction)
    fusion(_levels()).pow(2).mean().backward()
    for step in fusion.steps:
        grad = step.weight_logits.grad
        assert grad is not None and grad.abs().sum() > 0
        # the gradient differs from position to position: weights are per pixel, not per level
        assert grad[0].flatten(1).std(dim=1).max() > 0
    optimizer = torch.optim.SGD(fusion.parameters(), lr=1.0)
    before = fusion.steps[0].weight_logits.detach().clone()
    optimizer.step()
    assert not torch.equal(before, fusion.steps[0].weight_logits.detach())


def test_fixed_weights_reject_another_input_size_with_the_expected_size() -> None:
    fusion = AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "fixed", IMAGE)
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        fusion(_levels(image=(128, 128)))


def test_adaptive_weights_take_any_size() -> None:
    fusion = AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "adaptive").eval()
    for size in [(64, 64), (96, 128)]:
        out = fusion(_levels(image=size))
        assert out.shape == (2, CHANNELS[-1], size[0] // 16, size[1] // 16)
    fusion.train()
    fusion(_levels()).sum().backward()
    assert all(step.weight_head.weight.grad.abs().sum() > 0 for step in fusion.steps)


def test_fixed_mode_needs_image_size_and_valid_mode() -> None:
    with pytest.raises(ValueError, match="image_size"):
        AsymptoticKnowledgeFusion(CHANNELS, REDUCTIONS, "fixed", None)
    with pytest.raises(ValueError, match="weight_mode"):
        FusionStep(8, 16, 2, "softmax")  # type: ignore[arg-type]


@pytest.mark.parametrize("backbone", ["resnet18", "wide_resnet50_2"])
def test_concat_with_oce_is_reverse_distillations_ocbe(backbone: str) -> None:
    """Traditional fusion + OCE has exactly RD's OCBE parameters (minus RD's unused conv4/bn4)."""
    expansion = 1 if backbone == "resnet18" else 4
    channels = [64 * expansion, 128 * expansion, 256 * expansion]
    ours = AkfBottleneck(backbone, channels, REDUCTIONS, 512 * expansion, fusion="concat", oce=True)
    rd = get_bottleneck_layer(backbone)
    rd_params = sum(p.numel() for n, p in rd.named_parameters() if not n.startswith(("conv4", "bn4")))
    assert sum(p.numel() for p in ours.parameters()) == rd_params


def test_concat_fusion_output_shape() -> None:
    fusion = ConcatFusion(CHANNELS, REDUCTIONS)
    out = fusion(_levels())
    assert out.shape == (2, 3 * CHANNELS[-1], 4, 4)
