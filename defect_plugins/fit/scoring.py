"""Score a user's original image files with an exported IR, the way the line will.

Every figure of a bundle (calibration, held-out rates, the INT8 check, re-evaluation) comes from here:
the user's files read with the package's checked decoder, brought to the model's input by the IR's own
metadata (size and resize mode, :func:`defect_plugins.imaging.geometry.to_input`), and run by OpenVINO
at an explicit f32 inference precision (a CPU's bf16 default would change scores between machines).
Re-scoring the same files with the same IR therefore gives the same numbers.

The **defect score** of an image is higher for more defective images; an image is rejected when
``score >= threshold``. Each family's fit module says what it is (anomaly: the exported ``pred_score``;
classifier with an OK class: ``1 - P(ok class)``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from defect_plugins.deploy.ir_files import read_metadata
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.runtime import openvino_predict
from defect_plugins.imaging.files import read_bgr
from defect_plugins.imaging.geometry import to_input


@dataclass
class Scores:
    """Per file (in the order given): the defect score and, for classifiers, the class probabilities."""

    files: list[str]
    scores: np.ndarray
    probabilities: np.ndarray | None = None  # (N, classes), classifiers only
    class_names: list[str] = field(default_factory=list)

    def of(self, files: Sequence[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.files)}
        return self.scores[[index[name] for name in files]]

    def predicted(self, files: Sequence[str]) -> list[str]:
        """The top class of each file (classifiers)."""
        if self.probabilities is None:
            raise ValueError("these scores carry no class probabilities")
        index = {name: i for i, name in enumerate(self.files)}
        return [self.class_names[int(self.probabilities[index[name]].argmax())] for name in files]


Extract = Callable[[Sequence[np.ndarray], ModelMetadata], "tuple[float, np.ndarray | None]"]


def score_files(model_xml: str | Path, root: Path, files: Sequence[str], extract: Extract) -> Scores:
    """Run ``model_xml`` on ``root / f`` for each relative path of ``files``; the scores in that order.

    ``extract(outputs, metadata)`` gives one image's defect score and class probabilities (or ``None``):
    each family's fit module has its own (:func:`defect_plugins.fit.anomaly.defect_score`, ...).
    """
    metadata: ModelMetadata = read_metadata(model_xml)
    predict = openvino_predict(model_xml, "f32")
    size = tuple(metadata.input_size) if not metadata.dynamic else None
    scores, probabilities = [], []
    for name in files:
        score, probs = extract(predict(to_input(read_bgr(root / name), size, metadata.resize)), metadata)
        scores.append(score)
        if probs is not None:
            probabilities.append(probs)
    return Scores(list(files), np.asarray(scores, dtype=np.float64),
                  np.stack(probabilities) if probabilities else None, list(metadata.class_names))
