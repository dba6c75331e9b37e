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
from collections.abc import Sequence
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
    """The drift watches of a station's models, keyed by model name."""

    def __init__(self, models: Sequence[StationModel], config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        self.watches: dict[str, DriftWatch] = {}
        self.unwatched: dict[str, str] = {}
        for model in models:
            reference = model.bundle.drift_reference() if model.bundle is not None else None
            if reference is None:
                self.unwatched[model.name] = ("a bare IR has no held-out reference; fit a bundle with defect-fit"
                                              if model.bundle is None else
                                              "the bundle has no drift reference for this family")
                continue
            self.watches[model.name] = DriftWatch(reference, self.config)

    @classmethod
    def from_file(cls, models: Sequence[StationModel], path: str | Path | None) -> StationDrift:
        """With the ``[drift]`` section of ``path`` (TOML or JSON; None: the defaults)."""
        return cls(models, load_drift_config(path) if path is not None else None)

    def observe(self, states: Sequence[ModelState], image: np.ndarray) -> list[dict[str, Any]]:
        """Feed one part; the changes of state it caused: ``[{"model", "state", "tripped", "psi", "n"}]``."""
        if not self.watches:
            return []
        stats = image_stats(image)
        changes = []
        for state in states:
            watch = self.watches.get(state.model.name)
            if watch is None or not state.result.ok:
                continue
            change = watch.observe(watched_score(state), stats)
            if change is not None:
                entry = {"model": state.model.name, **change.to_dict()}
                changes.append(entry)
                log.log(logging.WARNING if entry["state"] in ("warn", "drift") else logging.INFO,
                        "drift: model %s is now %s (tripped: %s)", state.model.name, entry["state"],
                        ", ".join(entry.get("tripped") or []) or "none")
        return changes

    def overall(self) -> str:
        """The worst state of the watched models; ``""`` when none is watched."""
        states = [watch.state()["state"] for watch in self.watches.values()]
        return max(states, key=LEVELS.index) if states else ""

    def state(self) -> dict[str, Any]:
        """For the pages: the overall state, each model's (PSI per signal, counts, limits) or why it is not watched."""
        models: dict[str, Any] = {name: watch.state() for name, watch in self.watches.items()}
        models.update({name: {"state": "not watched", "reason": reason} for name, reason in self.unwatched.items()})
        return {"state": self.overall(), "models": models, "config": self.config.to_dict()}
