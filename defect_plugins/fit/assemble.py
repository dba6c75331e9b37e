"""What every family's fit does after training: INT8 with its check, the bundle folder, the card.

The IRs go into the bundle as plain files (``model/fp32.xml`` ...) re-saved with the calibrated
threshold in their own metadata, so an IR taken out of the bundle still decides as the bundle does.
"""
from __future__ import annotations

import csv
import io
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from defect_plugins.deploy.ir_files import read_metadata, read_model, save_ir
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.fileio import atomic_write_json, atomic_write_text


def versions() -> dict[str, str]:
    """The versions a card records: Python, this package and the toolkits present."""
    from importlib import metadata

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("defect-plugins", "anomalib", "mmpretrain", "mmsegmentation", "mmengine", "torch", "openvino", "nncf"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def command_line(argv: Sequence[str] | None) -> str:
    """The command as typed (``defect fit ...``), for the card."""
    import shlex

    return "defect fit " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def resave(model_xml: Path, out_xml: Path, thresholds: Mapping[str, float], **changes: Any) -> ModelMetadata:
    """Copy an IR to ``out_xml`` (plain files) with ``thresholds`` (and other metadata fields) updated."""
    metadata = read_metadata(model_xml)
    data = metadata.to_dict()
    data["thresholds"] = {**data.get("thresholds", {}), **{k: float(v) for k, v in thresholds.items()}}
    data.update(changes)
    updated = ModelMetadata.from_dict(data)
    save_ir(read_model(model_xml), out_xml, updated, versioned=False)
    return updated


def quantize_checked(fp32_xml: Path, out_xml: Path, calib_dir: Path, eval_dir: Path, tolerance: float,
                     log: Callable[[str], None]) -> tuple[Path | None, dict[str, Any]]:
    """INT8 of ``fp32_xml`` through the package's accuracy guard; ``(None, why)`` when the guard refuses it."""
    from defect_plugins.deploy.export.int8 import QuantizationToleranceError, quantize_with_guard

    metadata = read_metadata(fp32_xml)
    try:
        ov_model, report = quantize_with_guard(read_model(fp32_xml), metadata, calib_dir, eval_dir,
                                               tolerance=tolerance)
    except QuantizationToleranceError as error:
        log(f"[fit] INT8 refused by the accuracy guard: {error}")
        return None, {"accepted": False, "reason": str(error)}
    data = {**metadata.to_dict(), "precision": "INT8", "quantization": report}
    save_ir(ov_model, out_xml, ModelMetadata.from_dict(data), versioned=False)
    log(f"[fit] INT8 {report['metric']}: FP32 {report['fp32']:.4f} -> INT8 {report['int8']:.4f}")
    return out_xml, {"accepted": True, "guard": {k: report[k] for k in ("metric", "fp32", "int8", "drop", "tolerance",
                                                                         "path", "int8_layers", "float_layers")}}


def write_predictions(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """The held-out predictions as CSV (file, part, group, score, decision, ...), atomically."""
    if not rows:
        atomic_write_text(path, "")
        return
    fields = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_card(folder: Path, card: Mapping[str, Any], markdown: str) -> None:
    """The model card (``card.json``, ``card.md``) and, for a fit's staging folder, ``drift_reference.json``.

    Every family's fit writes its card last into the staging folder, after the models and
    ``predictions.csv``, just before the bundle is hashed: the one place where the drift watch's
    reference (:func:`.drift_reference.write_drift_reference`) can be added for all families at once.
    A folder without ``predictions.csv`` gets the card only.
    """
    from .drift_reference import write_drift_reference

    atomic_write_json(folder / "card.json", card, indent=2, sort_keys=False)
    atomic_write_text(folder / "card.md", markdown)
    write_drift_reference(folder, card)


def overhead(total_seconds: float, train_seconds: float) -> dict[str, float]:
    """The fit's own time (everything but training) as a share of the training time and of the whole run.

    The first is the figure the fit's speed aim is about (at most 15 % of the training time at the
    default schedule); the second says how much of the wait was not training.
    """
    rest = max(total_seconds - train_seconds, 0.0)
    return {"overhead_seconds": round(rest, 1), "overhead_vs_training": round(rest / max(train_seconds, 1e-9), 3),
            "overhead_share": round(rest / max(total_seconds, 1e-9), 3)}


def overhead_text(timing: Mapping[str, Any]) -> str:
    """``54.8 s, 23 % of the training time`` for a card (older cards: the share of the whole run)."""
    if "overhead_vs_training" not in timing:
        return f"{100 * timing['overhead_share']:.0f} % of the whole run"
    return f"{timing['overhead_seconds']} s, {100 * timing['overhead_vs_training']:.0f} % of the training time"


def fmt_rate(rate: Mapping[str, Any] | None) -> str:
    """``0.8% (1/120, 95% CI 0.0-4.6%)`` of a :class:`.calibration.Rate` dict."""
    if not rate or not rate.get("n"):
        return "n/a (no images)"
    return (f"{100 * rate['value']:.1f} % ({rate['k']}/{rate['n']}; 95 % CI {100 * rate['lower']:.1f}-"
            f"{100 * rate['upper']:.1f} %)")


def write_rules(path: Path, labels: Sequence[str]) -> Path:
    """The packaged default rules for this model's classes, as the bundle's ``rules.yaml``.

    Class-specific rules of the default file name NEU-CLS and the strip classes; rules for classes this model
    does not have are left out (the station would only note them as unused), everything else is kept. The
    header says where the numbers come from; the line's own measurements should replace them.
    """
    import yaml

    from defect_plugins.deploy.grading.rules import DEFAULT_RULES, load_rules

    data = yaml.safe_load(DEFAULT_RULES.read_text())
    for family in data.get("families", {}).values():
        classes = family.get("classes")
        if isinstance(classes, dict):
            kept = {name: rules for name, rules in classes.items() if name in labels}
            if kept:
                family["classes"] = kept
            else:
                family.pop("classes")
    header = ("# Written by defect-fit from the packaged default rules (defect_plugins/deploy/grading/\n"
              "# default_rules.yaml, which cites the source of every number), keeping the class rules of this\n"
              "# model's classes only. Starting values: replace them with your line's measurements.\n")
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, width=110))
    load_rules(path)  # the file must load as a rule file, or the bundle is not written
    return path


def check_out(out: str | Path, overwrite: bool) -> Path:
    """``out`` as an absolute path; refused when it is a non-empty folder and not ``overwrite`` (before any work)."""
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty: choose a new --out or pass --overwrite")
    return out


def work_folder(out: Path, work_dir: Path | None) -> Path:
    """The fit's work folder (default ``OUT.work``), created: what a resumed fit finds again."""
    work = (work_dir or out.with_name(out.name + ".work")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    return work


def held_out_split(work: Path, root: Path, make: Callable[[], Any], log: Callable[[str], None]) -> Any:
    """The split of an earlier, interrupted run of this fit (files checked under ``root``), else ``make()``, saved."""
    from .split import Split

    path = work / "split.json"
    if path.is_file():
        split = Split.load(path, root=root)
        log(f"[fit] reusing the split of {path}")
        return split
    split = make()
    split.save(path)
    return split


def finish(work: Path, out: Path, keep_work: bool) -> None:
    """Mark the work folder finished and remove it unless ``keep_work``."""
    import shutil

    atomic_write_json(work / "finished.json", {"bundle": str(out)})
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
