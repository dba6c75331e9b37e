"""The station's loaded models: one :class:`~defect_plugins.deploy.DefectInferencer` each.

An inferencer keeps a pool of OpenVINO infer requests (``requests`` of them: one per part the station
has in flight), so the web server's threads and the line's workers call it without a lock of their own;
a caller beyond the pool waits for a free request. A model's version is
the hash of its files, so records say which weights graded a part.

A model may be a bundle of ``defect-fit`` (:mod:`defect_plugins.deploy.bundle`): it is named after
the bundle, judged with the bundle's calibrated threshold(s), and its status line and records say
which bundle (name, creation date) it is. Which rule file grades is the station's choice
(:func:`station_rules`): one rule file grades every model of a station.
"""
from __future__ import annotations

import hashlib
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.deploy.bundle import Bundle, is_bundle, load_bundle
from defect_plugins.deploy.families import get_family
from defect_plugins.deploy.grading.rules import RuleSet
from defect_plugins.deploy.inferencer import DefectInferencer, InferenceJob
from defect_plugins.deploy.result import InferenceResult


@dataclass
class StationModel:
    """One loaded IR with what the status line and the records say about it."""

    index: int
    name: str
    path: Path
    inferencer: DefectInferencer
    version: str  # first 12 hex digits of the SHA-256 of model.xml + model.bin: changes with the weights
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # the counters only
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100), repr=False)
    inferences: int = 0

    @property
    def family(self) -> str:
        return self.inferencer.metadata.family

    @property
    def bundle(self) -> Bundle | None:
        """The bundle this model came from (``None`` for a bare IR)."""
        return self.inferencer.bundle

    def bundle_info(self) -> dict[str, Any] | None:
        """What the page and the records say of the bundle: name, creation date, its calibrated thresholds."""
        bundle = self.bundle
        if bundle is None:
            return None
        return {"name": bundle.name, "created": bundle.created, "package_version": bundle.package_version,
                "thresholds": bundle.thresholds_for(self.inferencer.metadata.precision)}

    def describe(self) -> dict[str, Any]:
        latencies = list(self.latencies_ms)
        return {"index": self.index, "name": self.name, "family": self.family, "path": str(self.path),
                "version": self.version, "weights": self.inferencer.metadata.precision,
                "precision": self.inferencer.precision, "classes": list(self.inferencer.metadata.class_names),
                "bundle": self.bundle_info(), "inferences": self.inferences,
                "latency_ms": round(statistics.median(latencies), 2) if latencies else None}

    def record(self) -> dict[str, Any]:
        record = {"name": self.name, "family": self.family, "version": self.version,
                  "weights": self.inferencer.metadata.precision, "precision": self.inferencer.precision}
        if self.bundle is not None:
            record["bundle"] = {"name": self.bundle.name, "created": self.bundle.created}
        return record

    def start(self, image: np.ndarray, source: str) -> InferenceJob:
        """Start the model on ``image`` (one of its infer requests); collect with :meth:`collect`."""
        return self.inferencer.start(image, source=source)

    def collect(self, job: InferenceJob) -> tuple[InferenceResult, float]:
        """The started job's result and its time in ms from start to result (which includes waiting for the
        other models a station started beside it)."""
        result = job.result()
        elapsed = (time.perf_counter() - job.started) * 1000.0
        with self.lock:
            self.latencies_ms.append(elapsed)
            self.inferences += 1
        return result, elapsed

    def predict(self, image: np.ndarray, source: str) -> tuple[InferenceResult, float]:
        """Run the model; the result and the inferencer's time in ms."""
        return self.collect(self.start(image, source))


def file_version(xml: Path) -> str:
    """SHA-256 (first 12 hex digits) of ``model.xml`` and ``model.bin`` together."""
    digest = hashlib.sha256()
    for path in (xml, xml.with_suffix(".bin")):
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def load_models(paths: Sequence[str | Path], *, precision: str, min_area: int, rules: RuleSet | None = None,
                performance_hint: str = "LATENCY", requests: int | None = 1) -> list[StationModel]:
    """One :class:`StationModel` per IR or bundle, named by file stem or bundle name (``name#index`` when two clash).

    ``rules`` (the station's rule file) grades every model; ``None`` leaves each model its own
    (a bundle's, else the packaged default). A bundle loads its default weights. ``performance_hint`` and
    ``requests`` (infer requests per model; ``None``: OpenVINO's optimal count) follow the number of parts the
    station inspects at once.
    """
    models: list[StationModel] = []
    names: set[str] = set()
    for index, path in enumerate(Path(m) for m in paths):
        inferencer = DefectInferencer(path, precision=precision, min_area=min_area, rules=rules,
                                      performance_hint=performance_hint, max_requests=requests)
        stem = inferencer.bundle.name if inferencer.bundle is not None else path.stem
        name = stem if stem not in names else f"{stem}#{index}"
        names.add(name)
        models.append(StationModel(index, name, path, inferencer, file_version(inferencer.path)))
    return models


def station_rules(explicit: str | Path | None, models: Sequence[str | Path]) -> tuple[Path | None, str]:
    """The rule file a station grades with, and why: ``--rules``, else the first bundle's, else the packaged default.

    Returns ``(path, origin)``; ``path`` is ``None`` for the packaged default. Bundles are only
    read here (their manifest, not their weights): the models are loaded afterwards.
    """
    if explicit is not None:
        return Path(explicit), "--rules"
    for model in models:
        if is_bundle(model):
            bundle = load_bundle(model, verify=False)  # the full check comes when the model is loaded
            if bundle.rules_path is not None:
                return bundle.rules_path, f"the rules of bundle {bundle.name}, the first bundle given that has rules"
    return None, "the packaged default (no --rules, no bundle with rules)"


def rule_classes(models: Sequence[StationModel]) -> dict[str, set[str]]:
    """``{family: class names the rules may name}``, as each family says (:func:`...families.get_family`)."""
    families: dict[str, set[str]] = {}
    for model in models:
        names = get_family(model.family).rule_classes(model.inferencer.metadata)
        families.setdefault(model.family, set()).update(names)
    return families
