"""Run an OpenMMLab toolkit's own ``tools/train.py`` / ``tools/test.py`` with the plugin loaded.

This is what ``mim train`` / ``mim test`` do (find ``<package>/.mim/tools/<script>.py`` and run
it), without openmim, which cannot be installed next to torch and anomalib (its openxlab
dependency pins setuptools 60 and rich 13.4). Importing :mod:`defect_plugins` first applies
the compatibility fixes *before* the config is parsed, which matters for configs whose
``_base_`` is ``mmpretrain::...`` or ``mmseg::...`` (``custom_imports`` runs too late for that).

Usage::

    python -m defect_plugins.launcher {train,test} {mmpretrain,mmseg} CONFIG [script args...]

``tools/mim_train.sh`` and ``tools/mim_test.sh`` wrap this for one or several processes.
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import defect_plugins  # noqa: F401  (applies the compatibility fixes)
from defect_plugins.compat.package_lookup import get_installed_path

TOOLKITS = {"mmpretrain": "mmpretrain", "mmseg": "mmseg", "mmsegmentation": "mmseg"}
SCRIPTS = ("train", "test")


class LauncherError(RuntimeError):
    """A launch request that cannot be carried out (unknown toolkit, missing script or config)."""


def upstream_script(toolkit: str, script: str) -> Path:
    """Path of ``<toolkit>/.mim/tools/<script>.py`` as installed by pip."""
    if toolkit not in TOOLKITS:
        raise LauncherError(f"unknown toolkit {toolkit!r}: expected one of {sorted(TOOLKITS)}")
    if script not in SCRIPTS:
        raise LauncherError(f"unknown script {script!r}: expected one of {SCRIPTS}")
    package_dir = Path(get_installed_path(TOOLKITS[toolkit]))
    path = package_dir / ".mim" / "tools" / f"{script}.py"
    if not path.is_file():
        raise LauncherError(f"{path} not found: is {TOOLKITS[toolkit]} installed from its wheel?")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m defect_plugins.launcher", description=__doc__.split("\n")[0])
    parser.add_argument("script", choices=SCRIPTS)
    parser.add_argument("toolkit", choices=sorted(TOOLKITS))
    parser.add_argument("config", help="config file path")
    args, rest = parser.parse_known_args(argv)
    try:
        if not Path(args.config).is_file():
            raise LauncherError(f"config file {args.config} not found")
        script = upstream_script(args.toolkit, args.script)
    except LauncherError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    sys.argv = [str(script), args.config, *rest]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
