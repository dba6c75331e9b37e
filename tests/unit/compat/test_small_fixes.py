"""numpy-2 alias and the persistent-workers guard."""
from __future__ import annotations

import numpy as np
import torch
from mmengine.runner import Runner
from torch.utils.data import TensorDataset

from defect_plugins.compat import numpy_aliases


def test_mmpretrain_retrieval_metric_runs_on_numpy_2():
    from mmpretrain.evaluation.metrics import RetrievalRecall

    pred = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7]])
    target = [torch.tensor([0]), torch.tensor([1])]
    recall = RetrievalRecall.calculate(pred, target, topk=(1, 2), target_indices=True)
    # sample 0 is right at top-1, sample 1 only at top-2
    assert [float(r) for r in recall] == [50.0, 100.0]


def test_in1d_alias_agrees_with_isin():
    a, b = np.array([[1, 2], [3, 4]]), np.array([2, 4, 9])
    np.testing.assert_array_equal(numpy_aliases._in1d(a, b), [False, True, False, True])
    np.testing.assert_array_equal(numpy_aliases._in1d(a, b, invert=True), [True, False, True, False])


def test_persistent_workers_without_workers_builds_a_loader():
    dataset = TensorDataset(torch.arange(4.0))
    loader = Runner.build_dataloader(
        dict(dataset=dataset, batch_size=2, num_workers=0, persistent_workers=True,
             sampler=dict(type="DefaultSampler", shuffle=False))
    )
    assert loader.persistent_workers is False
    assert len(list(loader)) == 2
