"""The station's drift watch: each model's live scores and the parts' image statistics against its bundle.

The computation is :mod:`defect_plugins.deploy.drift` (population stability index against the bundle's
held-out good images, window and limits in a :class:`~defect_plugins.deploy.drift.DriftConfig`); this
module feeds it the line's parts and says what changed:

* one :class:`~defect_plugins.deploy.drift.DriftWatch` per model that has a reference
  (:meth:`Bundle.drift_reference`); a bare IR, a segmentor bundle without statistics or a classifier
  without an OK class is "not watched" and the pages say why;
* the watched score is the one the bundle thresholds: an anomaly model's image score, a classifier's
  probability of its OK class; image statistics (brightness, contrast, sharpness) of the part's
  original image, computed once per part and shared by every model;
* only line parts are observed (:meth:`.line.parts.PartInspector.inspect_part`): the engineer's
  uploads are test images, not the line's stream;
* a change of state (``collecting`` -> ``ok`` -> ``warn`` / ``drift`` and back) is returned once, for the
  caller to log, audit (``drift_changed``) and publish (MQTT ``PREFIX/drift``, OPC UA ``DriftState``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.deploy.drift import DriftConfig, DriftWatch, image_stats, load_drift_config

from .memory import ModelState
from .models import StationModel

log = logging.getLogger("defect_plugins.station.drift")
LEVELS = ("collecting", "ok", "warn", "drift")  # from least to most alarming


def watched_score(state: ModelState) -> float | None:
    """The score the model's bundle thresholds, on this result (None: the family has none, or it failed)."""
    result = state.result
    if not result.ok:
        return None
    if state.model.family == "anomaly":
        return None if result.score is None else float(result.score)
    if state.model.family == "classifier":
        ok_class = state.model.inferencer.settings.ok_class
        if ok_class is not None and ok_class in result.probabilities:
            return float(result.probabilities[ok_class])
    return None


class StationDrift:
    """The drift watches of a station's models: one per model version, made when the model first judges.

    ``models()`` gives the station's active models now: a slot switched to another bundle
    (:mod:`.versions`) gets that bundle's reference and a fresh window, and switching back finds the
    old watch again (keyed by name and version).
    """

    def __init__(self, models: Callable[[], Sequence[StationModel]], config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self._models = models
        self._watches: dict[tuple[str, str], DriftWatch | str] = {}  # a watch, or why the model is not watched
        self._lock = threading.Lock()
        for model in models():
            self._watch(model)

    @classmethod
    def from_file(cls, models: Callable[[], Sequence[StationModel]], path: str | Path | None) -> StationDrift:
        """With the ``[drift]`` section of ``path`` (TOML or JSON; None: the defaults)."""
        return cls(models, load_drift_config(path) if path is not None else None)

    def _watch(self, model: StationModel) -> DriftWatch | str:
        key = (model.name, model.version)
        with self._lock:
            if key not in self._watches:
                reference = model.bundle.drift_reference() if model.bundle is not None else None
                if reference is not None:
                    self._watches[key] = DriftWatch(reference, self.config)
                elif model.bundle is None:
                    self._watches[key] = "a bare IR has no held-out reference; fit a bundle with defect-fit"
                else:
                    self._watches[key] = "the bundle has no drift reference for this family"
            return self._watches[key]

    def observe(self, states: Sequence[ModelState], image: np.ndarray) -> list[dict[str, Any]]:
        """Feed one part; the changes of state it caused: ``[{"model", "state", "tripped", "psi", "n"}]``."""
        watches = [(state, self._watch(state.model)) for state in states if state.result.ok]
        watches = [(state, watch) for state, watch in watches if isinstance(watch, DriftWatch)]
        if not watches:
            return []
        stats = image_stats(image)
        changes = []
        for state, watch in watches:
            change = watch.observe(watched_score(state), stats)
            if change is not None:
                entry = {"model": state.model.name, "version": state.model.version, **change.to_dict()}
                changes.append(entry)
                log.log(logging.WARNING if entry["state"] in ("warn", "drift") else logging.INFO,
                        "drift: model %s is now %s (tripped: %s)", state.model.name, entry["state"],
                        ", ".join(entry.get("tripped") or []) or "none")
        return changes

    def overall(self) -> str:
        """The worst state of the active models that are watched; ``""`` when none is."""
        states = [watch.state()["state"] for watch in map(self._watch, self._models())
                  if isinstance(watch, DriftWatch)]
        return max(states, key=LEVELS.index) if states else ""

    def state(self) -> dict[str, Any]:
        """For the pages: the overall state, each active model's (PSI per signal, counts, limits) or why it is not
        watched."""
        models: dict[str, Any] = {}
        for model in self._models():
            watch = self._watch(model)
            models[model.name] = (watch.state() if isinstance(watch, DriftWatch)
                                  else {"state": "not watched", "reason": watch})
        return {"state": self.overall(), "models": models, "config": self.config.to_dict()}
