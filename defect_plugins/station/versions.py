"""Model versions at a station: each ``--model`` is a slot with an active model, the previous one and a shadow.

An engineer tries a new bundle on live parts before trusting it: :meth:`ModelSlots.shadow` loads it
beside the slot's active model, so every inspection runs it on the same image without letting it
touch a verdict (:meth:`.engine.Station.run_models`); :meth:`ModelSlots.activate` makes it the one
that decides, keeping the old one as ``previous`` so that :meth:`ModelSlots.rollback` is one click
(and needs no file to be loaded again). A model activated while the station runs that then fails on
a live image is rolled back by the station itself (:meth:`ModelSlots.auto_rollback`): a new model
must never be the reason a part goes out without a real verdict.

Thread safety: the slots are an immutable tuple replaced in one assignment under a lock, so an
inspection takes one consistent :meth:`ModelSlots.snapshot` and uses it to the end, whatever an
engineer switches meanwhile. Loading a candidate (seconds) happens outside the lock; each switch
is written to the audit trail in the same locked section, so the trail's order is the switches' order.

Candidates come only from the ``--bundles`` folder (:class:`BundleShelf`), by name: a request never
names a path of the station's PC.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from defect_plugins.deploy.bundle import Bundle, BundleError, is_bundle, load_bundle
from defect_plugins.deploy.ir_files import read_metadata

from .audit import append
from .errors import StationError
from .models import StationModel, file_version
from .store import Store, now

Loader = Callable[[Path, int], StationModel]


@dataclass(frozen=True)
class Slot:
    """One ``--model`` of the station: what decides now, what decided before, and what runs beside it."""

    index: int
    family: str
    active: StationModel
    previous: StationModel | None = None
    shadow: StationModel | None = None
    # the active model was switched in while the station runs: a failure on a live image rolls it back
    switched: bool = False

    def describe(self) -> dict[str, Any]:
        return {"slot": self.index, "family": self.family, "active": _model_info(self.active),
                "previous": _model_info(self.previous), "shadow": _model_info(self.shadow),
                "switched": self.switched}


def _model_info(model: StationModel | None) -> dict[str, Any] | None:
    if model is None:
        return None
    return {"name": model.name, "version": model.version, "path": str(model.path), "family": model.family,
            "bundle": model.bundle_info()}


# --------------------------------------------------------------------------- the folder of candidates


def held_out_false_reject(bundle: Bundle | None) -> dict[str, Any] | None:
    """The bundle's own false-reject rate on its held-out parts (``None`` for a bare IR or no evidence).

    From ``predictions.csv``: good parts (label = the bundle's OK class, ``good`` for anomaly models) of
    the ``test`` part whose decision is not that class, over the good parts. Without predictions, the
    card's ``test.false_reject`` when the card has it.
    """
    if bundle is None:
        return None
    good = bundle.ok_class or "good"
    try:
        rows = bundle.read_predictions()
        held_out = [r for r in rows if r.get("part") == "test"] or rows
        accepted = [r for r in held_out if r.get("label") == good]
        if accepted:
            rejected = sum(r.get("decision") != good for r in accepted)
            return {"rate": rejected / len(accepted), "rejected": rejected, "good": len(accepted),
                    "source": bundle.predictions}
        value = bundle.card().get("test", {}).get("false_reject")
    except (BundleError, AttributeError):
        return None
    if isinstance(value, dict):
        value = value.get("value")
    return {"rate": float(value), "source": bundle.card_json} if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class Candidate:
    """A bundle or bare IR of the ``--bundles`` folder, as the engineer picks it."""

    name: str
    path: Path
    family: str
    created: str | None
    version: str
    bundle: Bundle | None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "created": self.created, "version": self.version,
                "kind": "bundle" if self.bundle is not None else "ir",
                "held_out_false_reject": held_out_false_reject(self.bundle)}


class BundleShelf:
    """The folder ``--bundles DIR``: bundles (folders, archives) and bare IRs (``*.xml``) an engineer may load.

    Read again at each listing (a bundle copied in while the station runs shows up); an entry that cannot
    be read is listed with its error rather than hiding the others. What was read of an entry (its metadata
    and the hash of its weights, which takes a while for a large model) is kept until the entry changes.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None and not self.folder.is_dir():
            raise StationError(400, f"--bundles {folder}: not a folder")
        self._read: dict[Path, tuple[tuple, Candidate | None]] = {}
        self._lock = threading.Lock()

    def entries(self) -> tuple[list[Candidate], list[dict[str, str]]]:
        """The candidates (by name) and the entries that could not be read (name, error)."""
        if self.folder is None:
            return [], []
        found, broken = [], []
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                candidate = self._cached(path)
            except (BundleError, OSError, ValueError) as error:
                broken.append({"name": path.name, "error": str(error)})
                continue
            if candidate is not None:
                found.append(candidate)
        return found, broken

    def get(self, name: Any) -> Candidate:  # noqa: ANN401  (checked here: a request's value)
        """The candidate called ``name`` (400 naming the ones there are)."""
        if not isinstance(name, str) or not name.strip():
            raise StationError(400, f"'bundle' must be the name of a bundle of --bundles, got {name!r}")
        if self.folder is None:
            raise StationError(400, "this station has no folder of bundles: start it with --bundles DIR")
        found, _ = self.entries()
        for candidate in found:
            if candidate.name == name.strip():
                return candidate
        raise StationError(400, f"no bundle or IR called {name!r} in {self.folder} (there are: "
                                f"{', '.join(c.name for c in found) or 'none'})")

    def _cached(self, path: Path) -> Candidate | None:
        """:meth:`_candidate`, read again only when the entry (or an IR's weights) changed since."""
        stamp = tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in (
            [path.stat()] + ([path.with_suffix(".bin").stat()] if path.suffix == ".xml" else [])))
        with self._lock:
            kept = self._read.get(path)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        candidate = self._candidate(path)
        with self._lock:
            self._read[path] = (stamp, candidate)
        return candidate

    @staticmethod
    def _candidate(path: Path) -> Candidate | None:
        if path.is_file() and path.suffix == ".xml":
            metadata = read_metadata(path)
            return Candidate(path.stem, path, metadata.family, None, file_version(path), None)
        if is_bundle(path):
            bundle = load_bundle(path, verify=False)  # fully checked when loaded
            return Candidate(bundle.name, path, bundle.family, bundle.created, file_version(bundle.model_xml()),
                             bundle)
        return None  # anything else of the folder (notes, a .bin) is not a candidate


# --------------------------------------------------------------------------- the slots


class ModelSlots:
    """The station's slots and the switches between versions (each one audited).

    ``load(path, slot)`` loads a candidate for a slot the way the station loads its models (its precision,
    rules, requests); ``store`` receives the audit entries.
    """

    def __init__(self, models: list[StationModel], *, load: Loader, store: Store, shelf: BundleShelf) -> None:
        self._slots = tuple(Slot(m.index, m.family, m) for m in models)
        self._load = load
        self._store = store
        self.shelf = shelf
        self._lock = threading.Lock()
        self.notices: list[dict[str, Any]] = []  # auto-rollbacks, newest last (the pages show them)

    def snapshot(self) -> tuple[Slot, ...]:
        """The slots as they are now: one inspection uses one snapshot from start to end."""
        return self._slots

    def active(self) -> list[StationModel]:
        return [slot.active for slot in self._slots]

    def describe(self) -> dict[str, Any]:
        found, broken = self.shelf.entries()
        return {"slots": [slot.describe() for slot in self._slots],
                "bundles": [candidate.describe() for candidate in found], "unreadable": broken,
                "bundles_folder": str(self.shelf.folder) if self.shelf.folder else None, "notices": list(self.notices)}

    def slot(self, index: Any) -> Slot:  # noqa: ANN401  (checked here: a request's value)
        """The slot ``index`` (400 when it is not an integer of the station's slots)."""
        slots = self._slots
        if isinstance(index, bool) or not isinstance(index, int) and not (
                isinstance(index, str) and index.isascii() and index.isdigit()):
            raise StationError(400, f"'slot' must be an integer from 0 to {len(slots) - 1}, got {index!r}")
        if not 0 <= int(index) < len(slots):
            raise StationError(400, f"slot {index} does not exist: the station has {len(slots)} slot(s), "
                                    f"0 to {len(slots) - 1} (one per --model)")
        return slots[int(index)]

    # ------------------------------------------------------------------ switches

    def shadow(self, slot: Any, name: Any, *, actor: str) -> Slot:  # noqa: ANN401
        """Load bundle ``name`` of ``--bundles`` as the shadow of ``slot`` (it replaces a shadow already there)."""
        current = self.slot(slot)
        candidate = self.shelf.get(name)
        if candidate.family != current.family:
            raise StationError(400, f"{candidate.name} is a {candidate.family} model; slot {current.index} holds "
                                    f"{current.family} models ({current.active.name}): pick a {current.family} "
                                    f"bundle")
        if candidate.version == current.active.version and candidate.path == current.active.path:
            raise StationError(400, f"{candidate.name} is already the active model of slot {current.index}")
        model = self._load(candidate.path, current.index)
        taken = {s.active.name for s in self._slots} | {s.shadow.name for s in self._slots if s.shadow}
        if model.name in taken:  # records key results by model name: keep a shadow's apart from an active's
            model.name = f"{model.name}@{model.version}"
        with self._lock:
            current = self._slots[current.index]
            self._switch(replace(current, shadow=model), actor, "model_shadow_started",
                         {"from": _named(current.active), "to": _named(model),
                          "replaced_shadow": _named(current.shadow)})
        return self._slots[current.index]

    def stop_shadow(self, slot: Any, *, actor: str) -> Slot:  # noqa: ANN401
        """Stop the shadow of ``slot`` (400 when it has none)."""
        with self._lock:
            current = self.slot(slot)
            if current.shadow is None:
                raise StationError(400, f"slot {current.index} runs no shadow model")
            self._switch(replace(current, shadow=None), actor, "model_shadow_stopped",
                         {"from": _named(current.active), "to": None, "stopped": _named(current.shadow)})
        return self._slots[current.index]

    def activate(self, slot: Any, name: Any = None, *, actor: str) -> Slot:  # noqa: ANN401
        """Make the shadow (``name`` None, or the shadow's name) or bundle ``name`` the slot's active model.

        The active one becomes ``previous`` (what :meth:`rollback` brings back). A bundle named that is not the
        shadow is loaded as the shadow first (audited as such), then activated: the trail shows both steps.
        """
        current = self.slot(slot)
        if name in (None, "") or (current.shadow is not None and name in (current.shadow.name,
                                                                             current.shadow.path.name)):
            if current.shadow is None:
                raise StationError(400, f"slot {current.index} runs no shadow model to activate: name a bundle, "
                                        f"or start a shadow first")
            model = current.shadow
        else:
            self.shadow(slot, name, actor=actor)  # loads and checks it (family), audited as a shadow start
            model = self._slots[current.index].shadow
        with self._lock:
            current = self._slots[current.index]
            if current.shadow is not model:
                raise StationError(409, f"the shadow of slot {current.index} changed meanwhile; try again")
            self._switch(replace(current, active=model, previous=current.active, shadow=None, switched=True),
                         actor, "model_activated", {"from": _named(current.active), "to": _named(model)})
        return self._slots[current.index]

    def rollback(self, slot: Any, *, actor: str) -> Slot:  # noqa: ANN401
        """The previous model of ``slot`` decides again; the one it replaces becomes ``previous`` (400 if none)."""
        with self._lock:
            current = self.slot(slot)
            if current.previous is None:
                raise StationError(400, f"slot {current.index} has no previous model to roll back to")
            # the model brought back is a known one: its failure is not a reason to bring back the one just removed
            self._switch(replace(current, active=current.previous, previous=current.active, switched=False),
                         actor, "model_rolled_back", {"from": _named(current.active), "to": _named(current.previous)})
        return self._slots[current.index]

    def auto_rollback(self, failed: Slot, reason: str, *, source: str) -> bool:
        """Roll ``failed``'s slot back because its switched-in model failed on a live image; False if it changed.

        The model brought back is not rolled back again on its own failure (no switching to and fro).
        """
        with self._lock:
            current = self._slots[failed.index]
            if current.active is not failed.active or current.previous is None:
                return current.active is not failed.active  # someone switched already: inspect with that
            detail = {"from": _named(current.active), "to": _named(current.previous), "reason": reason,
                      "source": source}
            self._switch(replace(current, active=current.previous, previous=current.active, switched=False),
                         "station", "model_auto_rollback", detail)
            self.notices.append({"at": now(), "slot": failed.index, "message":
                                 f"slot {failed.index}: {current.active.name} ({current.active.version}) failed on "
                                 f"{source} ({reason}); rolled back to {current.previous.name} "
                                 f"({current.previous.version})"})
            del self.notices[:-20]
        return True

    def _switch(self, new: Slot, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Audit, then publish ``new`` (call with the lock held): a switch the trail lacks never happens."""
        with self._store.transaction() as conn:
            append(conn, actor, action, {"slot": new.index, **detail})
        slots = list(self._slots)
        slots[new.index] = new
        self._slots = tuple(slots)


def _named(model: StationModel | None) -> dict[str, str] | None:
    return None if model is None else {"name": model.name, "version": model.version}
