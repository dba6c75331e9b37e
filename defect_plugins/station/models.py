"""The station's loaded models: one :class:`~defect_plugins.deploy.DefectInferencer` each, behind a lock.

An inferencer owns one OpenVINO infer request and the web server calls in from several threads,
so each model serialises its own calls; different models run side by side. A model's version is
the hash of its files, so records say which weights graded a part.
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

from defect_plugins.deploy.families import get_family
from defect_plugins.deploy.inferencer import DefectInferencer
from defect_plugins.deploy.result import InferenceResult


@dataclass
class StationModel:
    """One loaded IR with what the status line and the records say about it."""

    index: int
    name: str
    path: Path
    inferencer: DefectInferencer
    version: str  # first 12 hex digits of the SHA-256 of model.xml + model.bin: changes with the weights
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100), repr=False)
    inferences: int = 0

    @property
    def family(self) -> str:
        return self.inferencer.metadata.family

    def describe(self) -> dict[str, Any]:
        latencies = list(self.latencies_ms)
        return {"index": self.index, "name": self.name, "family": self.family, "path": str(self.path),
                "version": self.version, "weights": self.inferencer.metadata.precision,
                "precision": self.inferencer.precision, "classes": list(self.inferencer.metadata.class_names),
                "inferences": self.inferences,
                "latency_ms": round(statistics.median(latencies), 2) if latencies else None}

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "version": self.version,
                "weights": self.inferencer.metadata.precision, "precision": self.inferencer.precision}

    def predict(self, image: np.ndarray, source: str) -> tuple[InferenceResult, float]:
        """Run the model (serialised per model); the result and the inferencer's time in ms."""
        with self.lock:
            start = time.perf_counter()
            result = self.inferencer.predict(image, source=source)
            elapsed = (time.perf_counter() - start) * 1000.0
            self.latencies_ms.append(elapsed)
            self.inferences += 1
        return result, elapsed


def file_version(xml: Path) -> str:
    """SHA-256 (first 12 hex digits) of ``model.xml`` and ``model.bin`` together."""
    digest = hashlib.sha256()
    for path in (xml, xml.with_suffix(".bin")):
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def load_models(paths: Sequence[str | Path], *, precision: str, min_area: int) -> list[StationModel]:
    """One :class:`StationModel` per IR, named by file stem (``stem#index`` when two stems clash)."""
    models: list[StationModel] = []
    names: set[str] = set()
    for index, path in enumerate(Path(m) for m in paths):
        inferencer = DefectInferencer(path, precision=precision, min_area=min_area)
        name = path.stem if path.stem not in names else f"{path.stem}#{index}"
        names.add(name)
        models.append(StationModel(index, name, path, inferencer, file_version(path)))
    return models


def rule_classes(models: Sequence[StationModel]) -> dict[str, set[str]]:
    """``{family: class names the rules may name}``, as each family says (:func:`...families.get_family`)."""
    families: dict[str, set[str]] = {}
    for model in models:
        names = get_family(model.family).rule_classes(model.inferencer.metadata)
        families.setdefault(model.family, set()).update(names)
    return families
