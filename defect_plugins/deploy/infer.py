"""Run an exported model over a folder, a list, a video or a camera; write decisions, numbers and pictures.

``defect-infer`` is a thin command over :class:`.inferencer.DefectInferencer`: this module turns
sources into images (:func:`iter_sources`), feeds them to ``predict_many`` and writes what comes
back. Works with any IR written by :mod:`.export` (the metadata in the IR says which family it is),
with IRs written by ``anomalib export --export_type openvino``, and with model bundles written by
``defect-fit`` (:mod:`.bundle`; a folder, its ``bundle.json`` or its archive): a bundle's IR of
``--weights`` (default the bundle's own choice) is run with the bundle's calibrated threshold(s),
OK class and rule file; ``--image-threshold``, ``--pixel-threshold``, ``--ok-threshold`` and
``--rules`` given on the command line win over the bundle's. ``results.json``'s summary names the
bundle (``bundle``: name, created, version), the weights used and the thresholds applied
(``thresholds_applied``, with those that came from the bundle under ``from_bundle``).

* classifier -> class and confidence, written on the picture;
* anomaly -> image score and decision against the model's threshold, heatmap overlay with the
  pixel-threshold contour, defect regions of the thresholded map quantified;
* segmentor -> per-pixel classes, defect regions per class quantified, machine-bed region (when
  the model has a region head) outlined.

Regions are measured with :func:`defect_plugins.imaging.quantify.quantify_mask` (area, centroid,
perimeter, area ratio, K; RKD-SARSN paper section 3.2.4); each image is graded over their totals by a
rule file (``--rules``, :mod:`.grading`; default the bundle's, else the packaged rules).

Progress: a bar when stderr is a terminal; otherwise (a log file, a service) one line every
:data:`PROGRESS_EVERY` images, so that a log does not fill with redraws of a bar; none with ``--quiet``.

Throughput comes from OpenVINO's asynchronous infer requests (the ``THROUGHPUT`` hint, as many
requests as OpenVINO finds optimal), driven from the calling thread without Python callbacks
(see :mod:`.inferencer` for why).

The precision is explicit: ``INFERENCE_PRECISION_HINT="f32"`` by default, because a bf16 default
moves anomaly scores across their threshold. Inputs that cannot be read (or whose inference or
post-processing fails) are reported, skipped and counted; they never stop a run. Every path that
gives no image is one of them, so that nothing vanishes silently: a broken symbolic link or an
entry that is not a regular file in a folder, a sub-folder that cannot be listed, a source that
yields no image at all (empty folder or list, video without a readable frame). Files without an
image suffix in a folder are not inputs; they are counted in the summary (``ignored``).

Outputs, in ``--out``: ``results.json`` (summary + every result with its regions),
``results.csv`` (one row per input), ``regions.csv`` (one row per defect region) and
``overlays/``. They must describe one run, so they are written into a hidden temporary folder
next to ``--out`` and that folder is renamed onto ``--out`` in one step at the end: a kill at any
moment leaves ``--out`` as it was (absent, empty, or the earlier results whole) or with the
complete new results, never a mixture. Hence ``--out`` must be new or empty; with
``--overwrite`` it may hold the results of an earlier run (nothing else): they are moved aside
(one rename) just before the switch and deleted after it, and put back if the switch is
interrupted (:func:`run_inference`, the Python API, overwrites earlier results by default, as it
always did). An interruption in the process (exception, Ctrl-C) removes the temporary folders; a
killed process can leave a hidden ``.<out>.tmp-...`` folder, removed by the next run into the same
``--out`` (so two runs into the same ``--out`` at once are not supported).

Exit status: 0 when every input was processed, 1 when any failed (``N of M inputs failed`` on
stderr; the results are written all the same) or the run could not start (model missing or
refused, see :func:`.runtime.read_model`), 2 for bad arguments (``--out`` a file, or a folder that
is not new or empty).

Command line (``defect-infer``)::

    python -m defect_plugins.deploy.infer exp/model.xml \\
        IMAGES_DIR [more dirs, files, list.txt, video.mp4, 0] --out results
    defect-infer --model BUNDLE IMAGES_DIR --out results     # a bundle of defect-fit; --weights FP32 to choose
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2

from defect_plugins.fileio import atomic_path, fsync_path, is_temporary, replace, temp_sibling
from defect_plugins.imaging.files import IMAGE_SUFFIXES, ImageReadError, read_bgr

from .bundle import applied_thresholds
from .inferencer import DefectInferencer

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
LIST_SUFFIXES = (".txt", ".lst")
OUTPUT_NAMES = ("results.json", "results.csv", "regions.csv", "overlays")  # all that defect-infer writes in --out
PROGRESS_EVERY = 100  # images between two progress lines when stderr is not a terminal


class OutputFolderError(ValueError):
    """``--out`` cannot take the results: a file, or a folder that is neither new, empty nor earlier results."""


# --------------------------------------------------------------------------- sources


def iter_sources(sources: Sequence[str | Path], *, max_frames: int | None = None,
                 ignored: dict[str, int] | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, image_bgr or error)`` for every input; errors are yielded, not raised.

    A source is a folder (images, recursively: :func:`list_inputs`), an image file, a list file
    (``.txt``/``.lst``: one path per line), a video file, or a camera index (``0``, ``1``...)
    opened with OpenCV. A source that gives no image at all yields one error naming it.
    ``ignored`` (if given) counts the folder entries that are not inputs, by reason.
    """
    for source in sources:
        text = str(source)
        path = Path(text)
        if text.isdigit() and not path.exists():
            yield from _iter_capture(cv2.VideoCapture(int(text)), f"camera{text}", max_frames)
        elif path.is_dir():
            candidates = list_inputs(path, ignored)
            if not candidates:
                yield text, ImageReadError(f"{path}: no image files ({' '.join(IMAGE_SUFFIXES)}) in this folder")
            for image_path, problem in candidates:
                yield str(image_path), ImageReadError(problem) if problem else _safe_read(image_path)
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            lines = [line.strip() for line in path.read_text().splitlines()]
            items = [line for line in lines if line and not line.startswith("#")]
            if not items:
                yield text, ImageReadError(f"{path}: the list names no file")
            for line in items:
                item = Path(line)
                item = item if item.is_absolute() else path.parent / item
                yield str(item), _safe_read(item)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            if not path.is_file():
                yield text, ImageReadError(f"{path}: no such video file")
            else:
                yield from _iter_capture(cv2.VideoCapture(str(path)), text, max_frames)
        else:
            yield text, _safe_read(path)


def list_inputs(folder: str | Path, ignored: dict[str, int] | None = None) -> list[tuple[Path, str | None]]:
    """Every input under ``folder`` (recursively, sorted by path), each with why it cannot be read, if known already.

    :func:`defect_plugins.imaging.list_images` keeps only regular files, so a broken link ``x.png`` or an
    unreadable sub-folder vanished from a run. Here they are inputs with a reason (and fail):
    a link to a missing file, an image-suffixed entry that is not a regular file, a folder that
    cannot be listed. Links to folders are not followed (as ``list_images``: no loops); they and
    files without an image suffix are counted in ``ignored``.
    """
    found: list[tuple[Path, str | None]] = []

    def unreadable(error: OSError) -> None:
        found.append((Path(error.filename), f"{error.filename}: cannot list this folder ({error.strerror or error})"))

    def count(reason: str) -> None:
        if ignored is not None:
            ignored[reason] = ignored.get(reason, 0) + 1

    for root, folders, files in os.walk(folder, onerror=unreadable):
        for name in folders:
            if os.path.islink(os.path.join(root, name)):
                count("links to folders (not followed)")
        for name in files:
            path = Path(root, name)
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                count("files without an image suffix")
            elif path.is_file():
                found.append((path, None))
            elif path.is_symlink():
                found.append((path, f"{path}: broken symbolic link (its target {os.readlink(path)} does not exist)"))
            else:
                found.append((path, f"{path}: not a regular file"))
    return sorted(found, key=lambda item: item[0])


def _safe_read(path: Path) -> Any:
    try:
        return read_bgr(path)
    except ImageReadError as error:
        return error


def _iter_capture(capture, name: str, max_frames: int | None) -> Iterator[tuple[str, Any]]:
    if not capture.isOpened():
        yield name, ImageReadError(f"{name}: OpenCV cannot open this video/camera source")
        return
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{name}#{index:06d}", frame
            index += 1
    finally:
        capture.release()
    if index == 0 and max_frames != 0:
        yield name, ImageReadError(f"{name}: opened, but no frame could be read")


# --------------------------------------------------------------------------- runner


def run_inference(model_xml: str | Path, sources: Sequence[str | Path], out_dir: str | Path, *,
                  precision: str = "f32", jobs: int = 0, save_images: bool = True, rules: Any = None,
                  min_area: int = 4, image_threshold: float | None = None, pixel_threshold: float | None = None,
                  ok_threshold: float | None = None, weights: str | None = None, max_frames: int | None = None,
                  progress: bool = True, num_threads: int | None = None, overwrite: bool = True) -> dict[str, Any]:
    """Run ``model_xml`` (an IR or a bundle) over ``sources``; write results into ``out_dir`` (switched in at the end).

    Returns the summary. ``weights``, ``rules``, the thresholds: as for
    :class:`.inferencer.DefectInferencer` (``None``: the bundle's, else the model's defaults).

    ``jobs`` infer requests (0: OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` under the
    ``THROUGHPUT`` hint) run asynchronously (:meth:`.inferencer.DefectInferencer.predict_many`);
    results come in input order. Inputs that fail are reported and counted, never stop the run.
    ``out_dir``: see :func:`check_out_dir`. ``overwrite`` is on by default here (Python callers
    have always rerun into one folder) and off for the command line (``--overwrite``).
    """
    out_dir = check_out_dir(out_dir, overwrite=overwrite)
    inferencer = DefectInferencer(model_xml, precision=precision, weights=weights, performance_hint="THROUGHPUT",
                                  num_threads=num_threads, rules=rules, min_area=min_area,
                                  image_threshold=image_threshold, pixel_threshold=pixel_threshold,
                                  ok_threshold=ok_threshold)
    metadata = inferencer.metadata
    jobs = jobs if jobs > 0 else inferencer.optimal_jobs()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    staging = temp_sibling(out_dir, directory=True)  # becomes out_dir in one rename at the end
    try:
        overlay_dir = staging / "overlays"
        overlay_dir.mkdir()
        ordered: list[dict[str, Any]] = []
        failures: list[dict[str, str]] = []
        ignored: dict[str, int] = {}
        bar = _Progress(f"defect-infer ({metadata.family}, {precision})") if progress else None
        started = time.perf_counter()
        try:
            items = iter_sources(sources, max_frames=max_frames, ignored=ignored)
            for index, result in enumerate(inferencer.predict_many(items, jobs=jobs)):
                row = result.to_dict()
                if result.ok and save_images:
                    try:
                        picture = result.overlay()
                    except Exception as error:  # noqa: BLE001 - a bad frame must not stop a production run
                        row = {"source": result.source, "status": "error", "error": f"post-processing: {error}"}
                    else:
                        row.update(_write_overlay(overlay_dir, index, result.source, picture))
                if row["status"] != "ok":
                    failures.append({"source": row["source"], "error": row["error"]})
                ordered.append(row)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        wall = time.perf_counter() - started
        ok = [r for r in ordered if r["status"] == "ok"]
        decisions: dict[str, int] = {}
        for r in ok:
            decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
        bundle = inferencer.bundle
        summary = {"model": str(model_xml), "model_xml": str(inferencer.path),
                   "bundle": bundle.describe() if bundle is not None else None, "family": metadata.family,
                   "weights": metadata.precision, "inference_precision_hint": precision, "jobs": jobs,
                   "inputs": len(ordered), "processed": len(ok), "failed": len(failures), "failures": failures,
                   "ignored": ignored, "decisions": decisions, "wall_s": wall,
                   "images_per_s": len(ok) / wall if wall > 0 else 0.0, "rules": inferencer.settings.rules.source,
                   "grades": list(inferencer.settings.rules.grades), "min_area": min_area,
                   "class_names": metadata.class_names, "thresholds": metadata.thresholds,
                   "thresholds_applied": applied_thresholds(bundle, inferencer.settings, metadata.precision)}
        _write_outputs(staging, summary, ordered)
        fsync_path(overlay_dir)
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return summary


class _Progress:
    """A tqdm bar on a terminal; elsewhere one line every :data:`PROGRESS_EVERY` images (no redraws in a log)."""

    def __init__(self, description: str) -> None:
        self.description, self.count, self.started = description, 0, time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=description, unit="img")

    def update(self, count: int) -> None:
        self.count += count
        if self.bar is not None:
            self.bar.update(count)
        elif self.count % PROGRESS_EVERY == 0:
            rate = self.count / max(time.perf_counter() - self.started, 1e-9)
            print(f"{self.description}: {self.count} images ({rate:.1f} img/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_out_dir(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """The folder the results will replace: ``out_dir`` if it is new or empty (or, with ``overwrite``, earlier results).

    Raises :class:`OutputFolderError` for a file, a broken link, or a folder holding anything but
    :data:`OUTPUT_NAMES` (with ``overwrite``) or anything at all (without). Nothing is changed
    here. A link to a folder is followed: the results replace the folder it names.
    """
    given = Path(out_dir)
    out = given.absolute()
    if out.is_symlink():
        if not out.exists():
            raise OutputFolderError(f"--out {given} is a broken symbolic link, expected a folder")
        out = out.resolve()
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {given} is a file, expected a folder")
    entries = sorted(entry.name for entry in out.iterdir()) if out.is_dir() else []
    if entries and not overwrite:
        raise OutputFolderError(f"--out {given} is not empty ({_some(entries)}); expected a new or empty folder, "
                                f"or --overwrite to replace the results of an earlier defect-infer run")
    foreign = [name for name in entries if name not in OUTPUT_NAMES]
    if foreign:
        raise OutputFolderError(f"--out {given} holds files that defect-infer did not write ({_some(foreign)}); "
                                f"--overwrite replaces only {', '.join(OUTPUT_NAMES)}: expected a new or empty "
                                f"folder or an earlier defect-infer output")
    return out


def _some(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _remove_leftovers(out_dir: Path) -> None:
    """Hidden ``.<out>.tmp-...`` folders next to ``out_dir``: runs, or earlier results set aside, killed mid-way."""
    prefix = f".{out_dir.name}.tmp-"
    for entry in out_dir.parent.iterdir():
        if entry.name.startswith(prefix) and is_temporary(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _publish(staging: Path, out_dir: Path) -> None:
    """Make the finished ``staging`` folder ``out_dir`` in one rename; earlier results there are set aside first.

    ``out_dir`` is absent, empty, or holds earlier results only (:func:`check_out_dir`). Earlier
    results are renamed aside (a rename cannot replace a folder that is not empty), the new
    folder is renamed in, the earlier one deleted. Interrupted before the new folder is in, the
    earlier results are renamed back, so ``out_dir`` shows the old run whole or the new one whole.
    """
    aside: Path | None = None
    try:
        if out_dir.is_dir() and any(out_dir.iterdir()):
            aside = temp_sibling(out_dir, directory=True)
            _rename_folder(out_dir, aside)
        _rename_folder(staging, out_dir)  # the switch
    except BaseException:
        if staging.is_dir() and aside is not None and any(aside.iterdir()):  # not switched: earlier results back
            _rename_folder(aside, out_dir)
        raise
    finally:
        if aside is not None:
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


def _write_overlay(overlay_dir: Path, index: int, source: str, picture) -> dict[str, str]:
    """Write one overlay atomically: ``{"overlay": relative path}``, or ``{"error": why}`` (the decision stands)."""
    overlay_name = f"{index:06d}_{_safe_name(source)}.png"
    try:
        with atomic_path(overlay_dir / overlay_name) as tmp:
            if not cv2.imwrite(str(tmp), picture):
                raise OSError("cv2.imwrite failed")
    except (OSError, cv2.error) as error:
        return {"error": f"overlay {overlay_name} not written: {error}"}
    return {"overlay": f"overlays/{overlay_name}"}


def _safe_name(name: str) -> str:
    stem = Path(name.split("#")[0]).stem + ("_" + name.split("#")[1] if "#" in name else "")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]


def _write_outputs(folder: Path, summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """``results.json``, ``results.csv`` and ``regions.csv`` into the run's private folder, each flushed to disk.

    No temporary file per output: nobody reads ``folder`` before it is switched in whole.
    """
    fields = ["source", "status", "decision", "is_defect", "class", "confidence", "score", "num_regions", "grade",
              "overlay", "error"]
    with (folder / "results.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    region_fields = ["source", "class", "label", "area", "centroid_x", "centroid_y", "perimeter", "area_ratio", "k",
                     "bbox"]
    with (folder / "regions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=region_fields)
        writer.writeheader()
        for result in results:
            for region in result.get("regions", []):
                writer.writerow({"source": result["source"], "class": region["class"], "label": region["label"],
                                 "area": region["area"], "centroid_x": round(region["centroid"][0], 2),
                                 "centroid_y": round(region["centroid"][1], 2),
                                 "perimeter": round(region["perimeter"], 2), "area_ratio": region["area_ratio"],
                                 "k": round(region["k"], 4), "bbox": " ".join(map(str, region["bbox"]))})
    (folder / "results.json").write_text(json.dumps({"summary": summary, "results": results}, indent=2) + "\n",
                                         encoding="utf-8")
    for name in ("results.csv", "regions.csv", "results.json"):
        fsync_path(folder / name)


def main(argv: Sequence[str] | None = None) -> int:
    from .grading.rules import load_rules
    from .metadata import WEIGHT_PRECISIONS
    from .runtime import PRECISION_HINTS

    parser = argparse.ArgumentParser(prog="defect-infer", description=__doc__.split("\n")[0],
                                     usage="%(prog)s [--model] MODEL SOURCE [SOURCE ...] --out OUT [options]")
    parser.add_argument("inputs", nargs="+", metavar="[MODEL] SOURCE",
                        help="the model unless --model names it, then folders, image files, list files (.txt), "
                             "videos or camera indices")
    parser.add_argument("--model", type=Path,
                        help="model.xml written by defect-export (or by anomalib export), or a model bundle written "
                             "by defect-fit (its folder, bundle.json or .tar/.tar.gz); also the first positional")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--precision", choices=PRECISION_HINTS, default="f32",
                        help="OpenVINO INFERENCE_PRECISION_HINT (default f32; bf16 moves anomaly scores)")
    parser.add_argument("--weights", type=str.upper, choices=WEIGHT_PRECISIONS,
                        help="a bundle's weights to run (default: the bundle's default_precision); for an IR it "
                             "must name the IR's own")
    parser.add_argument("--jobs", type=int, default=0, help="asynchronous infer requests (0: OpenVINO's optimum)")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--no-images", action="store_true", help="do not write overlay pictures")
    parser.add_argument("--rules", type=Path, metavar="FILE",
                        help="grading rule file (YAML; default: a bundle's own, else the packaged default_rules.yaml)")
    parser.add_argument("--min-area", type=int, default=4, help="ignore regions smaller than this (pixels)")
    parser.add_argument("--image-threshold", type=float, help="anomaly: override the image threshold")
    parser.add_argument("--pixel-threshold", type=float, help="anomaly: override the pixel threshold")
    parser.add_argument("--ok-threshold", type=float,
                        help="classifier with an OK class: minimum P(OK class) for a good part (overrides a bundle's)")
    parser.add_argument("--max-frames", type=int, help="videos/cameras: stop after this many frames")
    parser.add_argument("--quiet", action="store_true",
                        help=f"no progress (else a bar on a terminal, a line per {PROGRESS_EVERY} images otherwise)")
    parser.add_argument("--overwrite", action="store_true",
                        help="--out may hold the results of an earlier run: replace them (a folder holding other "
                             "files is still refused)")
    args = parser.parse_args(argv)
    if args.model is None:
        if len(args.inputs) < 2:
            parser.error("give the model (first, or with --model) and at least one source")
        args.model, args.inputs = Path(args.inputs[0]), args.inputs[1:]
    try:
        check_out_dir(args.out, overwrite=args.overwrite)  # before the model is loaded: fail fast
        rules = load_rules(args.rules) if args.rules is not None else None
    except ValueError as error:  # RuleError is one
        print(f"defect-infer: error: {error}", file=sys.stderr)
        return 2
    try:
        summary = run_inference(args.model, args.inputs, args.out, precision=args.precision, jobs=args.jobs,
                                save_images=not args.no_images, rules=rules, min_area=args.min_area,
                                image_threshold=args.image_threshold, pixel_threshold=args.pixel_threshold,
                                ok_threshold=args.ok_threshold, weights=args.weights,
                                max_frames=args.max_frames, progress=not args.quiet, num_threads=args.threads,
                                overwrite=args.overwrite)
    except OutputFolderError as error:  # --out changed since the check above
        print(f"defect-infer: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as error:
        print(f"defect-infer: error: {error}", file=sys.stderr)
        return 1
    ignored = "".join(f"; ignored {count} {reason}" for reason, count in summary["ignored"].items())
    if summary["bundle"] is not None:
        bundle = summary["bundle"]
        print(f"bundle {bundle['name']} (created {bundle['created']}, defect-plugins {bundle['package_version']}): "
              f"{summary['weights']} weights, thresholds {summary['thresholds_applied']}, rules {summary['rules']}")
    print(f"{summary['processed']} of {summary['inputs']} inputs processed, {summary['failed']} failed "
          f"(INFERENCE_PRECISION_HINT={summary['inference_precision_hint']}, {summary['images_per_s']:.1f} img/s); "
          f"decisions {summary['decisions']}{ignored}; results in {args.out / 'results.json'}")
    for failure in summary["failures"]:
        print(f"  skipped {failure['source']}: {failure['error']}", file=sys.stderr)
    if summary["failed"]:
        print(f"defect-infer: {summary['failed']} of {summary['inputs']} inputs failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
