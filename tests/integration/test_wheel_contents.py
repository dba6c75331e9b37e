"""The wheel holds the product only: no studies (``experiments/``), no clone scripts (``tools/``), no study support.

The wheel (``tests/integration/conftest.py``: ``wheel``) is built from a copy of the clone's top level
(``experiments/`` and ``tools/`` included, as a user's ``pip wheel .`` in a clone would see them), so the check is
on the packaging configuration, not on the copy.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath


from tests.conftest import REPO_ROOT

STUDY_MODULES = {"seeds.py", "stats.py", "complexity.py", "runs.py", "mvtec_layout.py"}
IMPORTS_EXPERIMENTS = re.compile(r"^\s*(?:from\s+experiments(?:\.|\s)|import\s+experiments\b)", re.M)


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
