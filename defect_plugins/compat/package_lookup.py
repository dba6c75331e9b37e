"""mmengine package lookups without ``pkg_resources``.

mmengine 0.10.7 resolves ``_base_ = 'mmpretrain::...'`` / ``'mmseg::...'`` and
``mmengine.hub`` calls through ``is_installed`` / ``get_installed_path``
(``mmengine/utils/package_utils.py``), which import ``pkg_resources``; setuptools >= 82 no
longer ships it. The same two functions are re-implemented with :mod:`importlib.metadata`
and swapped in every module that imported them by name. Nothing changes where
``pkg_resources`` is still importable.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os.path as osp
import sys

_MODULES_IMPORTING_BY_NAME = (
    "mmengine.utils.package_utils",
    "mmengine.utils",
    "mmengine.config.config",
    "mmengine.config",
    "mmengine.hub.hub",
)


def _module_name(package: str) -> str:
    """Top-level import name of a distribution (``mmsegmentation`` -> ``mmseg``)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return package
    top_level = dist.read_text("top_level.txt")
    if top_level and top_level.split():
        return top_level.split()[0]
    for name, dists in importlib.metadata.packages_distributions().items():
        if dist.metadata["Name"] in dists:
            return name
    return package


def is_installed(package: str) -> bool:
    """Same contract as ``mmengine.utils.is_installed``."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """Same contract as ``mmengine.utils.get_installed_path``: the package's folder."""
    module = package if importlib.util.find_spec(package) else _module_name(package)
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise importlib.metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f"{package} is a namespace package, which is invalid for `get_install_path`")
    return osp.dirname(spec.origin)


def apply() -> bool:
    """Swap the two lookups into mmengine when ``pkg_resources`` is missing."""
    if importlib.util.find_spec("pkg_resources") is not None:
        return False
    import mmengine.config.config  # noqa: F401  (make sure every importer is loaded)
    import mmengine.hub.hub  # noqa: F401
    import mmengine.utils.package_utils as package_utils

    package_utils.package2module = _module_name
    for name in _MODULES_IMPORTING_BY_NAME:
        module = sys.modules.get(name)
        if module is None:
            continue
        if hasattr(module, "is_installed"):
            module.is_installed = is_installed
        if hasattr(module, "get_installed_path"):
            module.get_installed_path = get_installed_path
    return True
