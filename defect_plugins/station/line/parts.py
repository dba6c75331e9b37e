"""A part on the line: a trigger (part id, lot, image file) in, one recorded verdict out to every link.

Every line input (the OPC UA ``Inspect`` method, an MQTT request, the folder watcher) calls
:meth:`PartInspector.inspect_part`. What it guarantees:

* **Recorded first, published after.** The verdict and the messages it owes the line are written in
  one transaction (:meth:`.store.Store.add_inspection` with ``messages``, the "transactional outbox"
  pattern); the MQTT publisher only sends what is in the outbox (:mod:`.mqtt`), so a verdict is never
  published without its record, nor recorded without its message.
* **Never silence, never a false OK.** A missing, unreadable or undecodable image, a path outside the
  line's image folders, or a model that fails gives the verdict ``ERROR``, recorded and published like
  any other. When the record itself cannot be written (database locked past its timeout, disk full)
  the caller and the OPC UA variables get ``ERROR`` with the reason, nothing is queued, and the page's
  status says why (:attr:`PartInspector.last_store_error`): a PLC never sees OK for a part that has
  no record.
* **The part's identity travels with the record** (``part_id``, ``lot`` columns, and every message).
* **One trigger, one record.** A trigger the line may deliver again (an MQTT request recorded but not yet
  acknowledged when the station died is redelivered by the broker after the restart) carries a
  ``request_key``; it is the record's write key, so the repeat writes nothing and is answered with the
  verdict recorded the first time. Without a key (a request without ``request_id``, the folder watcher)
  every trigger is a new inspection: a PLC that wants exactly-once records must send a request id.

Verdicts: ``OK`` when every model answered and the station's grade is the rule file's least severe
one (the grade a good part gets), ``NG`` for any other grade, ``ERROR`` as above.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from defect_plugins.imaging.decode import ImageRejected

from ..audit import append
from ..errors import StationError
from ..imaging import decode_upload
from ..store import MAX_PART_ID, StoreError, check_text, now

log = logging.getLogger("defect_plugins.station.line")

VERDICTS = ("OK", "NG", "ERROR")
Listener = Callable[[dict[str, Any]], None]


class PartError(ValueError):
    """A trigger the station cannot take at all (no part id, a part id that is not text): nothing is recorded."""


def check_part(part_id: Any, lot: Any) -> tuple[str, str | None]:  # noqa: ANN401
    """The part id (required, non-empty text) and the lot (optional text), each at most 200 characters."""
    if not isinstance(part_id, str) or not part_id.strip():
        raise PartError(f"part_id must be non-empty text, got {part_id!r}")
    if lot is not None and not isinstance(lot, str):
        raise PartError(f"lot must be text, got {lot!r}")
    try:
        part_id = check_text(part_id.strip(), "part_id", limit=MAX_PART_ID)
        lot = check_text(lot.strip(), "lot", limit=MAX_PART_ID) if lot else None
    except StoreError as error:
        raise PartError(str(error)) from None
    return part_id, lot or None


class ImageRoots:
    """The folders a trigger's ``image_path`` may point into (the cameras' folders); nothing outside them is read.

    A PLC or an MQTT client names a file; without this fence any client of the line's network could make the
    station open any file of the PC. Relative paths are taken from the first folder; symbolic links are
    resolved before the check.
    """

    def __init__(self, folders: Sequence[str | Path]) -> None:
        self.folders = [Path(folder).resolve() for folder in folders]
        for given, folder in zip(folders, self.folders):
            if not folder.is_dir():
                raise StationError(400, f"image folder {given}: not a folder")

    def resolve(self, image_path: str) -> Path:
        if not isinstance(image_path, str) or not image_path.strip() or "\x00" in image_path:
            raise ValueError(f"image_path must be a file name or path, got {image_path!r}")
        if not self.folders:
            raise ValueError("this station takes no image paths from the line: start it with --image-root DIR "
                             "(or --watch DIR)")
        path = Path(image_path.strip())
        path = (path if path.is_absolute() else self.folders[0] / path).resolve()
        if not any(path.is_relative_to(folder) for folder in self.folders):
            raise ValueError(f"{image_path}: outside the line's image folders "
                             f"({', '.join(str(f) for f in self.folders)})")
        return path


class PartInspector:
    """Takes line triggers for ``station``; tells every listener (MQTT publisher, OPC UA variables) each verdict.

    ``messages(verdict)`` gives the outbox rows ``[(channel, topic, payload)]`` a verdict owes (none without
    a broker); it is called inside the record's transaction, with the inspection id and time filled in.
    """

    def __init__(self, station: Any, roots: ImageRoots, *,  # noqa: ANN401  (engine.Station: no import cycle)
                 messages: Callable[[dict[str, Any]], list[tuple[str, str, str]]] | None = None) -> None:
        self.station = station
        self.roots = roots
        self.messages = messages
        self.listeners: list[Listener] = []
        self.counters = {"inspected": 0, "rejected": 0, "errors": 0}
        self.last_store_error: str | None = None
        self._lock = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        """``listener(verdict)`` after each verdict (recorded or not); it must not raise (errors are logged)."""
        self.listeners.append(listener)

    # ------------------------------------------------------------------ the trigger

    def inspect_part(self, part_id: str, lot: str | None, image_path: str, *, origin: str,
                     failure: str | None = None, request_key: str | None = None) -> dict[str, Any]:
        """Inspect the image of ``part_id``; the verdict (recorded and queued for the line, or ERROR saying why).

        ``failure``: the trigger already failed for this reason (the image is not read; ERROR is recorded).
        ``request_key``: the trigger's identity on the line (``mqtt:<prefix>:<request_id>``); a trigger whose
        key is recorded already is not inspected again: the answer is the recorded verdict, nothing is written
        (its messages were queued with it, the publisher sends them if it has not) and the listeners are not
        told again (the OPC UA counters would count the part twice).
        Raises :class:`PartError` only for a trigger without a usable part id (nothing to record it under).
        """
        part_id, lot = check_part(part_id, lot)
        station = self.station
        name = Path(image_path).name if isinstance(image_path, str) else "?"
        source = f"{origin}:{name}"
        if request_key is not None:
            try:
                recorded = station.store.recorded_inspection(request_key)
            except (StoreError, OSError) as error:  # the write below says so again if the database is gone
                log.warning("part %s: could not look up request %s: %s", part_id, request_key, error)
                recorded = None
            if recorded is not None:  # before the models: a redelivery costs no inference
                return self._repeated(recorded, source, origin, request_key)
        image, data = None, b""
        try:
            if failure is not None:
                raise ValueError(failure)
            path = self.roots.resolve(image_path)
            data = _read(path, station.max_file_bytes)
            image = decode_upload(data, path.name, max_pixels=station.max_pixels)
        except (ValueError, OSError, ImageRejected, StationError) as error:
            failure = error.message if isinstance(error, StationError) else str(error)
        drift_changes: list[dict[str, Any]] = []
        if image is not None:
            states = station.run_models(image, source)
            drift_changes = station.drift.observe(states, image)
            fields = station.record_fields(states)
            verdict = fields["verdict"]
            error = "; ".join(f"{s.model.name}: {s.result.error}" for s in states if not s.result.ok) or None
            shape = image.shape
        else:
            fields = {"models": [m.record() for m in station.models],
                      "results": [{"model": m.name, "status": "error", "error": failure} for m in station.models],
                      "grade": station.rules.grades[-1], "class_name": "error", "score": None, "verdict": "ERROR"}
            verdict, error, shape, states = "ERROR", failure, (0, 0), []
        result = {"inspection_id": None, "part_id": part_id, "lot": lot, "verdict": verdict,
                  "grade": fields["grade"], "class": fields["class_name"], "source": source, "origin": origin,
                  "scores": {r["model"]: r.get("score", r.get("confidence")) for r in fields["results"]
                             if r.get("role", "active") == "active"},  # a shadow model's result is never published
                  "models": {m["name"]: m.get("version") for m in fields["models"]
                             if m.get("role", "active") == "active"},
                  "error": error, "at": None, "drift": station.drift.overall(), "drift_changes": drift_changes}
        # the models that judged this part (OPC UA ModelVersion follows it: a slot may switch while the line runs)
        result["model_version"] = ", ".join(f"{name} {version}" for name, version in result["models"].items())

        written: list[int] = []  # the ids this call's tries wrote (a try that did not commit included)

        def outbox(inspection_id: int, created_at: str) -> list[tuple[str, str, str]]:
            written.append(inspection_id)
            result.update(inspection_id=inspection_id, at=created_at)
            return self.messages(dict(result)) if self.messages else []

        token = secrets.token_urlsafe(18)  # the operator's line page gets it with the part (see Station.payload)
        try:
            inspection_id = station.store.add_inspection(
                source=source, image_sha256=hashlib.sha256(data).hexdigest() if data else "", width=shape[1],
                height=shape[0], part_id=part_id, lot=lot, messages=outbox, view_token=token,
                write_key=request_key, **fields)
            self.last_store_error = None
            if request_key is not None and (not written or written[-1] != inspection_id):
                # the same request was recorded meanwhile by another thread: that record is the answer
                recorded = station.store.recorded_inspection(request_key)
                if recorded is not None:
                    return self._repeated(recorded, source, origin, request_key)
        except (StoreError, sqlite3.Error, OSError) as failure_to_store:
            reason = f"the verdict could not be recorded ({failure_to_store}); not published as OK"
            log.error("part %s: %s", part_id, reason)
            self.last_store_error = f"{now()}: part {part_id}: {reason}"
            result.update(inspection_id=None, verdict="ERROR", error=reason, at=now())
        else:
            result.update(inspection_id=inspection_id)
            if states:
                station.remember(inspection_id, source, image, states, token=token, part_id=part_id)
            if drift_changes:
                self._audit_drift(inspection_id, drift_changes)
        with self._lock:
            self.counters["inspected"] += 1
            self.counters["rejected"] += result["verdict"] == "NG"
            self.counters["errors"] += result["verdict"] == "ERROR"
        for listener in self.listeners:
            try:
                listener(dict(result))
            except Exception:  # a link's failure must not undo a recorded verdict
                log.exception("line listener %r failed on inspection %s", listener, result["inspection_id"])
        return result

    def _repeated(self, recorded: dict[str, Any], source: str, origin: str, request_key: str) -> dict[str, Any]:
        """The answer to a trigger delivered again: the verdict recorded for it the first time (no listener is told)."""
        log.info("part %s: request %s was recorded already (inspection %s); not inspected again",
                 recorded["part_id"], request_key, recorded["id"])
        result = {"inspection_id": int(recorded["id"]), "part_id": recorded["part_id"], "lot": recorded["lot"],
                  "verdict": recorded["verdict"], "grade": recorded["grade"], "class": recorded["class_name"],
                  "source": source, "origin": origin, "scores": {}, "models": {}, "error": None,
                  "at": recorded["created_at"], "drift": self.station.drift.overall(), "drift_changes": [],
                  "model_version": "", "repeated": True}
        return result

    def _audit_drift(self, inspection_id: int, changes: list[dict[str, Any]]) -> None:
        """A ``drift_changed`` audit entry per change (the plant page reads the newest per station and model)."""
        store = self.station.store
        try:
            with store.transaction() as conn:
                for change in changes:
                    append(conn, "station", "drift_changed", {
                        "station": getattr(store, "station", None), "line": getattr(store, "line", None),
                        "inspection_id": inspection_id, **change})
        except (StoreError, OSError) as error:  # the change is logged and published already; the trail says why
            log.error("drift: could not write the change into the audit trail: %s", error)

    def state(self) -> dict[str, Any]:
        """Counters since start and the last failure to record (what the page shows of the line)."""
        with self._lock:
            return {**self.counters, "last_store_error": self.last_store_error}


def _read(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, at most ``max_bytes`` (a clear error above, or when it is missing)."""
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{path}: above the station's limit of {max_bytes / 1e6:g} MB (--max-upload-mb)")
    return data

