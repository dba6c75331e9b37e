"""Everything one model family does at run time, behind one small interface.

Each of :mod:`.classifier` (mmpretrain), :mod:`.segmentor` (mmsegmentation) and :mod:`.anomaly`
(anomalib) is a module with the same names (:class:`Family`); inference, the station and the
benchmark ask :func:`get_family` instead of branching on the family name. Runtime only (numpy,
OpenCV, OpenVINO): nothing here imports torch, a toolkit or the export side. What export needs of a
family (loading the torch model, converting it, the INT8 ignored scope, the metric) is its export
half, :mod:`defect_plugins.deploy.export.families` (``get_export_family``).

=====================  ======================================================================
``postprocess``        raw outputs of one image -> :class:`..result.InferenceResult`, graded
                       with ``PostSettings.rules`` (:func:`..grading.graded`)
``overlay``            the picture of a result
``row_fields``         the family's own keys of a result's JSON row (``InferenceResult.to_dict``)
``OPTIONAL_REGIONS``   whether ``PostSettings.quantify=False`` changes anything (classifier: the
                       paper's regions are optional, so the benchmark times both)
``CLASS_PRIORITY``     which family's class names a part first when several models answer
                       (the station's class: classifier, then segmentor, then anomaly)
``rule_classes``       the class names a grading rule file may name for a model of this family
``rule_measures``      ``(result, rules) -> [(class name or None, measures), ...]``: which rule
                       list (a class's, or ``default`` for None) is asked about which measures
                       (:func:`..grading.grade_result` grades each and keeps the worst)
``RULE_MEASURES``      the measure names ``rule_measures`` gives (a rule file may use no other)
``RULES_PER_CLASS``    whether a rule file may give this family per-class lists (``classes``)
=====================  ======================================================================

The anomaly family also adopts ``anomalib export`` IRs at load time (``adopt_anomalib_ir``) and
re-thresholds a kept result (``rethreshold``, the station's slider).
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from ..grading.rules import RuleSet
from ..metadata import FAMILIES, ModelMetadata
from ..result import InferenceResult
from .base import PostSettings


class Family(Protocol):
    """The names every runtime family module defines (see the table above)."""

    NAME: str
    OPTIONAL_REGIONS: bool
    CLASS_PRIORITY: int
    RULE_MEASURES: frozenset[str]
    RULES_PER_CLASS: bool

    def postprocess(self, image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata,
                    settings: PostSettings, source: str) -> InferenceResult: ...

    def overlay(self, result: InferenceResult) -> np.ndarray: ...

    def row_fields(self, result: InferenceResult) -> dict[str, Any]: ...

    def rule_classes(self, metadata: ModelMetadata) -> list[str]: ...

    def rule_measures(self, result: InferenceResult, rules: RuleSet) -> list[tuple[str | None, dict[str, float]]]: ...


def get_family(name: str) -> Family | ModuleType:
    """The runtime module of family ``name`` (``classifier``, ``segmentor`` or ``anomaly``)."""
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["Family", "PostSettings", "get_family"]
