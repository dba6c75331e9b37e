"""Run an exported model over a folder, a list, a video or a camera; write decisions, numbers and pictures.

Works with any IR written by :mod:`.export` (the metadata in the IR says which family it is):

* classifier -> class and confidence, written on the picture;
* anomaly -> image score and decision against the model's threshold, heatmap overlay with the
  pixel-threshold contour, defect regions of the thresholded map quantified;
* segmentor -> per-pixel classes, defect regions per class quantified, machine-bed region (when
  the model has a region head) outlined.

Regions are measured with :func:`.quantify.quantify_mask` (area, centroid, perimeter, area ratio,
K; RKD-SARSN paper section 3.2.4) and graded by a configurable :class:`.quantify.GradingRule`.

Throughput comes from OpenVINO's asynchronous infer requests (the ``THROUGHPUT`` hint, as many
requests as OpenVINO finds optimal, driven as a ring from the calling thread with
``start_async``/``wait``); images are read and results written on the Python side while
requests run. No Python callback is given to OpenVINO: a callback runs on an OpenVINO thread,
and the Python objects it holds (the compiled model, through the closure) could then be released
there; a compiled model destroyed on one of its own threads makes OpenVINO join that thread from
itself (``std::system_error: Resource deadlock avoided``, process aborted).

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
import contextlib
import csv
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from defect_plugins.fileio import atomic_path, atomic_write_json

from .metadata import ModelMetadata
from .quantify import GradingRule, MaskReport, draw_regions, quantify_mask
from .runtime import ImageReadError, compile_model, from_model_grid, list_images, read_bgr, read_metadata, to_input

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
LIST_SUFFIXES = (".txt", ".lst")
PALETTE = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (255, 128, 0), (0, 255, 128), (128, 0, 255)]


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


# --------------------------------------------------------------------------- post-processing


def _regions_rows(report: MaskReport, class_name: str) -> list[dict[str, Any]]:
    rows = []
    for region in report.regions:
        row = region.to_dict()
        row["class"] = class_name
        rows.append(row)
    return rows


def _worst(grades: Sequence[str]) -> str:
    order = ["", "minor", "major", "severe"]
    return max(grades, key=order.index, default="")


class PostProcessor:
    """Turns raw outputs of one image into a result dict and an overlay picture."""

    def __init__(self, metadata: ModelMetadata, *, rule: GradingRule | None = None, min_area: int = 4,
                 image_threshold: float | None = None, pixel_threshold: float | None = None) -> None:
        self.metadata = metadata
        self.rule = rule or GradingRule()
        self.min_area = int(min_area)
        self.image_threshold = float(image_threshold if image_threshold is not None
                                     else metadata.thresholds.get("image", 0.5))
        self.pixel_threshold = float(pixel_threshold if pixel_threshold is not None
                                     else metadata.thresholds.get("pixel", 0.5))

    def __call__(self, image: np.ndarray, outputs: Sequence[np.ndarray]) -> tuple[dict[str, Any], np.ndarray]:
        family = self.metadata.family
        if family == "classifier":
            return self._classifier(image, outputs)
        if family == "anomaly":
            return self._anomaly(image, outputs)
        return self._segmentor(image, outputs)

    def _classifier(self, image, outputs):
        probs = np.asarray(outputs[0]).reshape(-1)
        index = int(probs.argmax())
        confidence = float(probs[index])
        name = self.metadata.class_names[index] if index < len(self.metadata.class_names) else str(index)
        accepted = confidence >= float(self.metadata.thresholds.get("min_confidence", 0.0))
        result = {"decision": name if accepted else "uncertain", "class": name, "confidence": confidence,
                  "probabilities": {n: float(p) for n, p in zip(self.metadata.class_names, probs)}, "regions": []}
        overlay = image.copy()
        scale = max(0.35, min(image.shape[:2]) / 300)
        cv2.putText(overlay, f"{name} {confidence:.2f}", (3, max(12, int(18 * scale))), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 255, 0) if accepted else (0, 165, 255), 1, cv2.LINE_AA)
        return result, overlay

    def _anomaly(self, image, outputs):
        names = self.metadata.outputs
        score = float(np.asarray(outputs[names.index("pred_score")]).reshape(-1)[0])
        anomaly_map = np.asarray(outputs[names.index("anomaly_map")], dtype=np.float32).squeeze()
        heat = cv2.resize(anomaly_map, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        is_defect = score >= self.image_threshold
        mask = (heat >= self.pixel_threshold).astype(np.uint8)
        report = quantify_mask(mask, min_area=self.min_area, rule=self.rule) if is_defect else MaskReport()
        regions = _regions_rows(report, "anomaly")
        result = {"decision": "defect" if is_defect else "good", "score": score,
                  "image_threshold": self.image_threshold, "pixel_threshold": self.pixel_threshold,
                  "num_regions": len(regions), "worst_grade": report.worst_grade, "regions": regions}
        colour = cv2.applyColorMap((np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8), cv2.COLORMAP_JET)
        overlay = cv2.addWeighted(image, 0.55, colour, 0.45, 0)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
        overlay = draw_regions(overlay, report)
        scale = max(0.35, min(image.shape[:2]) / 300)
        cv2.putText(overlay, f"{result['decision']} {score:.2f}/{self.image_threshold:.2f}", (3, image.shape[0] - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 255) if is_defect else (0, 255, 0), 1, cv2.LINE_AA)
        return result, overlay

    def _segmentor(self, image, outputs):
        shape = image.shape[:2]
        resize = self.metadata.resize
        labels = from_model_grid(np.asarray(outputs[0])[0].argmax(0), shape, resize)
        overlay = image.copy()
        tint = image.copy()
        regions, grades = [], []
        reports = []
        for index, name in enumerate(self.metadata.class_names):
            if index == 0:  # background
                continue
            mask = (labels == index).astype(np.uint8)
            if not mask.any():
                continue
            colour = PALETTE[(index - 1) % len(PALETTE)]
            tint[mask > 0] = colour
            report = quantify_mask(mask, min_area=self.min_area, rule=self.rule)
            reports.append((report, colour))
            regions.extend(_regions_rows(report, name))
            grades.append(report.worst_grade)
        overlay = cv2.addWeighted(overlay, 0.6, tint, 0.4, 0)
        for report, colour in reports:
            overlay = draw_regions(overlay, report, colour)
        result: dict[str, Any] = {"decision": "defect" if regions else "good", "num_regions": len(regions),
                                  "worst_grade": _worst(grades), "regions": regions,
                                  "defect_pixels": {name: int((labels == i).sum())
                                                    for i, name in enumerate(self.metadata.class_names) if i}}
        if len(outputs) > 1:
            region = from_model_grid(np.asarray(outputs[1])[0].argmax(0), shape, resize)
            result["region_ratio"] = float(region.mean())
            contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(overlay, contours, -1, (0, 255, 0), 1)
        return result, overlay


# --------------------------------------------------------------------------- runner


def run_inference(model_xml: str | Path, sources: Sequence[str | Path], out_dir: str | Path, *,
                  precision: str = "f32", jobs: int = 0, save_images: bool = True,
                  rule: GradingRule | None = None, min_area: int = 4, image_threshold: float | None = None,
                  pixel_threshold: float | None = None, max_frames: int | None = None, progress: bool = True,
                  num_threads: int | None = None) -> dict[str, Any]:
    """Run ``model_xml`` over ``sources``; write results into ``out_dir``; return the summary.

    ``jobs`` infer requests (0: OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` under the
    ``THROUGHPUT`` hint) run asynchronously in a ring driven from this thread: each new image
    goes to the oldest request once that one is collected (``wait`` + post-processing here), so
    results come in input order and OpenVINO's threads never run Python code (no callbacks).
    """
    from tqdm import tqdm

    metadata = read_metadata(model_xml)
    compiled = compile_model(model_xml, precision, performance_hint="THROUGHPUT", num_threads=num_threads)
    jobs = jobs if jobs > 0 else int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    post = PostProcessor(metadata, rule=rule, min_area=min_area, image_threshold=image_threshold,
                         pixel_threshold=pixel_threshold)
    out_dir = Path(out_dir)
    overlay_dir = out_dir / "overlays"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    size = None if metadata.dynamic else tuple(metadata.input_size)
    num_outputs = len(compiled.outputs)

    results: dict[int, dict[str, Any]] = {}
    failures: list[dict[str, str]] = []
    bar = tqdm(desc=f"defect-infer ({metadata.family}, {precision})", unit="img", disable=not progress)

    def fail(index: int, name: str, error: str) -> None:
        results[index] = {"source": name, "status": "error", "error": error}
        failures.append({"source": name, "error": error})
        bar.update(1)

    def collect(request, index: int, name: str, image: np.ndarray) -> None:
        """Wait for ``request`` (the oldest in flight), post-process its outputs, write the overlay."""
        try:
            request.wait()
            outputs = [request.get_output_tensor(i).data.copy() for i in range(num_outputs)]
        except RuntimeError as error:  # OpenVINO reports a failed inference as RuntimeError
            fail(index, name, f"inference: {error}")
            return
        try:
            result, overlay = post(image, outputs)
        except Exception as error:  # noqa: BLE001 - a bad frame must not stop a production run
            fail(index, name, f"post-processing: {error}")
            return
        result = {"source": name, "status": "ok", **result}
        if save_images:
            overlay_name = f"{index:06d}_{_safe_name(name)}.png"
            try:
                with atomic_path(overlay_dir / overlay_name) as tmp:
                    if not cv2.imwrite(str(tmp), overlay):
                        raise OSError("cv2.imwrite failed")
                result["overlay"] = f"overlays/{overlay_name}"
            except (OSError, cv2.error) as error:  # the decision stands; only the picture is missing
                result["error"] = f"overlay {overlay_name} not written: {error}"
        results[index] = result
        bar.update(1)

    requests = [compiled.create_infer_request() for _ in range(jobs)]
    idle = deque(requests)
    in_flight: deque = deque()  # (request, index, name, image), oldest first
    started = time.perf_counter()
    try:
        for index, (name, item) in enumerate(iter_sources(sources, max_frames=max_frames)):
            if isinstance(item, Exception):
                fail(index, name, str(item))
                continue
            try:
                batch = to_input(item, size, metadata.resize)
            except cv2.error as error:
                fail(index, name, f"resize: {error}")
                continue
            if not idle:
                request, *job = in_flight.popleft()
                collect(request, *job)
                idle.append(request)
            request = idle.popleft()
            try:
                request.start_async({0: batch})  # copies the input; nothing of Python's stays with the request
            except RuntimeError as error:
                idle.append(request)
                fail(index, name, f"inference: {error}")
                continue
            in_flight.append((request, index, name, item))
        while in_flight:
            request, *job = in_flight.popleft()
            collect(request, *job)
            idle.append(request)
    finally:
        for request, *_ in in_flight:  # interrupted: let OpenVINO finish before the requests are released
            with contextlib.suppress(RuntimeError):
                request.wait()
        bar.close()
    wall = time.perf_counter() - started
    del requests, idle

    ordered = [results[i] for i in sorted(results)]
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
    parser.add_argument("model", type=Path, help="model.xml written by defect-export")
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
