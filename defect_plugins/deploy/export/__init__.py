"""Export-time code of deployment: torch models to OpenVINO IRs, INT8 with its accuracy guard, the metrics.

Everything here needs the full install (torch, the toolkits, NNCF); the runtime part of
:mod:`defect_plugins.deploy` (``DefectInferencer``, ``defect-infer``, the families' post-processing)
never imports it (an import-linter contract in ``pyproject.toml``).

==========================  ====================================================================
:mod:`.exporter`            ``load_model``, ``export_model``, ``parity`` (the Python API)
:mod:`.cli`                 ``defect-export`` (``main``; also ``python -m defect_plugins.deploy.export``)
:mod:`.int8`                NNCF PTQ, then accuracy control, refused above the tolerance
:mod:`.evaluation`          a model's metric and held-out figures on a labelled folder
:mod:`.families`            per family: load, convert, ignored scope, read labelled folders, measure
==========================  ====================================================================

``export_model``, ``load_model``, ``parity`` and ``main`` stay importable from this dotted path
(``defect-export = "defect_plugins.deploy.export:main"``, where they lived as one module).
"""
from __future__ import annotations

from .cli import main
from .exporter import DEFAULT_ANOMALIB_MODEL, ExportError, LoadedModel, export_model, load_model, parity

__all__ = ["DEFAULT_ANOMALIB_MODEL", "ExportError", "LoadedModel", "export_model", "load_model", "main", "parity"]
