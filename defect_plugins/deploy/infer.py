"""Run an exported model over a folder, a list, a video or a camera; write decisions, numbers and pictures.

``defect-infer`` is a thin command over :class:`.inferencer.DefectInferencer`: this module turns
sources into images (:func:`iter_sources`), feeds them to ``predict_many`` and writes what comes
back. Works with any IR written by :mod:`.export` (the metadata in the IR says which family it is)
and with IRs written by ``anomalib export --export_type openvino``:

* classifier -> class and confidence, written on the picture;
* anomaly -> image score and decision against the model's threshold, heatmap overlay with the
  pixel-threshold contour, defect regions of the thresholded map quantified;
* segmentor -> per-pixel classes, defect regions per class quantified, machine-bed region (when
  the model has a region head) outlined.

Regions are measured with :func:`.quantify.quantify_mask` (area, centroid, perimeter, area ratio,
K; RKD-SARSN paper section 3.2.4) and graded by a configurable :class:`.quantify.GradingRule`.

Throughput comes from OpenVINO's asynchronous infer requests (the ``THROUGHPUT`` hint, as many
requests as OpenVINO finds optimal), driven from the calling thread without Python callbacks
(see :mod:`.inferencer` for why).

The precision is explicit: ``INFERENCE_PRECISION_HINT="f32"`` by default, because a bf16 default
moves anomaly scores across their threshold. Files that cannot be read (or whose inference or
post-processing fails) are reported, skipped and counted; they never stop a run. Outputs:
``results.json`` (summary + every result with its regions), ``results.csv`` (one row per input),
``regions.csv`` (one row per defect region) and ``overlays/``, every file written atomically
(:mod:`defect_plugins.fileio`).

Command line (``defect-infer``)::

    python -m defect_plugins.deploy.infer exp/model.xml IMAGES_DIR [more dirs, files, list.txt, video.mp4, 0] --out results
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2

from defect_plugins.fileio import atomic_path, atomic_write_json

from .inferencer import DefectInferencer
from .quantify import GradingRule
from .runtime import ImageReadError, list_images, read_bgr

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
LIST_SUFFIXES = (".txt", ".lst")


# --------------------------------------------------------------------------- sources


def iter_sources(sources: Sequence[str | Path], *, max_frames: int | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, image_bgr or error)`` for every input; errors are yielded, not raised.

    A source is a folder (images, recursively), an image file, a list file (``.txt``/``.lst``: one
    path per line), a video file, or a camera index (``0``, ``1``...) opened with OpenCV.
    """
    for source in sources:
        text = str(source)
        path = Path(text)
        if text.isdigit() and not path.exists():
            yield from _iter_capture(cv2.VideoCapture(int(text)), f"camera{text}", max_frames)
        elif path.is_dir():
            for image_path in list_images(path):
                yield str(image_path), _safe_read(image_path)
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            for line in path.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    item = Path(line.strip())
                    item = item if item.is_absolute() else path.parent / item
                    yield str(item), _safe_read(item)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            if not path.is_file():
                yield text, ImageReadError(f"{path}: no such video file")
            else:
                yield from _iter_capture(cv2.VideoCapture(str(path)), text, max_frames)
        else:
            yield text, _safe_read(path)


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


# --------------------------------------------------------------------------- runner


def run_inference(model_xml: str | Path, sources: Sequence[str | Path], out_dir: str | Path, *,
                  precision: str = "f32", jobs: int = 0, save_images: bool = True,
                  rule: GradingRule | None = None, min_area: int = 4, image_threshold: float | None = None,
                  pixel_threshold: float | None = None, max_frames: int | None = None, progress: bool = True,
                  num_threads: int | None = None) -> dict[str, Any]:
    """Run ``model_xml`` over ``sources``; write results into ``out_dir``; return the summary.

    ``jobs`` infer requests (0: OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` under the
    ``THROUGHPUT`` hint) run asynchronously (:meth:`.inferencer.DefectInferencer.predict_many`);
    results come in input order. Inputs that fail are reported and counted, never stop the run.
    """
    inferencer = DefectInferencer(model_xml, precision=precision, performance_hint="THROUGHPUT",
                                  num_threads=num_threads, rule=rule, min_area=min_area,
                                  image_threshold=image_threshold, pixel_threshold=pixel_threshold)
    metadata = inferencer.metadata
    jobs = jobs if jobs > 0 else inferencer.optimal_jobs()
    out_dir = Path(out_dir)
    overlay_dir = out_dir / "overlays"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    ordered: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"defect-infer ({metadata.family}, {precision})", unit="img")
    started = time.perf_counter()
    try:
        for index, result in enumerate(inferencer.predict_many(iter_sources(sources, max_frames=max_frames),
                                                               jobs=jobs)):
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
    summary = {"model": str(model_xml), "family": metadata.family, "weights": metadata.precision,
               "inference_precision_hint": precision, "jobs": jobs, "inputs": len(ordered), "processed": len(ok),
               "failed": len(failures), "failures": failures, "decisions": decisions,
               "wall_s": wall, "images_per_s": len(ok) / wall if wall > 0 else 0.0,
               "grading_rule": (rule or GradingRule()).__dict__, "min_area": min_area,
               "class_names": metadata.class_names, "thresholds": metadata.thresholds}
    _write_outputs(out_dir, summary, ordered)
    return summary


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


def _write_outputs(out_dir: Path, summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """``results.json``, ``results.csv`` and ``regions.csv``, each written atomically (``results.json`` last)."""
    fields = ["source", "status", "decision", "class", "confidence", "score", "num_regions", "worst_grade",
              "overlay", "error"]
    with atomic_path(out_dir / "results.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
    region_fields = ["source", "class", "label", "area", "centroid_x", "centroid_y", "perimeter", "area_ratio", "k",
                     "bbox", "grade"]
    with atomic_path(out_dir / "regions.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=region_fields)
        writer.writeheader()
        for result in results:
            for region in result.get("regions", []):
                writer.writerow({"source": result["source"], "class": region["class"], "label": region["label"],
                                 "area": region["area"], "centroid_x": round(region["centroid"][0], 2),
                                 "centroid_y": round(region["centroid"][1], 2),
                                 "perimeter": round(region["perimeter"], 2), "area_ratio": region["area_ratio"],
                                 "k": round(region["k"], 4), "bbox": " ".join(map(str, region["bbox"])),
                                 "grade": region["grade"]})
    atomic_write_json(out_dir / "results.json", {"summary": summary, "results": results}, indent=2)


def _parse_rule(items: Sequence[str] | None) -> GradingRule:
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--grading expects key=value, got {item!r}")
        values[key.strip()] = value
    return GradingRule.from_dict(values)


def main(argv: Sequence[str] | None = None) -> int:
    from .runtime import PRECISION_HINTS

    parser = argparse.ArgumentParser(prog="defect-infer", description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="model.xml written by defect-export (or by anomalib export)")
    parser.add_argument("sources", nargs="+", help="folders, image files, list files (.txt), videos or camera indices")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--precision", choices=PRECISION_HINTS, default="f32",
                        help="OpenVINO INFERENCE_PRECISION_HINT (default f32; bf16 moves anomaly scores)")
    parser.add_argument("--jobs", type=int, default=0, help="asynchronous infer requests (0: OpenVINO's optimum)")
    parser.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    parser.add_argument("--no-images", action="store_true", help="do not write overlay pictures")
    parser.add_argument("--grading", nargs="*", metavar="KEY=VALUE",
                        help=f"grading rule thresholds, keys {sorted(GradingRule.__dataclass_fields__)}")
    parser.add_argument("--min-area", type=int, default=4, help="ignore regions smaller than this (pixels)")
    parser.add_argument("--image-threshold", type=float, help="anomaly: override the image threshold")
    parser.add_argument("--pixel-threshold", type=float, help="anomaly: override the pixel threshold")
    parser.add_argument("--max-frames", type=int, help="videos/cameras: stop after this many frames")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        rule = _parse_rule(args.grading)
        summary = run_inference(args.model, args.sources, args.out, precision=args.precision, jobs=args.jobs,
                                save_images=not args.no_images, rule=rule, min_area=args.min_area,
                                image_threshold=args.image_threshold, pixel_threshold=args.pixel_threshold,
                                max_frames=args.max_frames, progress=not args.quiet, num_threads=args.threads)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"defect-infer: error: {error}", file=sys.stderr)
        return 1
    print(f"{summary['processed']} of {summary['inputs']} inputs processed, {summary['failed']} failed "
          f"(INFERENCE_PRECISION_HINT={summary['inference_precision_hint']}, {summary['images_per_s']:.1f} img/s); "
          f"decisions {summary['decisions']}; results in {args.out / 'results.json'}")
    for failure in summary["failures"]:
        print(f"  skipped {failure['source']}: {failure['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
