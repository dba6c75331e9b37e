"""Model bundles: one folder with a fitted model, its decision threshold, its rules and its evidence.

``defect-fit`` trains a model on a user's images, exports it, calibrates a threshold for a target
false-reject rate on held-out defect-free images and writes a bundle. :class:`..inferencer.DefectInferencer`,
``defect-infer`` and ``defect-station`` take a bundle wherever they take an IR, and then use the
bundle's threshold(s) and rules instead of the IR's defaults (:func:`bundle_settings`)::

    BUNDLE/
      bundle.json                         the manifest, written last
      model/fp32.xml .bin .meta.json      the FP32 IR (save_ir with versioned=False: plain files)
      model/int8.xml .bin .meta.json      optional: the INT8 IR, when its accuracy guard accepted it
      rules.yaml                          the grading rules it was fitted with (the station's rule format)
      card.md, card.json                  the model card (data, split, command, versions, figures, threshold)
      split.json                          the held-out split
      predictions.csv                     held-out predictions (file, part, group, label, score, decision)
      drift_reference.json                optional: the held-out good images' scores and image statistics,
                                          the reference of the station's drift watch (:mod:`.drift`)

The manifest names the drift reference under the optional key ``drift_reference``;
:func:`write_bundle` adds that key when the staging folder holds ``drift_reference.json``, so that
every family's fit gets it without listing it. Bundles written before it existed have neither, and
:meth:`Bundle.drift_reference` then falls back to the good rows' scores of ``predictions.csv``.

``thresholds`` are those of the ``default_precision`` model; a bundle whose models were
calibrated one by one (an INT8 model's scores differ slightly from the FP32 model's) also has
``thresholds_by_precision`` (``{"FP32": {...}, "INT8": {...}}``), and the model loaded is then
judged with its own (:meth:`Bundle.thresholds_for`).

Why a manifest with hashes: a threshold is only right for the weights it was calibrated on. The
manifest records the SHA-256 of every file of the bundle, and :func:`load_bundle` refuses a bundle
whose files do not match (a changed ``.bin``, a hand-edited ``rules.yaml``), one that misses a file,
and one with a file in ``model/`` that the manifest does not list (what a replacement interrupted
half-way would leave). The check reads every file once (about 0.1 s per 100 MB).

Why a staging folder: a bundle is several files that belong together, and no set of file renames
replaces them at once. :func:`write_bundle` takes a complete staging folder next to the target
(:func:`staging_dir`), writes ``bundle.json`` last and renames the whole folder into place; an
earlier bundle there is renamed aside first and removed after the switch. A run interrupted at
any point leaves the old bundle whole or the new one whole, never a mixture; a killed process can
only leave hidden ``.<name>.tmp-...`` folders (:func:`defect_plugins.fileio.is_temporary`), which
the next :func:`staging_dir` for the same target removes. One of them may hold the earlier bundle
(killed between renaming it aside and renaming the new one in, ``out`` then missing): that one is
put back in place instead.

A bundle also travels as one archive (:func:`pack`: ``.tar``, ``.tar.gz`` or ``.tgz``), accepted
wherever a bundle folder is: it is extracted once into a cache folder named by the archive's
SHA-256 (:func:`bundle_cache_dir`), refusing members that are links, devices, absolute paths or
paths leaving the folder.

Runtime only (standard library; PyYAML through the rule loader): this loads in the runtime-only install.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from defect_plugins.fileio import atomic_path, atomic_write_json, fsync_path, is_temporary, replace, temp_sibling
from defect_plugins.imaging.geometry import RESIZE_MODES

from .families.base import PostSettings
from .metadata import FAMILIES, WEIGHT_PRECISIONS, sha256_file

if TYPE_CHECKING:
    from .drift import DriftReference

FORMAT = "defect-plugins-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
MODEL_DIR = "model"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
# the thresholds a bundle of each family may carry, and the PostSettings field each one sets
THRESHOLD_KEYS = {"anomaly": {"image": "image_threshold", "pixel": "pixel_threshold"},
                  "classifier": {"ok": "ok_threshold"},
                  "segmentor": {}}
# manifest keys that may be null; every other key of REQUIRED_KEYS must have a value
NULLABLE_KEYS = ("ok_class", "max_false_reject", "rules", "card", "card_json", "split", "predictions")
REQUIRED_KEYS = ("format", "format_version", "family", "models", "default_precision", "thresholds", "ok_class",
                 "labels", "max_false_reject", "rules", "card", "card_json", "split", "predictions", "input_size",
                 "resize", "created", "package_version", "files")
DRIFT_REFERENCE = "drift_reference.json"  # the same name as .drift.REFERENCE_FILE (not imported: numpy)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the bundle, the file or key, and what was expected."""


class BundleIntegrityError(BundleError):
    """A bundle file whose content does not match the SHA-256 its manifest records."""


# --------------------------------------------------------------------------- the bundle


@dataclass
class Bundle:
    """A loaded bundle (:func:`load_bundle`): the manifest's fields and where its files are.

    ``root`` is the folder holding ``bundle.json`` (for an archive, its extracted copy in the
    cache); ``source`` is the path the caller gave (the folder, ``bundle.json`` or the archive).
    The manifest's ``card`` (the model card's Markdown) is ``card_md`` here, so that :meth:`card`
    can return the parsed ``card.json``.
    """

    root: Path
    family: str
    models: dict[str, str]
    default_precision: str
    thresholds: dict[str, float]
    ok_class: str | None
    labels: list[str]
    max_false_reject: float | None
    rules: str | None
    card_md: str | None
    card_json: str | None
    split: str | None
    predictions: str | None
    input_size: tuple[int, int]
    resize: str
    created: str
    package_version: str
    files: dict[str, str]
    format_version: int = FORMAT_VERSION
    thresholds_by_precision: dict[str, dict[str, float]] = field(default_factory=dict)
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # manifest keys this version does not know
    drift_file: str | None = None  # the manifest's optional "drift_reference": the drift watch's reference

    @property
    def name(self) -> str:
        """The name a person gave the bundle: its folder's name, or the archive's without the suffix."""
        source = Path(os.path.abspath(self.source or self.root))  # "." has a name too
        if source.name == MANIFEST:
            return source.parent.name
        for suffix in ARCHIVE_SUFFIXES:
            if source.is_file() and source.name.endswith(suffix):
                return source.name[:-len(suffix)]
        return source.name

    @property
    def precisions(self) -> list[str]:
        """The weight precisions it has, ``FP32`` first."""
        return sorted(self.models, key=WEIGHT_PRECISIONS.index)

    def model_xml(self, precision: str | None = None) -> Path:
        """The IR of weight ``precision`` (``FP32``, ``INT8``; any case), default :attr:`default_precision`."""
        wanted = (precision or self.default_precision).upper()
        if wanted not in self.models:
            raise BundleError(f"{self._shown()}: no {wanted} model in this bundle (it has {', '.join(self.precisions)}"
                              f"; {MANIFEST} key 'models')")
        return self.root / self.models[wanted]

    def thresholds_for(self, precision: str | None = None) -> dict[str, float]:
        """The thresholds calibrated for the model of weight ``precision`` (default :attr:`default_precision`)."""
        wanted = (precision or self.default_precision).upper()
        self.model_xml(wanted)  # a precision the bundle lacks: say what it has
        return dict(self.thresholds_by_precision.get(wanted, self.thresholds))

    @property
    def rules_path(self) -> Path | None:
        """The rule file it was fitted with, or ``None`` when it names none."""
        return self.root / self.rules if self.rules else None

    @property
    def card_path(self) -> Path | None:
        """The model card (Markdown)."""
        return self.root / self.card_md if self.card_md else None

    def card(self) -> dict[str, Any]:
        """The parsed ``card.json`` (``{}`` when the bundle has none)."""
        if not self.card_json:
            return {}
        path = self.root / self.card_json
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BundleError(f"{path}: expected the model card as JSON ({error})") from error

    def read_predictions(self) -> list[dict[str, Any]]:
        """The held-out predictions, one dict per row of ``predictions.csv`` (``score`` as float, None when empty)."""
        if not self.predictions:
            return []
        path = self.root / self.predictions
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise BundleError(f"{path}: expected the held-out predictions as CSV ({error})") from error
        for number, row in enumerate(rows, start=2):
            score = row.get("score")
            try:
                row["score"] = float(score) if score not in (None, "") else None
            except ValueError as error:
                raise BundleError(f"{path}, line {number}: 'score' must be a number, got {score!r}") from error
        return rows

    def drift_reference(self) -> DriftReference | None:
        """The reference of a drift watch (:class:`.drift.DriftWatch`) for this bundle's model, or ``None``.

        ``drift_reference.json`` when the bundle has one (the held-out good images' scores and image
        statistics, written by ``defect-fit``). An older bundle without it: the scores of the good
        rows of ``predictions.csv`` (anomaly: label ``good``; classifier: the OK class's rows, P(OK)),
        with ``source`` ``"predictions.csv (scores only)"`` and no image statistics; the column of the
        default precision's model when present, else the FP32 one (``score.precision`` says which).
        ``None`` when there is nothing to compare with (a segmentor bundle without the file, a
        classifier without an OK class, no good rows).
        """
        from .drift import REFERENCE_FILE, DriftReference

        name = self.drift_file or (REFERENCE_FILE if REFERENCE_FILE in self.files else None)
        if name is not None:
            try:
                return DriftReference.load(self.root / name)
            except ValueError as error:
                raise BundleError(f"{self._shown()}: {error}") from error
        return self._drift_reference_from_predictions()

    def _drift_reference_from_predictions(self) -> DriftReference | None:
        from .drift import DriftReference

        if self.family == "anomaly":
            prefix, group_key, group = "score", "label", "good"
            meaning = "anomaly score (higher: more anomalous)"
        elif self.family == "classifier" and self.ok_class is not None:
            prefix, group_key, group = "p_ok", "group", self.ok_class
            meaning = f"P({self.ok_class}) (higher: more likely good)"
        else:
            return None
        rows = [row for row in self.read_predictions() if row.get(group_key) == group]
        if not rows:
            return None
        columns = [f"{prefix}_{self.default_precision.lower()}", f"{prefix}_fp32", prefix]
        column = next((c for c in columns if c in rows[0] and rows[0][c] not in (None, "")), None)
        if column is None:
            return None
        values = []
        for row in rows:
            try:
                values.append(float(row[column]))
            except (TypeError, ValueError) as error:
                raise BundleError(f"{self.root / (self.predictions or '')}: '{column}' must be a number, got "
                                  f"{row[column]!r}") from error
        precision = column.rsplit("_", 1)[1].upper() if "_" in column[len(prefix):] else None
        return DriftReference(values={"score": values}, source="predictions.csv (scores only)",
                              score={"name": prefix if prefix == "p_ok" else "score", "meaning": meaning,
                                     "precision": precision, "column": column},
                              count=len(values), extra={"images": "held-out good images (predictions.csv)"})

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: what a run's summary says of the bundle it used."""
        return {"name": self.name, "path": str(self.source or self.root), "format_version": self.format_version,
                "created": self.created, "package_version": self.package_version, "family": self.family,
                "precisions": self.precisions, "default_precision": self.default_precision,
                "thresholds": dict(self.thresholds), "thresholds_by_precision": dict(self.thresholds_by_precision),
                "ok_class": self.ok_class,
                "max_false_reject": self.max_false_reject, "rules": str(self.rules_path) if self.rules else None}

    def _shown(self) -> str:
        return f"bundle {self.source or self.root}"


# --------------------------------------------------------------------------- recognising and loading


def is_archive(path: str | os.PathLike[str]) -> bool:
    """A file named like a bundle archive (``.tar``, ``.tar.gz``, ``.tgz``)."""
    path = Path(path)
    return path.name.lower().endswith(ARCHIVE_SUFFIXES) and path.is_file()


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """A folder holding ``bundle.json``, the path of such a ``bundle.json``, or a bundle archive.

    Only names are looked at (an archive is recognised by its suffix): whether it is a valid
    bundle is for :func:`load_bundle` to say, with a message.
    """
    path = Path(path)
    if path.is_dir():
        return (path / MANIFEST).is_file()
    return (path.name == MANIFEST and path.is_file()) or is_archive(path)


def load_bundle(path: str | os.PathLike[str], *, verify: bool = True, cache_dir: str | Path | None = None) -> Bundle:
    """Read and check a bundle (folder, its ``bundle.json``, or an archive extracted into ``cache_dir``).

    Checks the format and version, every required key and its type, that every listed file exists
    and (with ``verify``) that its SHA-256 matches, and that ``model/`` holds no unlisted file.
    Raises :class:`BundleError` (:class:`BundleIntegrityError` for a hash that does not match).
    """
    source = Path(path)
    if is_archive(source):
        root = extract_archive(source, cache_dir=cache_dir)
    elif source.is_dir():
        root = source
    elif source.name == MANIFEST:
        root = source.parent
    else:
        raise BundleError(f"{source}: not a bundle (expected a folder with {MANIFEST}, its {MANIFEST}, or an "
                          f"archive {'/'.join(ARCHIVE_SUFFIXES)})")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{source}: no {MANIFEST} (not a bundle, or one whose writing did not finish)")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{manifest_path}: expected the bundle manifest as JSON ({error})") from error
    bundle = parse_manifest(data, root, where=str(manifest_path))
    bundle.source = source
    check_files(bundle, verify=verify)
    return bundle


def parse_manifest(data: Any, root: Path, *, where: str = MANIFEST) -> Bundle:
    """Check a manifest's keys and types; the :class:`Bundle` it describes (its files are not looked at)."""
    def fail(key: str, expected: str) -> BundleError:
        found = data.get(key) if isinstance(data, dict) else data
        return BundleError(f"{where}: '{key}': expected {expected}, got {found!r}")

    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object (the bundle manifest), got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise fail("format", repr(FORMAT))
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        raise fail("format_version", "a positive integer")
    if version > FORMAT_VERSION:
        raise BundleError(f"{where}: 'format_version' {version} is newer than this defect-plugins reads "
                          f"({FORMAT_VERSION}): upgrade defect-plugins to use this bundle")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise BundleError(f"{where}: missing keys {missing} (a bundle manifest has {list(REQUIRED_KEYS)})")
    nulls = [key for key in REQUIRED_KEYS if data[key] is None and key not in NULLABLE_KEYS]
    if nulls:
        raise BundleError(f"{where}: keys {nulls} are null; only {list(NULLABLE_KEYS)} may be")
    family = data["family"]
    if family not in FAMILIES:
        raise fail("family", f"one of {list(FAMILIES)}")
    files = data["files"]
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v)
                                              for k, v in files.items()):
        raise fail("files", "an object of relative path -> SHA-256 (64 lower-case hex digits)")
    for name in files:
        _relative(name, f"files.{name}", where)
        if name == MANIFEST:
            raise BundleError(f"{where}: 'files' lists {MANIFEST} itself; it lists every other file of the bundle")
    models = data["models"]
    if (not isinstance(models, dict) or not models
            or not all(key in WEIGHT_PRECISIONS and isinstance(value, str) for key, value in models.items())):
        raise fail("models", f"an object of weight precision ({', '.join(WEIGHT_PRECISIONS)}) -> path of its .xml")
    for key, value in models.items():
        if not value.endswith(".xml"):
            raise fail("models", f"paths ending in .xml (models.{key})")
        _listed(value, f"models.{key}", files, where)
        weights = value[:-len(".xml")] + ".bin"
        if weights not in files:
            raise BundleError(f"{where}: 'models.{key}' is {value}, but 'files' does not list its weights {weights}")
    default = data["default_precision"]
    if default not in models:
        raise fail("default_precision", f"one of the precisions in 'models' ({', '.join(models)})")
    thresholds = _thresholds(data["thresholds"], "thresholds", family, where)
    by_precision = data.get("thresholds_by_precision") or {}
    if not isinstance(by_precision, dict) or not set(by_precision) <= set(models):
        raise fail("thresholds_by_precision", f"an object of weight precision in 'models' ({', '.join(models)}) -> "
                                              f"thresholds")
    by_precision = {key: _thresholds(value, f"thresholds_by_precision.{key}", family, where)
                    for key, value in by_precision.items()}
    if default in by_precision and by_precision[default] != thresholds:
        raise BundleError(f"{where}: 'thresholds' {thresholds} differ from 'thresholds_by_precision.{default}' "
                          f"{by_precision[default]}; expected the same thresholds for the default precision")
    labels = data["labels"]
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise fail("labels", "a list of class names")
    ok_class = data["ok_class"]
    if ok_class is not None and (not isinstance(ok_class, str) or (labels and ok_class not in labels)):
        raise fail("ok_class", f"null or one of 'labels' {labels}")
    if any("ok" in values for values in [thresholds, *by_precision.values()]) and ok_class is None:
        raise BundleError(f"{where}: 'thresholds.ok' is set but 'ok_class' is null: the OK threshold needs the "
                          f"name of the OK class")
    max_false_reject = data["max_false_reject"]
    if max_false_reject is not None and (not _is_number(max_false_reject) or not 0 <= max_false_reject <= 1):
        raise fail("max_false_reject", "null or a rate within 0 and 1")
    paths: dict[str, str | None] = {}
    for key in ("rules", "card", "card_json", "split", "predictions"):
        value = data[key]
        if value is not None and not isinstance(value, str):
            raise fail(key, "null or the path of a file of the bundle")
        if value is not None:
            _listed(value, key, files, where)
        paths[key] = value
    size = data["input_size"]
    if not isinstance(size, list) or len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
        raise fail("input_size", "[height, width], two positive integers")
    if data["resize"] not in RESIZE_MODES:
        raise fail("resize", f"one of {list(RESIZE_MODES)}")
    for key in ("created", "package_version"):
        if not isinstance(data[key], str) or not data[key]:
            raise fail(key, "text")
    drift_file = data.get("drift_reference")
    if drift_file is not None:
        if not isinstance(drift_file, str):
            raise fail("drift_reference", "null or the path of a file of the bundle")
        _listed(drift_file, "drift_reference", files, where)
    known = {*REQUIRED_KEYS, "thresholds_by_precision", "drift_reference"}
    return Bundle(root=root, family=family, models=dict(models), default_precision=default,
                  thresholds=thresholds, thresholds_by_precision=by_precision, ok_class=ok_class,
                  labels=list(labels), max_false_reject=None if max_false_reject is None else float(max_false_reject),
                  rules=paths["rules"], card_md=paths["card"], card_json=paths["card_json"], split=paths["split"],
                  predictions=paths["predictions"], input_size=(int(size[0]), int(size[1])), resize=data["resize"],
                  created=data["created"], package_version=data["package_version"], files=dict(files),
                  format_version=int(version), extra={k: v for k, v in data.items() if k not in known},
                  drift_file=drift_file)


def check_files(bundle: Bundle, *, verify: bool = True) -> None:
    """Every listed file exists (and, with ``verify``, matches its SHA-256); ``model/`` holds nothing unlisted."""
    root = bundle.root
    for name, expected in sorted(bundle.files.items()):
        path = root / name
        if path.is_symlink() or not path.is_file():
            what = "a link" if path.is_symlink() else "missing" if not path.exists() else "not a regular file"
            raise BundleError(f"{path}: listed in {root / MANIFEST} but {what}: the bundle is incomplete; "
                              f"write it again (defect-fit) or restore the file")
        if verify:
            found = sha256_file(path)
            if found != expected:
                raise BundleIntegrityError(
                    f"{path} does not match its bundle: SHA-256 expected {expected} (recorded in {root / MANIFEST}), "
                    f"found {found} ({path.stat().st_size} bytes). The file was changed after the bundle was written "
                    f"or belongs to another bundle: write the bundle again (defect-fit) or restore the file")
    model_dir = root / MODEL_DIR
    if model_dir.is_dir():
        for path in sorted(_walk(model_dir)):
            name = path.relative_to(root).as_posix()
            if name not in bundle.files:
                raise BundleError(
                    f"{path}: in {MODEL_DIR}/ but not listed in {root / MANIFEST}. A file there that the bundle does "
                    f"not list means a replacement was interrupted half-way or the folder was changed by hand: write "
                    f"the bundle again (defect-fit), or remove the file if you know where it came from")


# --------------------------------------------------------------------------- post-processing settings


def bundle_settings(bundle: Bundle, base: PostSettings, precision: str | None = None) -> PostSettings:
    """``base`` with the bundle's thresholds, OK class and rules wherever the caller left them unset.

    Anomaly: ``image`` / ``pixel`` -> ``image_threshold`` / ``pixel_threshold``; classifier:
    ``ok`` -> ``ok_threshold`` and ``ok_class``; the thresholds are those of the model of weight
    ``precision`` (default the bundle's default). The rule file goes to ``rules`` (read with the
    grading module's loader). A value the caller set (``defect-infer --image-threshold``, a
    ``DefectInferencer`` argument: anything but ``None``, and rules other than the packaged
    default) wins over the bundle's.
    """
    thresholds = bundle.thresholds_for(precision)
    changes: dict[str, Any] = {}
    for key, setting in THRESHOLD_KEYS[bundle.family].items():
        if key in thresholds and getattr(base, setting) is None:
            changes[setting] = thresholds[key]
    if bundle.ok_class is not None and getattr(base, "ok_class", None) is None:
        changes["ok_class"] = bundle.ok_class
    if bundle.rules_path is not None and not rules_were_given(base):
        from .grading.rules import load_rules

        changes["rules"] = load_rules(bundle.rules_path)
    return dataclasses.replace(base, **changes)


def rules_were_given(settings: PostSettings) -> bool:
    """Whether ``settings`` carries rules of the caller's: anything but none or the packaged default object."""
    rules = getattr(settings, "rules", None)
    if rules is None:
        return False
    from .grading.rules import default_rules

    return rules is not default_rules()


def applied_thresholds(bundle: Bundle | None, settings: PostSettings, precision: str | None = None) -> dict[str, Any]:
    """The thresholds a run judges with (settings), and which of them came from the bundle: for run summaries."""
    applied: dict[str, Any] = {}
    for setting in ("image_threshold", "pixel_threshold", "ok_threshold"):
        value = getattr(settings, setting, None)
        if value is not None:
            applied[setting] = float(value)
    if getattr(settings, "ok_class", None) is not None:
        applied["ok_class"] = settings.ok_class
    if bundle is not None:
        thresholds = bundle.thresholds_for(precision)
        applied["from_bundle"] = sorted(setting for key, setting in THRESHOLD_KEYS[bundle.family].items()
                                        if key in thresholds and applied.get(setting) == thresholds[key])
    return applied


# --------------------------------------------------------------------------- writing


def staging_dir(out: str | os.PathLike[str]) -> Path:
    """A new, empty, hidden folder next to ``out`` to assemble a bundle in (then :func:`write_bundle`).

    Named ``.<out name>.tmp-<random>`` (:func:`defect_plugins.fileio.temp_sibling`): the same file
    system as ``out``, so the final rename never copies. Staging folders of killed runs into the
    same ``out`` are removed first (two runs into one ``out`` at once are not supported).
    """
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    return temp_sibling(out, directory=True)


def write_bundle(staging: str | os.PathLike[str], manifest: dict[str, Any], out: str | os.PathLike[str], *,
                 overwrite: bool = False) -> Bundle:
    """Hash every file of ``staging``, write ``bundle.json`` last and rename ``staging`` to ``out``; the bundle.

    ``staging`` (from :func:`staging_dir`) holds every file of the bundle, plain files only (IRs
    saved with ``save_ir(..., versioned=False)``); ``manifest`` holds every key of the format but
    ``files`` (computed here); ``format``, ``format_version``, ``created`` and ``package_version``
    are filled in when absent. ``out`` must be absent or an empty folder; with ``overwrite`` it
    may be an earlier bundle, which is renamed aside, replaced and removed. ``staging`` is
    consumed: moved into place, or removed when anything fails, so that an interrupted call
    leaves ``out`` as it was and no staging folder behind.
    """
    staging, out = Path(staging).absolute(), Path(out).absolute()
    try:
        if staging.parent.resolve() != out.parent.resolve():
            raise BundleError(f"staging folder {staging} must be next to {out} (in {out.parent}): the bundle is "
                              f"renamed into place, which cannot cross folders on every platform; use staging_dir(out)")
        existing = _existing_bundle(out, overwrite)
        files = {}
        for path in sorted(_walk(staging)):
            name = path.relative_to(staging).as_posix()
            if name == MANIFEST:
                continue
            if path.is_symlink() or not path.is_file():
                what = "a link" if path.is_symlink() else "a special file"
                raise BundleError(f"{path}: a bundle holds plain files only, found {what} (save IRs into the "
                                  f"staging folder with save_ir(..., versioned=False))")
            fsync_path(path)
            files[name] = sha256_file(path)
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, "created": _utc_now(),
                "package_version": _package_version(), **manifest, "files": files}
        if DRIFT_REFERENCE in files and "drift_reference" not in manifest:
            full["drift_reference"] = DRIFT_REFERENCE  # every family's fit gets it without naming it
        bundle = parse_manifest(json.loads(json.dumps(full)), staging, where=f"manifest for {out}")
        check_files(bundle, verify=False)
        atomic_write_json(staging / MANIFEST, full, indent=2, sort_keys=True)
        for folder in sorted({path.parent for path in _walk(staging)}, key=lambda p: -len(p.parts)):
            fsync_path(folder)
        _publish(staging, out, existing)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    bundle.root, bundle.source = out, out
    return bundle


def _existing_bundle(out: Path, overwrite: bool) -> bool:
    """Whether ``out`` holds an earlier bundle to replace; refuse anything else that is not absent or empty."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BundleError(f"{out}: exists and is not a folder; expected a new or empty folder for the bundle")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not (out / MANIFEST).is_file():
        raise BundleError(f"{out}: a folder that is not empty and holds no {MANIFEST}: not replacing it with a "
                          f"bundle (expected a new or empty folder, or an earlier bundle with overwrite)")
    if not overwrite:
        raise BundleError(f"{out}: holds a bundle already; pass overwrite (defect-fit --overwrite) to replace it")
    return True


def _publish(staging: Path, out: Path, existing: bool) -> None:
    """``staging`` becomes ``out`` in one rename; an earlier bundle is renamed aside first, put back on failure.

    The earlier bundle is deleted only once ``out`` is a bundle again (the new one, or the old one
    put back): should even putting it back fail, it stays in its hidden folder next to ``out``.
    """
    aside: Path | None = None
    try:
        if existing:
            aside = temp_sibling(out, directory=True)
            _rename_folder(out, aside)
        elif out.is_dir():
            out.rmdir()  # empty (checked): a rename cannot replace a folder on every platform
        _rename_folder(staging, out)  # the switch
    except BaseException:
        if aside is not None and not out.exists():  # not switched: the earlier bundle goes back
            _rename_folder(aside, out)
            aside = None
        raise
    finally:
        if aside is not None and (out / MANIFEST).is_file():
            shutil.rmtree(aside, ignore_errors=True)


def _rename_folder(src: Path, dst: Path) -> None:
    """``src`` onto ``dst`` (absent, or an empty folder: POSIX replaces it in the same rename)."""
    try:
        replace(src, dst)
    except OSError:
        if not dst.is_dir() or any(dst.iterdir()):
            raise
        dst.rmdir()  # platforms where a rename cannot replace a folder (Windows)
        replace(src, dst)


def _remove_leftovers(out: Path) -> None:
    """Remove what killed runs into ``out`` left; with ``out`` missing, a complete bundle among them goes back first."""
    prefix = f".{out.name}.tmp-"
    if not out.parent.is_dir():
        return
    entries = [entry for entry in out.parent.iterdir() if entry.name.startswith(prefix) and is_temporary(entry)]
    complete = [entry for entry in entries if entry.is_dir() and not entry.is_symlink()
                and (entry / MANIFEST).is_file()]  # bundle.json is written last: these are whole bundles
    if complete and not out.exists() and not out.is_symlink():
        newest = max(complete, key=lambda entry: (entry / MANIFEST).stat().st_mtime)
        replace(newest, out)
        entries.remove(newest)
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# --------------------------------------------------------------------------- archives


def pack(bundle_dir: str | os.PathLike[str], out_tar: str | os.PathLike[str]) -> Path:
    """Write a checked bundle into one archive (``.tar``; ``.tar.gz`` / ``.tgz`` compressed), atomically.

    The archive holds the bundle's files at its top level, plain files only, in a fixed order.
    """
    bundle = load_bundle(bundle_dir)
    out_tar = Path(out_tar)
    if not out_tar.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise BundleError(f"{out_tar}: an archive name must end in {', '.join(ARCHIVE_SUFFIXES)}")
    mode = "w:gz" if out_tar.name.lower().endswith((".gz", ".tgz")) else "w"
    out_tar.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_tar) as tmp, tarfile.open(tmp, mode) as archive:
        for name in [*sorted(bundle.files), MANIFEST]:
            info = archive.gettarinfo(str(bundle.root / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with (bundle.root / name).open("rb") as handle:
                archive.addfile(info, handle)
    return out_tar


def bundle_cache_dir() -> Path:
    """Where archives are extracted: ``$DEFECT_PLUGINS_CACHE/bundles``, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("DEFECT_PLUGINS_CACHE"):
        return Path(os.environ["DEFECT_PLUGINS_CACHE"]) / "bundles"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "defect_plugins" / "bundles"


def extract_archive(archive: str | os.PathLike[str], *, cache_dir: str | Path | None = None) -> Path:
    """The folder of a bundle archive's files: ``cache_dir/<SHA-256 of the archive>``, extracted once.

    Only regular files and folders with relative names inside the archive are accepted; links,
    devices, absolute names and names leaving the folder are refused (then tarfile's ``data``
    filter applies as well). The extraction goes to a hidden folder renamed into place, so a
    cache entry is complete or absent. An archive whose files sit in one top-level folder works too.
    """
    archive = Path(archive)
    cache = Path(cache_dir) if cache_dir is not None else bundle_cache_dir()
    target = cache / sha256_file(archive)
    if not target.is_dir():  # a cache entry appears complete, in one rename
        cache.mkdir(parents=True, exist_ok=True)
        staging = temp_sibling(target, directory=True)
        try:
            try:
                with tarfile.open(archive) as tar:
                    members = tar.getmembers()
                    for member in members:
                        _check_member(archive, member)
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(staging, members=members, filter="data")
                    else:  # Python < 3.10.12: the members were checked above
                        tar.extractall(staging, members=members)
            except (tarfile.TarError, OSError, EOFError) as error:
                raise BundleError(f"{archive}: cannot read this bundle archive ({error})") from error
            with contextlib.suppress(OSError):  # another process extracted the same archive meanwhile: use that
                replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if (target / MANIFEST).is_file():
        return target
    inner = [entry for entry in target.iterdir() if entry.is_dir() and (entry / MANIFEST).is_file()]
    if len(inner) == 1:
        return inner[0]
    raise BundleError(f"{archive}: no {MANIFEST} at the top of the archive or in a single top-level folder: "
                      f"not a bundle archive (see defect_plugins.deploy.bundle.pack)")


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith("\\") or re.match(r"[A-Za-z]:", member.name):
        raise BundleError(f"{archive}: member {member.name!r} has an absolute path or leaves the folder; refused")
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "a special file"
        raise BundleError(f"{archive}: member {member.name!r} is {kind}; a bundle archive holds plain files only")


# --------------------------------------------------------------------------- helpers


def _walk(folder: Path) -> list[Path]:
    """Every entry under ``folder`` that is not a folder (links to folders included, not followed)."""
    found = []
    for root, folders, files in os.walk(folder):
        found.extend(Path(root, name) for name in files)
        found.extend(Path(root, name) for name in folders if os.path.islink(os.path.join(root, name)))
    return found


def _thresholds(value: Any, key: str, family: str, where: str) -> dict[str, float]:
    """A ``{name: number}`` of the thresholds a bundle of ``family`` may carry (:data:`THRESHOLD_KEYS`)."""
    if not isinstance(value, dict) or not all(_is_number(number) for number in value.values()):
        raise BundleError(f"{where}: '{key}': expected an object of name -> number (may be empty), got {value!r}")
    allowed = THRESHOLD_KEYS[family]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise BundleError(f"{where}: '{key}.{unknown[0]}': a bundle of the {family} family has no such threshold "
                          f"(expected {sorted(allowed) or 'none'})")
    return {name: float(number) for name, number in value.items()}


def _relative(name: str, key: str, where: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or name != path.as_posix():
        raise BundleError(f"{where}: '{key}': expected a relative path inside the bundle ('/' separated, no '..'), "
                          f"got {name!r}")
    return name


def _listed(name: str, key: str, files: dict[str, str], where: str) -> None:
    _relative(name, key, where)
    if name not in files:
        raise BundleError(f"{where}: '{key}' names {name}, which 'files' does not list")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _package_version() -> str:
    from defect_plugins import __version__

    return __version__
