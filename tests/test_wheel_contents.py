"""The wheel holds the product only: no studies (``experiments/``), no clone scripts (``tools/``), no study support.

The wheel is built from a copy of the clone's top level (``experiments/`` and ``tools/`` included, as a user's
``pip wheel .`` in a clone would see them), so the check is on the packaging configuration, not on the copy.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import PurePosixPath
from typing import Iterator

import pytest

from tests.conftest import REPO_ROOT
from tests.test_packaging import _setuptools_version

# what a clone's top level holds that a build can see (tests/ and docs/ hold no package either)
CLONE = ("pyproject.toml", "README.md", "LICENSE", "requirements-runtime.txt", "defect_plugins", "configs",
         "experiments", "tools", "tests", "docs")
STUDY_MODULES = {"seeds.py", "stats.py", "complexity.py", "runs.py", "mvtec_layout.py"}
IMPORTS_EXPERIMENTS = re.compile(r"^\s*(?:from\s+experiments(?:\.|\s)|import\s+experiments\b)", re.M)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Iterator[zipfile.ZipFile]:
    version = _setuptools_version()
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
    (built,) = (tmp / "dist").glob("defect_plugins-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_wheel_holds_only_the_package_and_its_metadata(wheel):
    tops = {PurePosixPath(name).parts[0] for name in wheel.namelist()}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert tops - dist_info == {"defect_plugins"}, f"top-level entries besides the package: {sorted(tops)}"
    assert not [n for n in wheel.namelist() if {"experiments", "tools"} & set(PurePosixPath(n).parts)]
    for name in wheel.namelist():
        if name.endswith(".dist-info/top_level.txt"):
            assert wheel.read(name).decode().split() == ["defect_plugins"]


def test_wheel_holds_no_study_support_module(wheel):
    found = [n for n in wheel.namelist() if PurePosixPath(n).name in STUDY_MODULES]
    assert not found, f"study support code in the wheel: {found}"


def test_nothing_in_the_wheel_imports_experiments(wheel):
    importing = [n for n in wheel.namelist() if n.endswith(".py")
                 and IMPORTS_EXPERIMENTS.search(wheel.read(n).decode("utf-8", errors="replace"))]
    assert not importing, f"modules importing the clone's experiments package: {importing}"


def test_the_package_sources_do_not_import_experiments():
    """The same rule on the clone's sources, without a build: the product never needs a clone's studies."""
    importing = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "defect_plugins").rglob("*.py")
                 if "__pycache__" not in p.parts and IMPORTS_EXPERIMENTS.search(p.read_text(errors="replace"))]
    assert not importing, importing
