"""Deployment: run exported models with OpenVINO on factory CPUs.

``from defect_plugins.deploy import DefectInferencer`` is the Python API (:mod:`.inferencer`);
``defect-infer`` (:mod:`.infer`) is the command over it. Neither imports torch or a toolkit, so
they run in the runtime-only install (README, "Deployment on factory CPUs"). Exporting
(:mod:`.export`), INT8 (:mod:`.int8`), scoring and benchmarks need the full install.

Names are resolved on first use (PEP 562), so that importing a helper module of this package
(``defect_plugins.deploy.geometry`` from the ARCD transforms, for example) does not load OpenVINO.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "DefectInferencer": ".inferencer",
    "InferenceResult": ".result",
    "GradingRule": ".quantify",
    "ModelMetadata": ".metadata",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
