"""Everything one model family knows, behind one small interface.

Each of :mod:`.classifier` (mmpretrain), :mod:`.segmentor` (mmsegmentation) and :mod:`.anomaly`
(anomalib) is a module with the same functions (:class:`Family`); export, INT8, inference and the
benchmark ask :func:`get_family` instead of branching on the family name. Only ``load`` imports
torch and the toolkit (inside the function): the other four run in a runtime-only install.

=================  ==========================================================================
``load``           config/checkpoint -> :class:`.base.LoadedModel` (torch reference module,
                   metadata, converter to an FP32 ``ov.Model`` with the uint8 BGR contract)
``evaluate``       the family's metric on a labelled folder (the INT8 guard's criterion)
``postprocess``    raw outputs of one image -> :class:`..result.InferenceResult`
``ignored_scope``  NNCF ``IgnoredScope`` that INT8 must leave in float, or None
``overlay``        the picture of a result
=================  ==========================================================================
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..metadata import FAMILIES, ModelMetadata
from ..result import InferenceResult
from .base import ExportError, LoadedModel, PostSettings


class Family(Protocol):
    """The functions every family module defines (see the table above)."""

    NAME: str

    def load(self, *, config: str | Path | None, checkpoint: str | Path | None,
             input_size: tuple[int, int] | None = None, class_names: Sequence[str] | None = None,
             **kwargs: Any) -> LoadedModel: ...

    def evaluate(self, predict: Any, metadata: ModelMetadata, folder: str | Path, *,
                 limit: int | None = None) -> Any: ...

    def postprocess(self, image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata,
                    settings: PostSettings, source: str) -> InferenceResult: ...

    def ignored_scope(self, ov_model: Any) -> Any: ...

    def overlay(self, result: InferenceResult) -> np.ndarray: ...


def get_family(name: str) -> Family | ModuleType:
    """The module of family ``name`` (``classifier``, ``segmentor`` or ``anomaly``)."""
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["ExportError", "Family", "LoadedModel", "PostSettings", "get_family"]
