"""Shared fixtures of tests/unit and tests/integration: everything is made on the fly from the project's own
synthetic data.

Fixtures that both folders use are plugins registered below (``pytest_plugins``); import their helpers
from those modules (``from tests.fixtures.station import running_station``). Fixtures of one side only
live in that side's conftest.py (tests/integration/conftest.py: the wheel).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins.compat import apply_all

# The suite uses the toolkits in-process everywhere, as importing defect_plugins.anomaly/.cls/.seg
# would: apply the fixes once up front (the compat tests check in fresh interpreters who applies them).
apply_all()

REPO_ROOT = Path(__file__).resolve().parents[1]

# Fixtures for the whole suite, each made once per session whichever folders run: the tiny models of the
# three families (tests/model_fixtures.py: deploy, station) and each area's data sets and helpers
# (tests/fixtures/: the former conftest.py files of cls, cls/mgjr, gan, seg and station).
pytest_plugins = [
    "tests.model_fixtures",
    "tests.fixtures.cls",
    "tests.fixtures.mgjr",
    "tests.fixtures.gan",
    "tests.fixtures.seg",
    "tests.fixtures.station",
    "tests.fixtures.mqtt",
    "tests.fixtures.opcua",
    "tests.fixtures.postgres",
]

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
