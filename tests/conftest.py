"""Shared fixtures: everything is made on the fly from the project's own synthetic data."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins.compat import apply_all

# The suite uses the toolkits in-process everywhere, as importing defect_plugins.anomaly/.cls/.seg
# would: apply the fixes once up front (tests/compat checks in fresh interpreters who applies them).
apply_all()

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tiny models of the three families (tests/deploy, tests/station): one definition, made once per session.
from tests.model_fixtures import anomaly_export, tiny_anomaly, tiny_classifier, tiny_segmentor  # noqa: E402,F401

# Tests never reach a hub: anything that tries to download fails fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TIMM_OFFLINE", "1")


def run_python(code: str, *, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -c code`` in a fresh interpreter (imports and patches start from zero)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_seg_data(tmp_path_factory) -> Path:
    """A few synthetic strip images with fold-mark / edge-crack labels (mmseg layout)."""
    from defect_plugins.data import make_segmentation_dataset

    return make_segmentation_dataset(
        tmp_path_factory.mktemp("seg") / "strips", num_train=4, num_val=2, num_normal=2, image_size=(32, 64), seed=0
    )
