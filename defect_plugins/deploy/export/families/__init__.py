"""What export needs of each model family, behind one interface (runtime half: :mod:`defect_plugins.deploy.families`).

Each of :mod:`.classifier`, :mod:`.segmentor` and :mod:`.anomaly` defines the same functions
(:class:`ExportFamily`); export, INT8, the held-out figures and the benchmark ask
:func:`get_export_family` instead of branching on the family name. ``load`` and the metric import
torch and the toolkit inside the functions, so that listing the families stays cheap.

==================  ============================================================================
``load``            config/checkpoint -> :class:`.base.LoadedModel` (torch reference module,
                    metadata, converter to an FP32 ``ov.Model`` with the uint8 BGR contract)
``ignored_scope``   NNCF ``IgnoredScope`` that INT8 must leave in float, or None
``read_labelled``   a labelled folder of the family's layout -> :class:`.base.LabelledSet`
``measure``         the family's metric of a predict function on a :class:`.base.LabelledSet`
                    -> :class:`.base.Evaluation`: the one metric code of the family (the INT8
                    guard, the held-out figures of the demo, the benchmark)
==================  ============================================================================
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ...metadata import FAMILIES, ModelMetadata
from ...runtime import Predict
from .base import Evaluation, ExportError, LabelledSet, LoadedModel


class ExportFamily(Protocol):
    """The functions every export family module defines (see the table above)."""

    NAME: str

    def load(self, *, config: str | Path | None, checkpoint: str | Path | None,
             input_size: tuple[int, int] | None = None, class_names: Sequence[str] | None = None,
             **kwargs: Any) -> LoadedModel: ...

    def ignored_scope(self, ov_model: Any) -> Any: ...

    def read_labelled(self, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None,
                      split: str | None = None, figures: bool = True) -> LabelledSet: ...

    def measure(self, predict: Predict, metadata: ModelMetadata, data: LabelledSet, *,
                indices: Sequence[int] | None = None) -> Evaluation: ...


def get_export_family(name: str) -> ExportFamily | ModuleType:
    """The export module of family ``name`` (``classifier``, ``segmentor`` or ``anomaly``)."""
    if name not in FAMILIES:
        raise ExportError(f"family must be one of {FAMILIES}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["Evaluation", "ExportError", "ExportFamily", "LabelledSet", "LoadedModel", "get_export_family"]
