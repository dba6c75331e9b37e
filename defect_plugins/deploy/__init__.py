"""Deployment: run exported models with OpenVINO on factory CPUs.

``from defect_plugins.deploy import DefectInferencer`` is the Python API (:mod:`.inferencer`);
``defect-infer`` (:mod:`.infer`) is the command over it. Neither imports torch or a toolkit, so
they run in the runtime-only install (README, "Deployment on factory CPUs"). Exporting, INT8 and
the metrics (:mod:`.export`) and the benchmark (:mod:`.bench`) need the full install; the runtime
modules never import them (import-linter contracts in ``pyproject.toml``). Image code shared with
training (reading, geometry, the paper's Otsu chain, region measurement) is
:mod:`defect_plugins.imaging`.

=====================  =========================================================================
runtime                :mod:`.inferencer`, :mod:`.infer`, :mod:`.families` (post-processing),
                       :mod:`.bundle` (model bundles of ``defect-fit``: IRs, threshold, rules),
                       :mod:`.grading` (rule files, the grade of every result),
                       :mod:`.metadata`, :mod:`.ir_files`, :mod:`.runtime`, :mod:`.preprocess`,
                       :mod:`.result`, :mod:`.report`, :mod:`.selfcheck`
export time            :mod:`.export` (``defect-export``: export, INT8, families' export halves,
                       metrics)
benchmark              :mod:`.bench` (``defect-bench``)
=====================  =========================================================================

Names are resolved on first use (PEP 562), so that importing one module of this package does
not load OpenVINO.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Bundle": ".bundle",
    "DefectInferencer": ".inferencer",
    "InferenceResult": ".result",
    "ModelMetadata": ".metadata",
    "PostSettings": ".families",
    "RuleSet": ".grading",
    "load_bundle": ".bundle",
    "load_rules": ".grading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
