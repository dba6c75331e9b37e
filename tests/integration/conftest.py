"""Fixtures of the integration tests only: the wheel and a tiny mmseg data set for runs through the launcher."""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def tiny_seg_data(tmp_path_factory) -> Path:
    """A few synthetic strip images with fold-mark / edge-crack labels (mmseg layout)."""
    from defect_plugins.data import make_segmentation_dataset

    return make_segmentation_dataset(
        tmp_path_factory.mktemp("seg") / "strips", num_train=4, num_val=2, num_normal=2, image_size=(32, 64), seed=0
    )


# what a clone's top level holds that a build can see (tests/ and docs/ hold no package either)
CLONE = ("pyproject.toml", "README.md", "LICENSE", "requirements-runtime.txt", "defect_plugins", "configs",
         "experiments", "tools", "tests", "docs")


def setuptools_version() -> tuple[int, ...] | None:
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    """The wheel built from a copy of the clone's top level (what ``pip wheel .`` in a clone sees); built once."""
    version = setuptools_version()
    if version is None or version < (77,):
        pytest.skip(f"building the wheel without isolation needs setuptools >= 77 here (found {version})")
    tmp = tmp_path_factory.mktemp("wheel_contents")
    source = tmp / "clone"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", "work_dirs")
    for name in CLONE:
        path = REPO_ROOT / name
        if path.is_symlink():  # configs -> defect_plugins/configs
            os.symlink(os.readlink(path), source / name)
        elif path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        elif path.is_file():
            shutil.copy2(path, source / name)
    assert (source / "experiments").is_dir() and (source / "tools").is_dir()
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                             "-w", str(tmp / "dist")], cwd=source, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "is absent from the `packages` configuration" not in result.stdout + result.stderr
    (built,) = (tmp / "dist").glob("defect_plugins-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive
