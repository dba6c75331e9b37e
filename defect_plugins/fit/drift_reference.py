"""The bundle's ``drift_reference.json``: what the station's drift watch compares the line with.

Written into the staging folder by :func:`defect_plugins.fit.assemble.write_card`, the last step every
family's fit takes there before :func:`defect_plugins.deploy.bundle.write_bundle` hashes the folder:
so the file is listed in the manifest like every other, and the family modules need no change. By then
the folder holds ``predictions.csv`` (the held-out images and their scores) and the models, and the
card names the data root and the default precision.

Which images: the held-out (calibration and test) good images -- the anomaly family's ``good`` label,
the classifier's OK class. A classifier without an OK class and a segmentor have no good class to
speak of: their reference is every held-out image (image statistics only: no score is thresholded).

Which score: the one the bundle's threshold applies to, from the model the station loads by default
(``threshold.default_precision``): anomaly ``pred_score``, classifier P(OK class). ``predictions.csv``
has it for FP32; an INT8 default model is run on the reference images here (its scores differ
slightly, and its threshold was calibrated on its own scores).
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.deploy.drift import REFERENCE_FILE, STATS, STATS_SIZE, DriftReference, image_stats
from defect_plugins.fileio import atomic_write_json


def write_drift_reference(folder: str | Path, card: Mapping[str, Any]) -> Path | None:
    """Write ``folder/drift_reference.json`` from ``folder/predictions.csv`` and the data root ``card`` names.

    Returns its path, or ``None`` (nothing written) when the folder has no predictions or the card
    names no family or data root: not a fit's staging folder.
    """
    folder = Path(folder)
    predictions = folder / "predictions.csv"
    family = card.get("family")
    root = (card.get("data") or {}).get("root")
    if not predictions.is_file() or family not in ("anomaly", "classifier", "segmentor") or not root:
        return None
    root = Path(root)
    with predictions.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    precision = str((card.get("threshold") or {}).get("default_precision") or "FP32").upper()
    ok_class = card.get("ok_class")
    score: dict[str, Any] = {}
    if family == "anomaly":
        chosen = [row for row in rows if row.get("label") == "good"]
        images = "held-out good images (calibration and test parts)"
        score = {"name": "pred_score", "meaning": "anomaly score, compared with the image threshold (higher: "
                                                  "more anomalous)", "threshold_key": "image"}
    elif family == "classifier" and ok_class:
        chosen = [row for row in rows if row.get("group") == ok_class]
        images = f"held-out images of the OK class {ok_class!r} (calibration and test parts)"
        score = {"name": "p_ok", "meaning": f"P({ok_class}), compared with the OK threshold (higher: more likely "
                                            f"good)", "threshold_key": "ok"}
    else:
        chosen = rows
        images = "every held-out image (calibration and test parts): no good class with a thresholded score"
    files = [row["file"] for row in chosen]
    values: dict[str, list[float]] = {name: [] for name in STATS}
    for name in files:
        from defect_plugins.imaging.files import read_bgr

        for key, value in image_stats(read_bgr(root / name)).items():
            values[key].append(value)
    if score and files:
        score["precision"] = precision
        values["score"] = _scores(folder, root, family, chosen, precision, ok_class, score)
    reference = DriftReference(values={k: np.asarray(v) for k, v in values.items()}, score=score, count=len(files),
                               extra={"family": family, "images": images, "files": files,
                                      "stats": {"size": STATS_SIZE, "grey": "OpenCV BGR2GRAY",
                                                "brightness": "mean grey level", "contrast": "grey standard deviation",
                                                "sharpness": "variance of the 3x3 Laplacian"}})
    path = folder / REFERENCE_FILE
    atomic_write_json(path, reference.to_dict(), indent=1, sort_keys=False)
    return path


def _scores(folder: Path, root: Path, family: str, rows: list[dict[str, str]], precision: str, ok_class: str | None,
            score: dict[str, Any]) -> list[float]:
    """The thresholded score of ``rows``: the column of ``precision`` in ``predictions.csv``, else the model run."""
    column = f"{'score' if family == 'anomaly' else 'p_ok'}_{precision.lower()}"
    if rows and rows[0].get(column) not in (None, ""):
        score["from"] = f"predictions.csv column {column}"
        return [float(row[column]) for row in rows]
    from .scoring import score_files

    model = folder / "model" / f"{precision.lower()}.xml"
    files = [row["file"] for row in rows]
    score["from"] = f"model/{model.name} run on the reference images"
    if family == "anomaly":
        from .anomaly import defect_score

        return [float(v) for v in score_files(model, root, files, defect_score).scores]
    from .classifier import probabilities

    scored = score_files(model, root, files, probabilities)
    index = scored.class_names.index(ok_class)
    return [float(v) for v in scored.probabilities[:, index]]
