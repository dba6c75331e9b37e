"""mmengine checkpoints load under torch >= 2.6 with the compat fix, and only mmengine's own types do.

A killed mmseg run resumed from its checkpoint, end to end: tests/integration/compat/test_checkpoint_resume.py.
"""
from __future__ import annotations

import pytest
import torch

from tests.conftest import run_python


def test_safe_loading_stays_on_for_foreign_objects(tmp_path):
    # The allow-list is scoped to mmengine's own types: other pickled objects still refuse to load.
    from fractions import Fraction

    from mmengine.runner.checkpoint import _load_checkpoint

    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": {}, "meta": {"odd": Fraction(1, 3)}}, path)
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        _load_checkpoint(str(path), map_location="cpu")


def test_upstream_loader_fails_without_the_fix(tmp_path):
    # Documents the torch >= 2.6 breakage: an mmengine checkpoint, loaded by mmengine alone.
    from mmengine.logging import HistoryBuffer

    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {}, "message_hub": {"log_scalars": {"loss": HistoryBuffer([1.0], [1])}}}, path)
    result = run_python(
        f"from mmengine.runner.checkpoint import _load_checkpoint; _load_checkpoint({str(path)!r}, 'cpu')"
    )
    if tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 6):
        assert result.returncode != 0 and "HistoryBuffer" in result.stderr
    from mmengine.runner.checkpoint import _load_checkpoint

    assert _load_checkpoint(str(path), map_location="cpu")["message_hub"]["log_scalars"]["loss"].current() == 1.0
