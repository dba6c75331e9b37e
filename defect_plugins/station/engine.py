"""What the station does, without the web: inspect an image with every model, grade, keep, decide.

:class:`Station` holds the loaded models (one :class:`defect_plugins.deploy.DefectInferencer` each,
behind a lock: an inferencer owns one OpenVINO infer request, and the web server calls in from
several threads), the rule file, the SQLite store and the last inspections' results in memory.

The memory (:class:`ResultCache`) is what lets the threshold slider re-threshold an anomaly map
without running the model again: the map of each recent inspection stays here at the image's
resolution, and :meth:`Station.rethreshold` only thresholds it, measures the regions and grades
again. It is bounded in bytes (the newest inspection always stays).

The page follows the grade-evaluation system of the RKD-SARSN paper (Huang et al., Algorithms
16(11):516, 2023, section 3.2, Fig. 20): the image, the preprocessing views (bilateral filter,
contrast stretch, Otsu with red boxes), the class, the geometry table and the grade. The views
depend on the image only, so they are computed once per inspection (not once per model).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import statistics
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.deploy.families import anomaly as anomaly_family
from defect_plugins.deploy.inferencer import DefectInferencer
from defect_plugins.deploy.paper_segmentation import PaperViews, segment_defects
from defect_plugins.deploy.quantify import draw_regions, quantify_mask
from defect_plugins.deploy.result import InferenceResult
from defect_plugins.deploy.runtime import IMAGE_SUFFIXES

from .grading import ModelGrading, grade_result
from .imaging import ImageRejected, data_url, decode_upload
from .rules import RuleSet
from .store import Store, StoreError, token_hash

TABLE_ROWS = 20  # regions listed in the page's geometry table (largest first); the totals cover all


def _same_threshold(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=1e-9)


class StationError(Exception):
    """A request the station refuses; ``status`` is the HTTP status the page gets with the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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


@dataclass
class ModelState:
    """One model's result for one inspection, as the page shows it now (after any threshold change)."""

    model: StationModel
    result: InferenceResult
    grading: ModelGrading
    latency_ms: float
    threshold: float | None = None  # anomaly: the image and pixel threshold in force
    threshold_default: float | None = None  # anomaly: the model's own (what the slider started from)


@dataclass
class Inspection:
    """An inspection kept in memory: the image, the views and each model's state."""

    id: int
    source: str
    image: np.ndarray
    views: PaperViews
    states: list[ModelState]
    token_sha256: str  # the hash of the token only its page got (see Station.check_token)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def nbytes(self) -> int:
        arrays = [self.image, self.views.grey, self.views.bilateral, self.views.stretched, self.views.mask]
        for state in self.states:
            arrays += [a for a in (state.result.anomaly_map, state.result.class_map, state.result.region_map,
                                   state.result.defect_mask) if a is not None]
        return int(sum(a.nbytes for a in arrays))


class ResultCache:
    """The last inspections, at most ``max_bytes`` together (the newest one is always kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, Inspection] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, inspection: Inspection) -> None:
        with self._lock:
            self._items[inspection.id] = inspection
            total = sum(item.nbytes for item in self._items.values())
            while len(self._items) > 1 and total > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                total -= dropped.nbytes

    def get(self, inspection_id: int) -> Inspection | None:
        with self._lock:
            return self._items.get(inspection_id)

    def __len__(self) -> int:
        return len(self._items)


def file_version(xml: Path) -> str:
    """SHA-256 (first 12 hex digits) of ``model.xml`` and ``model.bin`` together."""
    digest = hashlib.sha256()
    for path in (xml, xml.with_suffix(".bin")):
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


class Station:
    """The models, the rules, the store, the watched folder and the memory of recent inspections."""

    def __init__(self, models: list[str | Path], rules: RuleSet, store: Store, *, watch: str | Path | None = None,
                 precision: str = "f32", min_area: int = 4, max_pixels: int = 50_000_000,
                 max_file_bytes: int = 20_000_000, cache_mb: float = 256.0, display_side: int = 640,
                 strict_rules: bool = True) -> None:
        if not models:
            raise StationError(400, "give at least one --model")
        self.rules = rules
        self.store = store
        self.min_area = int(min_area)
        self.max_pixels = int(max_pixels)
        self.max_file_bytes = int(max_file_bytes)  # uploads and watched files alike
        self.display_side = int(display_side)
        self.watch = Path(watch).resolve() if watch is not None else None
        if self.watch is not None and not self.watch.is_dir():
            raise StationError(400, f"--watch {watch}: not a folder")
        self.models = []
        names: dict[str, int] = {}
        for index, path in enumerate(Path(m) for m in models):
            inferencer = DefectInferencer(path, precision=precision, min_area=min_area)
            name = path.stem if path.stem not in names else f"{path.stem}#{index}"
            names[name] = index
            self.models.append(StationModel(index, name, path, inferencer, file_version(path)))
        families: dict[str, set[str]] = {}
        for model in self.models:
            classes = set(model.inferencer.metadata.class_names)
            if model.family == "segmentor":
                classes -= {model.inferencer.metadata.class_names[0]}  # background
            families.setdefault(model.family, set()).update(classes if model.family != "anomaly" else set())
        self.rule_notes = rules.check_models(families, strict=strict_rules)
        self.cache = ResultCache(int(cache_mb * 1e6))

    # ------------------------------------------------------------------ inspecting

    def inspect(self, data: bytes, name: str, *, origin: str = "upload") -> dict[str, Any]:
        """Check, decode, run every model, grade, store; the page's payload."""
        started = time.perf_counter()
        try:
            image = decode_upload(data, name, max_pixels=self.max_pixels)
        except ImageRejected as error:
            raise StationError(400, str(error)) from error
        source = f"{origin}:{name}"
        decoded = time.perf_counter()
        views = segment_defects(image)
        states = []
        for model in self.models:
            result, latency = model.predict(image, source)
            grading = self._grade(result)
            threshold = result.image_threshold if result.ok and model.family == "anomaly" else None
            states.append(ModelState(model, result, grading, latency, threshold, threshold))
        inferred = time.perf_counter()
        grade, class_name = self._overall(states)
        scores = [s.result.score for s in states if s.result.ok and s.result.score is not None]
        token = secrets.token_urlsafe(18)
        record_id = self.store.add_inspection(
            source=source, image_sha256=hashlib.sha256(data).hexdigest(), width=image.shape[1],
            height=image.shape[0], models=[s.model.record() for s in states],
            results=[self._record(s) for s in states], grade=grade, class_name=class_name,
            score=max(scores) if scores else None, view_token=token)
        stored = time.perf_counter()
        inspection = Inspection(record_id, source, image, views, states, token_hash(token))
        self.cache.put(inspection)
        payload = self._payload(inspection)
        payload["token"] = token
        payload["timings_ms"] = {"decode": (decoded - started) * 1000, "models": (inferred - decoded) * 1000,
                                 "inferencer": sum(s.latency_ms for s in states), "store": (stored - inferred) * 1000,
                                 "encode": (time.perf_counter() - stored) * 1000,
                                 "total": (time.perf_counter() - started) * 1000}
        return payload

    def inspect_watch(self, name: str | None = None) -> dict[str, Any]:
        """Inspect ``name`` from the watched folder, or its newest image."""
        path = self.watch_file(name) if name else self.newest_watch_file()
        try:
            with path.open("rb") as handle:  # never more than the limit in memory, whatever the file's size
                data = handle.read(self.max_file_bytes + 1)
        except OSError as error:
            raise StationError(400, f"watch:{path.name}: cannot be read ({error.strerror or error})") from error
        if len(data) > self.max_file_bytes:
            size = max(len(data), path.stat().st_size if path.exists() else 0)
            raise StationError(413, f"watch:{path.name}: {size / 1e6:.1f} MB is above the station's limit of "
                                    f"{self.max_file_bytes / 1e6:g} MB (--max-upload-mb)")
        return self.inspect(data, path.name, origin="watch")

    def _grade(self, result: InferenceResult) -> ModelGrading:
        """The rules' grade; a model that failed on the image gives the most severe grade (nothing passes unseen)."""
        if result.ok:
            return grade_result(self.rules, result)
        return ModelGrading(self.rules.grades[-1], [f"the model failed ({result.error}): the most severe grade "
                                                    f"until an operator decides"], "error", {})

    def _overall(self, states: list[ModelState]) -> tuple[str, str]:
        grades = [s.grading.grade for s in states]
        for family in ("classifier", "segmentor", "anomaly"):  # the class a person would name first
            named = [s.grading.class_name for s in states if s.result.ok and s.model.family == family]
            if named:
                return self.rules.worst(grades), named[0]
        return self.rules.worst(grades), "error"

    @staticmethod
    def _record(state: ModelState) -> dict[str, Any]:
        """What the database keeps of one model's result (scores, totals, grade; no arrays)."""
        result = state.result
        if not result.ok:
            return {"model": state.model.name, "status": "error", "error": result.error,
                    "grade": state.grading.grade, "reasons": state.grading.reasons}
        return {"model": state.model.name, "status": "ok", "decision": result.decision, "class": result.label,
                "confidence": result.confidence, "score": result.score, "threshold": state.threshold,
                "num_regions": len(result.regions), "totals": result.totals(),
                "grade": state.grading.grade, "reasons": state.grading.reasons,
                "class_grades": state.grading.class_grades, "latency_ms": round(state.latency_ms, 3)}

    # ------------------------------------------------------------------ threshold slider

    def rethreshold(self, inspection_id: int, model_index: int, threshold: float, *, token: str) -> dict[str, Any]:
        """Threshold the kept anomaly map of an inspection again; the model's new card and the new grade.

        Only the client holding the inspection's ``token`` may: the thresholds in force belong to the
        client that was shown the inspection, and end up in that client's decision only.
        """
        inspection = self._kept(inspection_id)
        self.check_token(inspection_id, inspection.token_sha256, token)
        if not 0 <= model_index < len(inspection.states):
            raise StationError(400, f"model {model_index} does not exist (0 to {len(inspection.states) - 1})")
        if not 0.0 <= threshold <= 1.0:
            raise StationError(400, f"threshold must be within 0 and 1 (normalised scores), got {threshold}")
        with inspection.lock:
            state = inspection.states[model_index]
            if state.model.family != "anomaly" or not state.result.ok:
                raise StationError(400, f"model {state.model.name} has no anomaly map to threshold")
            state.result = self._thresholded(state.model, state.result, threshold)
            state.grading = grade_result(self.rules, state.result)
            state.threshold = threshold
            grade, _ = self._overall(inspection.states)
            return {"inspection_id": inspection.id, "grade": grade,
                    "model": self._model_payload(state)}

    @staticmethod
    def _thresholded(model: StationModel, result: InferenceResult, threshold: float) -> InferenceResult:
        """The anomaly family's own thresholding at another threshold, on the kept map (no inference)."""
        return anomaly_family.rethreshold(result, threshold, threshold, model.inferencer.settings)

    # ------------------------------------------------------------------ operator decision

    @staticmethod
    def check_token(inspection_id: int, expected_sha256: str | None, token: str) -> None:
        """403 unless ``token`` is the one the inspection's page received (compared in constant time)."""
        if not expected_sha256 or not token or not hmac.compare_digest(token_hash(token), expected_sha256):
            raise StationError(403, f"inspection {inspection_id} was not shown to this client (its view token is "
                                    f"missing or does not match): decide on the page that shows it")

    def decide(self, inspection_id: int, decision: str, *, operator: str, token: str, grade: str | None = None,
               comment: str = "", shown_thresholds: dict[str, float | None] | None = None) -> dict:
        """Append accept / reject / regrade (with ``grade``) by ``operator``, with the thresholds in force.

        ``token`` proves the client was shown the inspection (:meth:`check_token`). ``shown_thresholds``
        (model name -> threshold the page shows) must match the station's, or the decision is refused
        with 409: a record never carries thresholds its operator did not see.
        """
        if decision == "regrade":
            if grade not in self.rules.grades:
                raise StationError(400, f"regrade needs a grade among {list(self.rules.grades)}, got {grade!r}")
        elif grade not in (None, ""):
            raise StationError(400, f"only a regrade takes a grade (decision {decision!r})")
        inspection = self.cache.get(inspection_id)
        if inspection is not None:
            self.check_token(inspection_id, inspection.token_sha256, token)
            with inspection.lock:
                system_grade, _ = self._overall(inspection.states)
                thresholds = {s.model.name: s.threshold for s in inspection.states}
        else:  # fallen out of memory: what was stored when it was inspected
            row = self.store.inspection(inspection_id)
            if row is None:
                raise StationError(404, f"inspection {inspection_id} does not exist")
            self.check_token(inspection_id, row["view_token_sha256"], token)
            system_grade = row["grade"]
            thresholds = {r["model"]: r.get("threshold") for r in json.loads(row["results"])}
        if shown_thresholds is not None:
            differ = sorted(name for name in set(shown_thresholds) | set(thresholds)
                            if not _same_threshold(shown_thresholds.get(name), thresholds.get(name)))
            if differ:
                raise StationError(409, f"the thresholds shown for {differ} are not the station's for inspection "
                                        f"{inspection_id} (station: {thresholds}); inspect the image again")
        try:
            return self.store.add_decision(inspection_id, decision=decision, operator=operator,
                                           system_grade=system_grade,
                                           final_grade=grade if decision == "regrade" else system_grade,
                                           thresholds=thresholds, comment=comment)
        except StoreError as error:
            raise StationError(404 if "does not exist" in str(error) else 400, str(error)) from error

    # ------------------------------------------------------------------ watched folder

    def _watch_dir(self) -> Path:
        if self.watch is None:
            raise StationError(400, "no watched folder: start the station with --watch DIR")
        return self.watch

    def watch_files(self) -> list[Path]:
        """Image files directly inside the watched folder, newest first (hidden files skipped: cameras write them)."""
        folder = self._watch_dir()
        files = []
        for path in folder.iterdir():
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                if path.is_file() and path.resolve().parent == folder:
                    files.append((path.stat().st_mtime, path.name, path))
            except OSError:
                continue  # removed while listing
        return [path for _, _, path in sorted(files, reverse=True)]

    def newest_watch_file(self) -> Path:
        files = self.watch_files()
        if not files:
            raise StationError(404, f"no image ({', '.join(IMAGE_SUFFIXES)}) in the watched folder {self.watch}")
        return files[0]

    def watch_file(self, name: str) -> Path:
        """``name`` inside the watched folder; anything that would leave it is refused."""
        folder = self._watch_dir()
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise StationError(400, f"{name!r}: give a file name inside the watched folder, not a path")
        path = (folder / name).resolve()
        if path.parent != folder:  # a symbolic link pointing out of the folder
            raise StationError(400, f"{name!r}: not inside the watched folder")
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise StationError(404, f"{name!r}: no such image in the watched folder")
        return path

    # ------------------------------------------------------------------ payloads

    def _kept(self, inspection_id: int) -> Inspection:
        inspection = self.cache.get(inspection_id)
        if inspection is None:
            raise StationError(404, f"inspection {inspection_id} is no longer in the station's memory "
                                    f"(it keeps the last ones only): inspect the image again")
        return inspection

    def _payload(self, inspection: Inspection) -> dict[str, Any]:
        views, image = inspection.views, inspection.image
        otsu = draw_regions(np.repeat(views.mask[:, :, None] * 255, 3, axis=2),
                            quantify_mask(views.mask, min_area=self.min_area), labels=False)
        with inspection.lock:
            grade, class_name = self._overall(inspection.states)
            models = [self._model_payload(state) for state in inspection.states]
        return {"inspection_id": inspection.id, "source": inspection.source, "grade": grade, "class": class_name,
                "grades": list(self.rules.grades),
                "image": {"width": image.shape[1], "height": image.shape[0]},
                "views": {"original": data_url(image, self.display_side),
                          "bilateral": data_url(views.bilateral, self.display_side),
                          "stretched": data_url(views.stretched, self.display_side),
                          "otsu": data_url(otsu, self.display_side, lossless=True),
                          "otsu_threshold": views.threshold,
                          "defect_polarity": "bright" if views.defect_is_bright else "dark"},
                "models": models}

    def _model_payload(self, state: ModelState) -> dict[str, Any]:
        result, model = state.result, state.model
        card: dict[str, Any] = {"index": model.index, "name": model.name, "family": model.family,
                                "status": result.status, "latency_ms": round(state.latency_ms, 2)}
        if not result.ok:
            card.update({"error": result.error, "grade": state.grading.grade, "reasons": state.grading.reasons})
            return card
        top = sorted(result.probabilities.items(), key=lambda item: -item[1])[:3]
        card.update({
            "overlay": data_url(result.overlay(), self.display_side), "decision": result.decision,
            "class": state.grading.class_name, "confidence": result.confidence, "top": top,
            "score": result.score, "threshold": state.threshold, "threshold_default": state.threshold_default,
            "regions": [{key: row[key] for key in ("class", "area", "perimeter", "area_ratio", "k", "centroid")}
                        for row in result.regions[:TABLE_ROWS]],
            "num_regions": len(result.regions), "totals": result.totals(),
            "k_rule": state.grading.measures.get("k"), "grade": state.grading.grade,
            "reasons": state.grading.reasons, "class_grades": state.grading.class_grades})
        return card

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {"models": [model.describe() for model in self.models], "rules": self.rules.describe(),
                "rule_notes": self.rule_notes, "watch": str(self.watch) if self.watch else None,
                "database": str(self.store.path), "max_pixels": self.max_pixels, "kept": len(self.cache)}
