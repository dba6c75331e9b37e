"""What the station does, without the web: inspect an image with every model, grade, keep, decide.

:class:`Station` ties together the loaded models (:mod:`.models`), the rule file, the SQLite store,
the watched folder (:mod:`.watch`) and the memory of recent inspections (:mod:`.memory`, what lets
the threshold slider re-threshold a kept anomaly map through the anomaly family without running
the model again); the page's payload is built by :mod:`.payload`. Each ``--model`` is a slot of
:mod:`.versions` (active, previous and shadow models, switched while the station runs); an inspection
runs one snapshot of the slots, the shadow models beside the active ones, deciding with the active only.
An inspection's page gets a token; re-thresholding and deciding need it (:meth:`Station.check_token`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.deploy.bundle import Bundle
from defect_plugins.deploy.families import get_family
from defect_plugins.deploy.grading import ModelGrading, RuleSet, grade_result
from defect_plugins.deploy.result import InferenceResult
from defect_plugins.imaging.paper_segmentation import segment_defects

from .comparison import compare
from .drift_watch import StationDrift
from .errors import StationError
from .imaging import ImageRejected, data_url, decode_upload
from .memory import Inspection, ModelState, ResultCache, States
from .models import StationModel, load_models, rule_classes
from .payload import inspection_payload, model_card
from .store import Store, StoreError, StoreUnavailable, token_hash
from .versions import BundleShelf, ModelSlots, Slot
from .watch import WatchFolder

__all__ = ["Station", "StationError", "StationModel"]


def active_records(text: str | None) -> list[dict[str, Any]]:
    """The entries of a record's ``models`` or ``results`` JSON that decided (the shadow models' left out)."""
    return [entry for entry in json.loads(text or "[]") if entry.get("role", "active") == "active"]


def _same_threshold(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=1e-9)


class Station:
    """The models, the rules, the store, the watched folder and the memory of recent inspections."""

    def __init__(self, models: list[str | Path], rules: RuleSet, store: Store, *, watch: str | Path | None = None,
                 precision: str = "f32", min_area: int = 4, max_pixels: int = 50_000_000,
                 max_file_bytes: int = 20_000_000, cache_mb: float = 256.0, display_side: int = 640,
                 strict_rules: bool = True, workers: int = 1, bundles: str | Path | None = None,
                 drift_config: str | Path | None = None) -> None:
        if not models:
            raise StationError(400, "give at least one --model")
        self.rules = rules
        self.store = store
        self.min_area = int(min_area)
        self.max_pixels = int(max_pixels)
        self.max_file_bytes = int(max_file_bytes)  # uploads and watched files alike
        self.display_side = int(display_side)
        self.watch_folder = WatchFolder(watch) if watch is not None else None
        if int(workers) < 0:
            raise StationError(400, f"--line-workers must be 0 (OpenVINO's choice) or more, got {workers}")
        # one part at a time: each model on one LATENCY stream; several: THROUGHPUT streams, a request per part
        hint = "LATENCY" if int(workers) == 1 else "THROUGHPUT"
        self._load_options = {"precision": precision, "min_area": min_area, "rules": rules,
                              "performance_hint": hint, "requests": int(workers) or None}
        loaded = load_models(models, **self._load_options)
        # parts the line may have in flight at once (0: as many as OpenVINO's optimal request count of any model)
        self.workers = int(workers) or max(m.inferencer.max_requests for m in loaded)
        self.slots = ModelSlots(loaded, load=self._load_candidate, store=store, shelf=BundleShelf(bundles))
        self.rule_notes = rules.check_models(rule_classes(self.models), strict=strict_rules)
        # the line's parts feed it (.line.parts); it follows the slots' active models
        self.drift = StationDrift.from_file(lambda: self.models, drift_config)
        self.cache = ResultCache(int(cache_mb * 1e6))

    @property
    def models(self) -> list[StationModel]:
        """The active model of each slot, now (an inspection uses :meth:`run_models`' own snapshot)."""
        return self.slots.active()

    def _load_candidate(self, path: Path, slot: int) -> StationModel:
        """A bundle or IR loaded for ``slot`` as the station's own models are (precision, rules, requests)."""
        model = load_models([path], **self._load_options)[0]
        model.index = slot
        return model

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
        states = self.run_models(image, source)
        inferred = time.perf_counter()
        token = secrets.token_urlsafe(18)
        record_id = self.store.add_inspection(source=source, image_sha256=hashlib.sha256(data).hexdigest(),
                                              width=image.shape[1], height=image.shape[0], view_token=token,
                                              **self.record_fields(states))
        stored = time.perf_counter()
        inspection = Inspection(record_id, source, image, segment_defects(image), states, token_hash(token))
        self.cache.put(inspection)
        payload = self._payload(inspection)
        payload["token"] = token
        payload["timings_ms"] = {"decode": (decoded - started) * 1000, "models": (inferred - decoded) * 1000,
                                 "inferencer": sum(s.latency_ms for s in states), "store": (stored - inferred) * 1000,
                                 "encode": (time.perf_counter() - stored) * 1000,
                                 "total": (time.perf_counter() - started) * 1000}
        return payload

    def run_models(self, image: np.ndarray, source: str) -> States:
        """Every active model on ``image``, each graded by the rules (a failed model: the most severe grade).

        Every model, the slots' shadows included, is started before the first is collected: their OpenVINO
        requests run side by side while Python post-processes and grades the results in slot order. The
        returned list holds the active models' states (what decides); the shadows' are in ``.shadow``.

        A model switched in while the station runs that fails on this (decoded, so readable) image is rolled
        back (:meth:`.versions.ModelSlots.auto_rollback`) and the image is inspected again with the model
        brought back: a part never gets its verdict from a model that could not judge it when another can.
        """
        for _ in range(len(self.slots.snapshot()) + 1):  # each slot rolls back at most once per switch
            slots = self.slots.snapshot()
            states = self._run(slots, image, source)
            failed = [(slot, state) for slot, state in zip(slots, states) if slot.switched and not state.result.ok]
            if not failed:
                break
            rolled = [self.slots.auto_rollback(slot, state.result.error or "unknown error", source=source)
                      for slot, state in failed]
            if not any(rolled):
                break
        return states

    def _run(self, slots: tuple[Slot, ...], image: np.ndarray, source: str) -> States:
        jobs = [(slot.active, slot.active.start(image, source)) for slot in slots]
        shadows = [(slot.shadow, self._guarded(lambda m=slot.shadow: m.start(image, source)))
                   for slot in slots if slot.shadow is not None]
        return States([self._collect(model, job) for model, job in jobs],
                      [self._collect(model, job, role="shadow", source=source) for model, job in shadows])

    @staticmethod
    def _guarded(call: Any) -> Any:  # noqa: ANN401
        """``call()``, or the exception it raised: a shadow that cannot even start must not stop the live part."""
        try:
            return call()
        except Exception as error:  # noqa: BLE001  (recorded as the shadow's error result)
            return error

    def _collect(self, model: StationModel, job: Any, role: str = "active", source: str = "") -> ModelState:  # noqa: ANN401
        if role == "shadow":  # whatever a shadow raises becomes its error result, never the part's failure
            job = job if isinstance(job, Exception) else self._guarded(lambda: model.collect(job))
            if isinstance(job, Exception):
                result = InferenceResult.failure(source, model.family, f"{type(job).__name__}: {job}")
                return ModelState(model, result, self._grade(result), 0.0, role=role)
            result, latency = job
        else:
            result, latency = model.collect(job)
        threshold = result.image_threshold if result.ok else None  # set by the families that threshold
        return ModelState(model, result, self._grade(result), latency, threshold, threshold, role=role)

    def model_verdict(self, state: ModelState) -> str:
        """One model's own verdict: ERROR when it failed, OK for the least severe grade, else NG."""
        if not state.result.ok:
            return "ERROR"
        return "OK" if state.grading.grade == self.rules.grades[0] else "NG"

    def record_fields(self, states: list[ModelState]) -> dict[str, Any]:
        """What :meth:`.store.Store.add_inspection` keeps of the states: records, grade, class, score, verdict."""
        grade, class_name = self._overall(states)
        scores = [s.result.score for s in states if s.result.ok and s.result.score is not None]
        # OK only when every model answered and the grade is the one a good part gets; a failed model: ERROR
        verdict = "ERROR" if any(not s.result.ok for s in states) else (
            "OK" if grade == self.rules.grades[0] else "NG")
        shadow = getattr(states, "shadow", [])  # recorded, tagged, never part of grade, class, score or verdict
        return {"models": [s.model.record() for s in states] + [{**s.model.record(), "role": "shadow",
                                                                 "slot": s.model.index} for s in shadow],
                "results": [self._record(s) for s in states] + [self._record(s) for s in shadow],
                "grade": grade, "class_name": class_name, "score": max(scores) if scores else None,
                "verdict": verdict}

    def inspect_watch(self, name: str | None = None) -> dict[str, Any]:
        """Inspect ``name`` from the watched folder, or its newest image."""
        folder = self._watched()
        path = folder.file(name) if name else folder.newest()
        return self.inspect(folder.read(path, self.max_file_bytes), path.name, origin="watch")

    def _grade(self, result: InferenceResult) -> ModelGrading:
        """The rules' grade (as the inferencer's own, :func:`~defect_plugins.deploy.grading.grade_result`).

        A model that failed on the image gives the most severe grade (nothing passes unseen).
        """
        if result.ok:
            return grade_result(self.rules, result)
        return ModelGrading(self.rules.grades[-1], [f"the model failed ({result.error}): the most severe grade "
                                                    f"until an operator decides"], "error", {})

    def _overall(self, states: list[ModelState]) -> tuple[str, str]:
        grades = [s.grading.grade for s in states]
        answered = [s for s in states if s.result.ok]
        if not answered:
            return self.rules.worst(grades), "error"
        # the class a person would name first: the family's priority, then the order of --model
        first = min(answered, key=lambda s: (get_family(s.model.family).CLASS_PRIORITY, s.model.index))
        return self.rules.worst(grades), first.grading.class_name

    def _record(self, state: ModelState) -> dict[str, Any]:
        """What the database keeps of one model's result (scores, totals, grade; no arrays).

        ``slot`` and the model's own ``model_verdict`` let the comparison report set a shadow against the
        active model of its slot; a shadow's record says ``"role": "shadow"`` (readers that decide skip it).
        """
        result = state.result
        tags = {"slot": state.model.index, "model_verdict": self.model_verdict(state)}
        if state.role != "active":
            tags["role"] = state.role
        if not result.ok:
            return {"model": state.model.name, "status": "error", "error": result.error,
                    "grade": state.grading.grade, "reasons": state.grading.reasons, **tags}
        return {"model": state.model.name, **tags, "status": "ok", "decision": result.decision, "class": result.label,
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
            if not hasattr(get_family(state.model.family), "rethreshold") or not state.result.ok:
                raise StationError(400, f"model {state.model.name} has no anomaly map to threshold")
            state.result = self._thresholded(state.model, state.result, threshold)
            state.grading = grade_result(self.rules, state.result)
            state.threshold = threshold
            grade, _ = self._overall(inspection.states)
            return {"inspection_id": inspection.id, "grade": grade,
                    "model": self._model_payload(state)}

    @staticmethod
    def _thresholded(model: StationModel, result: InferenceResult, threshold: float) -> InferenceResult:
        """The family's own thresholding at another threshold, on the kept map (no inference)."""
        return get_family(model.family).rethreshold(result, threshold, threshold, model.inferencer.settings)

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
            thresholds = {r["model"]: r.get("threshold") for r in active_records(row["results"])}
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
        except StoreUnavailable as error:  # the database server is away (a restart): not the request's fault
            raise StationError(503, str(error)) from error
        except StoreError as error:
            raise StationError(404 if "does not exist" in str(error) else 400, str(error)) from error

    # ------------------------------------------------------------------ watched folder

    @property
    def watch(self) -> Path | None:
        return self.watch_folder.folder if self.watch_folder else None

    def _watched(self) -> WatchFolder:
        if self.watch_folder is None:
            raise StationError(400, "no watched folder: start the station with --watch DIR")
        return self.watch_folder

    def watch_files(self) -> list[Path]:
        """The watched folder's images, newest first."""
        return self._watched().files()

    # ------------------------------------------------------------------ payloads

    def _kept(self, inspection_id: int) -> Inspection:
        inspection = self.cache.get(inspection_id)
        if inspection is None:
            raise StationError(404, f"inspection {inspection_id} is no longer in the station's memory "
                                    f"(it keeps the last ones only): inspect the image again")
        return inspection

    def remember(self, inspection_id: int, source: str, image: np.ndarray, states: list[ModelState], *,
                 token: str, part_id: str | None = None) -> None:
        """Keep a line part's inspection for the pages (its paper views are made when a page asks)."""
        self.cache.put(Inspection(inspection_id, source, image, None, states, token_hash(token), token=token,
                                  part_id=part_id))

    def payload(self, inspection_id: int) -> dict[str, Any]:
        """The page's payload of a kept inspection (a line part's included), with its view token."""
        inspection = self._kept(inspection_id)
        payload = self._payload(inspection)
        if inspection.token is not None:
            payload["token"] = inspection.token
        return payload

    def part_view(self, inspection_id: int) -> dict[str, Any]:
        """What the operator's line page shows of one inspection: verdict, identity, the defects outlined.

        From the record (so any inspection can be shown) and, while it is kept in memory, the overlay of the
        model with the most severe grade and, for a line part, its view token (what deciding needs).
        """
        row = self.store.inspection(inspection_id)
        if row is None:
            raise StationError(404, f"inspection {inspection_id} does not exist")
        results = active_records(row["results"])
        errors = [f"{r['model']}: {r['error']}" for r in results if r.get("status") == "error"]
        view = {key: row[key] for key in ("inspection_id", "created_at", "part_id", "lot", "verdict", "grade",
                                          "source", "decision", "operator") if key in row}
        view.update(inspection_id=row["id"], grade=row["current_grade"], system_grade=row["grade"],
                    error="; ".join(errors) or None, image_url=None, image_caption="", token=None,
                    **{"class": row["class_name"]})
        kept = self.cache.get(row["id"])
        if kept is not None:
            with kept.lock:
                answered = [s for s in kept.states if s.result.ok]
                if answered:
                    worst = max(answered, key=lambda s: self.rules.severity(s.grading.grade))
                    view["image_url"] = data_url(worst.result.overlay(), self.display_side)
                    view["image_caption"] = f"{worst.model.name}: {worst.grading.grade}"
                else:
                    view["image_url"] = data_url(kept.image, self.display_side)
                    view["image_caption"] = "no model answered"
            view["token"] = kept.token
        return view

    def _payload(self, inspection: Inspection) -> dict[str, Any]:
        with inspection.lock:
            if inspection.views is None:
                inspection.views = segment_defects(inspection.image)
            grade, class_name = self._overall(inspection.states)
            return inspection_payload(inspection, grade=grade, class_name=class_name, grades=list(self.rules.grades),
                                      min_area=self.min_area, display_side=self.display_side)

    def _model_payload(self, state: ModelState) -> dict[str, Any]:
        return model_card(state, self.display_side)

    # ------------------------------------------------------------------ versions

    def bundle_of(self, name: str, version: str) -> Bundle | None:
        """The bundle of the model ``name`` at ``version``: a model the slots hold, else one of ``--bundles``."""
        for slot in self.slots.snapshot():
            for model in (slot.active, slot.previous, slot.shadow):
                if model is not None and model.version == version:
                    return model.bundle
        found, _ = self.slots.shelf.entries()
        return next((c.bundle for c in found if c.version == version), None)

    def comparison(self, slot: Any, shadow: str | None = None) -> dict[str, Any]:  # noqa: ANN401
        """The shadow report of ``slot`` (:func:`.comparison.compare`) with the slot as it is now."""
        current = self.slots.slot(slot)
        report = compare(self.store, current.index, good_grade=self.rules.grades[0], bundle_of=self.bundle_of,
                         shadow=shadow or (current.shadow.name if current.shadow else None))
        report["current"] = current.describe()
        return report

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """What ``/api/status`` says: the active models, the shadows, rules, limits and model notices."""
        slots = self.slots.snapshot()
        return {"models": [slot.active.describe() for slot in slots],
                "shadows": [{"slot": slot.index, **slot.shadow.describe()} for slot in slots if slot.shadow],
                "model_notices": list(self.slots.notices), "rules": self.rules.describe(),
                "rule_notes": self.rule_notes, "watch": str(self.watch) if self.watch else None,
                "database": str(self.store.path), "max_pixels": self.max_pixels, "kept": len(self.cache),
                "drift": self.drift.state()}
