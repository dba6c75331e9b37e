"""The station's memory of recent inspections: what lets the threshold slider work without running a model.

The anomaly map of each recent inspection stays here at the image's resolution, so re-thresholding
only thresholds it, measures the regions and grades again. :class:`ResultCache` is bounded in bytes
(the newest inspection always stays).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from defect_plugins.deploy.grading import ModelGrading
from defect_plugins.deploy.result import InferenceResult
from defect_plugins.imaging.paper_segmentation import PaperViews

from .models import StationModel


@dataclass
class ModelState:
    """One model's result for one inspection, as the page shows it now (after any threshold change)."""

    model: StationModel
    result: InferenceResult
    grading: ModelGrading
    latency_ms: float
    threshold: float | None = None  # anomaly: the image and pixel threshold in force
    threshold_default: float | None = None  # anomaly: the model's own (what the slider started from)
    role: str = "active"  # "shadow": a candidate run beside the slot's active model; it decides nothing


class States(list):
    """The active models' states of one run (what decides), with the shadow models' beside them in :attr:`shadow`.

    A list of the active states, so every reader that grades, shows or publishes sees the deciding models
    only; :meth:`.engine.Station.record_fields` adds the shadow ones to the record, tagged ``"role": "shadow"``.
    """

    def __init__(self, active: Iterable[ModelState] = (), shadow: Iterable[ModelState] = ()) -> None:
        super().__init__(active)
        self.shadow: list[ModelState] = list(shadow)


@dataclass
class Inspection:
    """An inspection kept in memory: the image, the views and each model's state."""

    id: int
    source: str
    image: np.ndarray
    views: PaperViews | None  # None until a page asks (parts from the line are not shown at once)
    states: list[ModelState]
    token_sha256: str  # the hash of the token only its page got (see Station.check_token)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # a line part's token, kept until the operator's line page fetches it (an upload's goes with its answer)
    token: str | None = field(default=None, repr=False)
    part_id: str | None = None

    @property
    def nbytes(self) -> int:
        arrays = [self.image]
        if self.views is not None:
            arrays += [self.views.grey, self.views.bilateral, self.views.stretched, self.views.mask]
        for state in self.states:
            arrays += [a for a in (state.result.anomaly_map, state.result.class_map, state.result.region_map,
                                   state.result.defect_mask) if a is not None]
        return int(sum(a.nbytes for a in arrays))


class ResultCache:
    """The last inspections, at most ``max_bytes`` together (the newest one is always kept).

    Each inspection is counted at its size when it was put, in a running total: summing every kept
    inspection at each put cost 2 ms per part once a few hundred were kept. Paper views that a page asks
    for later are not counted (at most four images of the image's size per inspection shown).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[int, tuple[Inspection, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def put(self, inspection: Inspection) -> None:
        size = inspection.nbytes
        with self._lock:
            previous = self._items.pop(inspection.id, None)
            self._total -= previous[1] if previous else 0
            self._items[inspection.id] = (inspection, size)
            self._total += size
            while len(self._items) > 1 and self._total > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._total -= dropped

    def get(self, inspection_id: int) -> Inspection | None:
        with self._lock:
            kept = self._items.get(inspection_id)
        return kept[0] if kept else None

    def __len__(self) -> int:
        return len(self._items)
