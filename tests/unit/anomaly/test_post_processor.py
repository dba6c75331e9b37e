"""RankPreservingPostProcessor: anomalib's thresholds and labels, no ties from the clamp."""
from __future__ import annotations

import torch
from anomalib.post_processing import PostProcessor
from torchmetrics.functional.classification import binary_auroc

from defect_plugins.anomaly import RankPreservingPostProcessor


def _scores() -> tuple[torch.Tensor, torch.Tensor]:
    """Raw scores whose F1-style threshold sits low in the range, as on a set with mostly defective images."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.zeros(20), torch.ones(60)]).long()
    scores = torch.cat([torch.rand(20, generator=generator) * 8.5,          # normal: 0 .. 8.5
                        1.0 + torch.rand(60, generator=generator) * 9.0])   # defective: 1 .. 10
    return scores, labels


def test_the_order_of_the_raw_scores_is_kept_where_anomalib_clamps_it_away() -> None:
    scores, labels = _scores()
    low, high, threshold = scores.min(), scores.max(), torch.tensor(2.0)
    ours = RankPreservingPostProcessor._normalize(scores, low, high, threshold)
    anomalib = PostProcessor._normalize(scores, low, high, threshold)

    assert ours.unique().numel() == scores.unique().numel()  # strictly increasing: no ties
    assert torch.equal(torch.argsort(ours), torch.argsort(scores))
    assert anomalib.unique().numel() < scores.unique().numel()  # the clamp at 1 ties the upper half of the range
    assert float(ours.min()) > 0.0 and float(ours.max()) < 1.0  # inside (0, 1): torchmetrics applies no sigmoid

    raw_auroc = binary_auroc((scores - low) / (high - low), labels)
    assert torch.isclose(binary_auroc(ours, labels), raw_auroc)
    assert not torch.isclose(binary_auroc(anomalib, labels), raw_auroc)  # the ties change the figure

    # the threshold maps to 0.5 and the slope there is anomalib's, so labels at sensitivity 0.5 agree
    at = RankPreservingPostProcessor._normalize(threshold.reshape(1), low, high, threshold)
    assert torch.isclose(at, torch.tensor([0.5]))
    assert torch.equal(ours > 0.5, anomalib > 0.5)
    near = threshold + torch.tensor([-1e-3, 1e-3]) * (high - low)
    slope_ours = torch.diff(RankPreservingPostProcessor._normalize(near, low, high, threshold))
    slope_anomalib = torch.diff(PostProcessor._normalize(near, low, high, threshold))
    assert torch.allclose(slope_ours, slope_anomalib, rtol=1e-3)


def test_missing_statistics_fall_back_as_anomalib_does() -> None:
    scores = torch.tensor([0.2, 1.0, 3.0])
    nan = torch.tensor(float("nan"))
    for fallback_case in ((nan, nan, nan), (torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0))):
        assert torch.equal(RankPreservingPostProcessor._normalize(scores, *fallback_case),
                           PostProcessor._normalize(scores, *fallback_case))
    assert RankPreservingPostProcessor._normalize(None, nan, nan, nan) is None
