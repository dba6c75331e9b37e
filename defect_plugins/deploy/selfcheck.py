"""Check a runtime-only install: exported models run without torch or any toolkit, and how fast they start.

For every IR given, in fresh interpreters of *this* Python (so the check sees what a factory PC's
environment holds):

1. ``DefectInferencer(xml).predict(image)`` on a synthetic image (or the first of ``--images``),
   then ``predict_many`` over all images with one corrupt file among them: one error result, the
   others in input order. The cold start is the time from spawning that process to its first
   result (interpreter start, imports, reading and compiling the IR, one inference).
2. ``defect-infer``'s code (``python -m defect_plugins.deploy.infer``) over the same folder: every
   readable image processed, the corrupt one reported and counted, ``results.json`` written.

Both processes report the modules they loaded; none of ``FORBIDDEN`` may be among them. The
console script ``defect-infer`` itself is run once more for its exit status when it is on PATH.
Exit status 0 when every check passed.

Command line (CI runs it in a venv made with the README's runtime-only install)::

    python -m defect_plugins.deploy.selfcheck demo_output/cls/export/rkd_student_fp32.xml \\
        demo_output/anomaly/export/akf_rd_fp32.xml demo_output/seg/export/arcd_unet_fp32.xml
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")

_INFERENCER_CHILD = r"""
import json, sys, time
from defect_plugins.deploy import DefectInferencer
from defect_plugins.imaging import list_images

xml, folder, forbidden = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
images = list_images(folder)
inferencer = DefectInferencer(xml, device="CPU", precision="f32")
first = inferencer.predict(str(images[0]))
first_at = time.time()
results = list(inferencer.predict_many(images, jobs=2))
first.overlay()
print(json.dumps({"first_result_epoch": first_at, "family": inferencer.metadata.family,
                  "first": first.to_dict() | {"regions": len(first.regions)},
                  "sources": [r.source for r in results], "statuses": [r.status for r in results],
                  "loaded": sorted(m for m in forbidden if m in sys.modules)}))
"""

_INFER_CHILD = r"""
import json, runpy, sys
forbidden = sys.argv.pop().split(",")
sys.argv = ["defect-infer", *sys.argv[1:]]
try:
    runpy.run_module("defect_plugins.deploy.infer", run_name="__main__")
    code = 0
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"exit": code, "loaded": sorted(m for m in forbidden if m in sys.modules)}))
"""


class SelfCheckError(AssertionError):
    """A runtime-only check failed; the message says which IR and what."""


def _synthetic_images(folder: Path, size: tuple[int, int], count: int = 3) -> list[Path]:
    """A few images at the model's input size (noise plus a bright blob) and one corrupt file."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = rng.integers(60, 120, (*size, 3), dtype=np.uint8)
        cv2.circle(image, (size[1] // (index + 2), size[0] // 2), max(2, min(size) // 8), (230, 230, 230), -1)
        paths.append(folder / f"{index:02d}.png")
        if not cv2.imwrite(str(paths[-1]), image):
            raise OSError(f"cannot write {paths[-1]}")
    (folder / f"{count // 2:02d}_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return paths


def _run_child(code: str, args: Sequence[str], cwd: Path, timeout: float) -> tuple[dict[str, Any], float]:
    """Run ``python -c code args``; return its last JSON line and the spawn time (epoch seconds)."""
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SelfCheckError(f"child process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1]), started


def check_model(xml: Path, work: Path, *, images: Path | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run both checks on one IR; return the figures (raises :class:`SelfCheckError` on a failure)."""
    from defect_plugins.imaging import list_images

    from .inferencer import load_ir

    xml = Path(xml).resolve()
    if not xml.is_file():
        raise SelfCheckError(f"{xml}: no such model")
    _, metadata = load_ir(xml)
    folder = work / xml.stem / "images"
    if images is None:
        size = tuple(metadata.input_size)
        _synthetic_images(folder, size if metadata.resize == "stretch" else (size[0] // 2, size[1]))
    else:
        shutil.copytree(images, folder)
        (folder / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    listed = [str(p) for p in list_images(folder)]
    forbidden = ",".join(FORBIDDEN)
    report, spawned = _run_child(_INFERENCER_CHILD, [str(xml), str(folder), forbidden], work, timeout)
    problems = []
    if report["loaded"]:
        problems.append(f"DefectInferencer imported {report['loaded']}")
    if report["sources"] != listed:
        problems.append("predict_many did not keep the input order")
    if report["statuses"].count("error") != 1 or report["first"]["status"] != "ok":
        problems.append(f"expected exactly the corrupt file to fail, got statuses {report['statuses']}")
    out = work / xml.stem / "defect-infer"
    infer_report, infer_spawned = _run_child(_INFER_CHILD, [str(xml), str(folder), "--out", str(out), "--quiet",
                                                            forbidden], work, timeout)
    infer_s = time.time() - infer_spawned
    if infer_report["loaded"]:
        problems.append(f"defect-infer imported {infer_report['loaded']}")
    summary = {}
    results = out / "results.json"
    if infer_report["exit"] != 1 or not results.is_file():  # 1: one input (the corrupt file) failed
        problems.append(f"defect-infer exited {infer_report['exit']} (expected 1: one input failed) without "
                        f"{results}")
    else:
        summary = json.loads(results.read_text())["summary"]
        if summary["failed"] != 1 or summary["processed"] != len(listed) - 1:
            problems.append(f"defect-infer processed {summary['processed']}, failed {summary['failed']} "
                            f"of {len(listed)} (expected one corrupt file)")
    script = shutil.which("defect-infer")
    if script:
        proc = subprocess.run([script, str(xml), str(folder), "--out", str(work / xml.stem / "script"), "--quiet"],
                              capture_output=True, text=True, timeout=timeout, cwd=work)
        if proc.returncode != 1 or "1 of" not in proc.stderr:  # the corrupt file is counted and reported
            problems.append(f"the defect-infer console script exited {proc.returncode} (expected 1: one input "
                            f"failed): {proc.stderr[-1000:]}")
    if problems:
        raise SelfCheckError(f"{xml}: " + "; ".join(problems))
    return {"model": str(xml), "family": metadata.family, "weights": metadata.precision,
            "cold_start_s": report["first_result_epoch"] - spawned, "first_decision": report["first"]["decision"],
            "defect_infer_s": infer_s, "processed": summary.get("processed"), "failed": summary.get("failed"),
            "console_script": bool(script)}


def environment() -> dict[str, Any]:
    """Which heavy packages this environment has at all (a runtime-only install has none)."""
    return {"python": sys.executable, "installed": sorted(name for name in FORBIDDEN
                                                          if importlib.util.find_spec(name) is not None)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m defect_plugins.deploy.selfcheck",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="model.xml files (any family, or anomalib exports)")
    parser.add_argument("--images", type=Path, help="a folder of real images to use (default: synthetic images)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    env = environment()
    print(f"python {env['python']}; heavy packages installed: {env['installed'] or 'none'}")
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="defect-selfcheck-") as tmp:
        for xml in args.models:
            try:
                row = check_model(xml, Path(tmp), images=args.images)
            except (SelfCheckError, OSError, ValueError, subprocess.TimeoutExpired) as error:
                failed += 1
                print(f"FAIL {error}", file=sys.stderr)
                continue
            rows.append(row)
            print(f"ok   {row['family']:<10} {Path(row['model']).name}: cold start {row['cold_start_s']:.2f} s "
                  f"(process start -> first result), defect-infer {row['defect_infer_s']:.2f} s, "
                  f"{row['processed']} processed / {row['failed']} corrupt reported; "
                  f"no {', '.join(FORBIDDEN)} imported")
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, {"environment": env, "models": rows, "failed": failed}, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
