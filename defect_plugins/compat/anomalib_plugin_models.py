"""Let anomalib's ``get_model`` and ``anomalib benchmark`` take this package's anomalib models.

Two places in anomalib 2.7 keep a third-party ``AnomalibModule`` out of a benchmark grid:

* ``get_model`` with a dict / ``class_path`` (``anomalib/models/__init__.py:328``, what
  ``anomalib benchmark`` calls for every job in ``pipelines/benchmark/generator.py:105``)
  imports only modules in the set ``ALLOWED_MODULES`` (``anomalib/models/__init__.py:108``:
  ``anomalib.models``, ``.image``, ``.video``, ``.components``); any other module is refused
  with ``UnknownModelError``. The modules that export this package's models
  (:data:`PLUGIN_MODULES`) are added to that set, nothing else: the allow-list still refuses
  every other module.
* ``BenchmarkJob.collect`` (``anomalib/pipelines/benchmark/job.py:179-183``) takes the table's
  columns from the first job's result: a later job with a metric the first lacks raises
  ``KeyError``, one lacking a metric leaves columns of unequal length (pandas ``ValueError``).
  Models with different metric sets (AKF-RD also reports ``pixel_AUPRO``) or different init
  arguments cannot share a grid. ``collect`` is wrapped to build the columns from every job's
  keys, in order of appearance, an empty cell where a job lacks one. When every job reports the
  same keys, upstream's ``collect`` runs unchanged.

Importing ``anomalib.models`` costs seconds and parts of this package that apply the fixes
(``defect_plugins.cls``, the launcher) never use anomalib: so nothing is imported here. A module
already imported is patched at once; otherwise a finder on ``sys.meta_path`` patches it right
after it is first imported, and removes itself once both are done. Installed files are not
edited; applying twice changes nothing.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

#: Modules whose ``AnomalibModule`` classes a ``class_path`` may name (where they are defined or re-exported).
PLUGIN_MODULES = (
    "defect_plugins.anomaly",
    "defect_plugins.anomaly.akf_rd",
    "defect_plugins.anomaly.akf_rd.lightning_model",
)

_MARK = "__defect_plugins_wrapped__"


def allow_plugin_modules(models: ModuleType) -> None:
    """Add :data:`PLUGIN_MODULES` to ``anomalib.models.ALLOWED_MODULES`` (the set ``get_model`` reads)."""
    models.ALLOWED_MODULES.update(PLUGIN_MODULES)


def collect_every_column(job_module: ModuleType) -> None:
    """Wrap ``BenchmarkJob.collect`` so that jobs with different keys make one table."""
    job_class = job_module.BenchmarkJob
    original = job_class.__dict__["collect"]
    original = original.__func__ if isinstance(original, staticmethod) else original
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def collect(results: list[dict[str, Any]]) -> Any:  # noqa: ANN401 - pandas.DataFrame
        if not results or all(result.keys() == results[0].keys() for result in results):
            return original(results)
        import pandas as pd

        columns = list(dict.fromkeys(key for result in results for key in result))
        return pd.DataFrame({key: [result.get(key) for result in results] for key in columns})

    setattr(collect, _MARK, True)
    job_class.collect = staticmethod(collect)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "anomalib.models": allow_plugin_modules,
    "anomalib.pipelines.benchmark.job": collect_every_column,
}


class _PatchAfterImport:
    """``sys.meta_path`` finder: runs a module's patch right after the module's own code."""

    __defect_plugins_hook__ = True

    def __init__(self, pending: dict[str, Callable[[ModuleType], None]]) -> None:
        self.pending = dict(pending)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:  # noqa: ANN401
        patch = self.pending.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec  # not something to wrap; anomalib's modules are plain source files
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)
            self.pending.pop(fullname, None)
            if not self.pending and self in sys.meta_path:
                sys.meta_path.remove(self)

        loader.exec_module = exec_and_patch  # this loader instance serves this one module
        return spec


def apply() -> bool:
    """Patch what is imported, hook what is not; False when anomalib is not installed."""
    if importlib.util.find_spec("anomalib") is None:
        return False
    pending = {}
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
        else:
            pending[name] = patch
    hook = next((f for f in sys.meta_path if getattr(f, "__defect_plugins_hook__", False)), None)
    if hook is not None:
        hook.pending = {name: patch for name, patch in pending.items() if name in hook.pending}
        if not hook.pending:
            sys.meta_path.remove(hook)
    elif pending:
        sys.meta_path.insert(0, _PatchAfterImport(pending))
    return True
