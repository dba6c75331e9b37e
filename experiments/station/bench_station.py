"""Page round trip of ``defect-station``: one image through every model, median and p95, the inferencer's share.

    python experiments/station/bench_station.py --model cls.xml --model seg.xml --model ad.xml \\
        [--requests 100] [--size 200] [--image part.png] [--json bench_station.json]

Starts the real station (``python -m defect_plugins.station``, a new SQLite file in a temporary
folder, port chosen by the system) and sends the same image ``--requests`` times, one after the
other, as the page does: ``POST /api/inspect`` with the file as the body, until the JSON answer
(every model's result, the preprocessing views and overlays as PNG data URLs, the row written to
SQLite) is read and parsed. The browser's drawing of that answer is not included. Five warm-up
requests are not counted. The default image is a synthetic 200 x 200 grey strip with a dark
blob, the size of a NEU-CLS image.

Reported: round trip (client clock) median and p95; the server's own time per request; the
inferencer's time (the ``DefectInferencer.predict`` calls: model, its pre- and post-processing,
the classifier's Otsu regions), per model and summed, and its share of the round trip (median
of the per-request ratios). The station's target is a median round trip <= 150 ms on the project's
2-core machine with three models.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

TARGET_MEDIAN_MS = 150.0


def synthetic_image(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.normal(150, 6, (size, size)).astype(np.float32), (0, 0), 1.0)
    cv2.circle(image, (size // 2, size // 3), max(2, size // 10), 60.0, -1)
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def percentile(values: list[float], q: float) -> float:
    """p50 / p95 as the package's timing figures compute them (:func:`defect_plugins.deploy.runtime.percentiles_ms`)."""
    from defect_plugins.deploy.runtime import percentiles_ms

    key = {50: "p50_ms", 95: "p95_ms"}[q]
    return percentiles_ms([value / 1000.0 for value in values])[key]


def start_station(models: list[Path], workdir: Path) -> tuple[subprocess.Popen, str]:
    # --no-login: the figure is the page's round trip; a login adds one request per session, not per image
    command = [sys.executable, "-m", "defect_plugins.station", "--port", "0", "--db", str(workdir / "bench.sqlite"),
               "--no-login"]
    for model in models:
        command += ["--model", str(model)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("defect-station: serving "):
            return process, line.split("serving ", 1)[1].strip()
    process.wait(timeout=10)
    raise RuntimeError(f"defect-station did not start (exit {process.returncode})")


def run(models: list[Path], image: bytes, name: str, requests: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        process, url = start_station(models, Path(tmp))
        try:
            rows = []
            for index in range(warmup + requests):
                request = urllib.request.Request(f"{url}api/inspect?name={name}", data=image,
                                                 headers={"Content-Type": "application/octet-stream",
                                                          "X-Requested-With": "defect-station"})
                start = time.perf_counter()
                with urllib.request.urlopen(request, timeout=120) as response:
                    payload = json.loads(response.read())
                elapsed = (time.perf_counter() - start) * 1000.0
                if index >= warmup:
                    rows.append({"round_trip_ms": elapsed, **{f"server_{k}_ms": v
                                                               for k, v in payload["timings_ms"].items()},
                                 "models_ms": {m["name"]: m["latency_ms"] for m in payload["models"]}})
            with urllib.request.urlopen(f"{url}api/status", timeout=30) as response:
                status = json.loads(response.read())
        finally:
            process.terminate()
            process.wait(timeout=30)
    trips = [row["round_trip_ms"] for row in rows]
    inferencer = [row["server_inferencer_ms"] for row in rows]
    names = list(rows[0]["models_ms"])
    return {
        "models": [{key: m[key] for key in ("name", "family", "weights", "precision", "version")}
                   for m in status["models"]],
        "requests": requests, "warmup": warmup, "image_bytes": len(image), "cpu_count": os.cpu_count(),
        "round_trip_ms": {"median": statistics.median(trips), "p95": percentile(trips, 95), "min": min(trips)},
        "server_total_ms": {"median": statistics.median(row["server_total_ms"] for row in rows)},
        "inferencer_ms": {"median": statistics.median(inferencer), "p95": percentile(inferencer, 95),
                          "per_model_median": {n: statistics.median(row["models_ms"][n] for row in rows)
                                               for n in names}},
        "inferencer_share": statistics.median(i / t for i, t in zip(inferencer, trips)),
        "target_median_ms": TARGET_MEDIAN_MS,
        "target_met": statistics.median(trips) <= TARGET_MEDIAN_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", dest="models", action="append", type=Path, required=True, help="model.xml (repeat)")
    parser.add_argument("--requests", type=int, default=100, help="timed requests (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="requests before timing (default 5)")
    parser.add_argument("--size", type=int, default=200, help="side of the synthetic image (default 200)")
    parser.add_argument("--image", type=Path, help="send this file instead of the synthetic image")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.size < 8:
        parser.error("need --requests >= 1, --warmup >= 0, --size >= 8")
    missing = [str(m) for m in args.models if not m.is_file()]
    if missing:
        parser.error(f"model not found: {', '.join(missing)}")
    if args.image:
        image, name = args.image.read_bytes(), args.image.name
    else:
        image, name = cv2.imencode(".png", synthetic_image(args.size))[1].tobytes(), f"synthetic_{args.size}.png"
    figures = run(args.models, image, name, args.requests, args.warmup)
    trip, infer = figures["round_trip_ms"], figures["inferencer_ms"]
    print(f"defect-station page round trip, {figures['requests']} requests of {name} ({len(image)} bytes) "
          f"through {len(figures['models'])} models, {figures['cpu_count']} CPUs:")
    for model in figures["models"]:
        print(f"  {model['name']}: {model['family']}, {model['weights']} weights at {model['precision']}, "
              f"inferencer median {infer['per_model_median'][model['name']]:.1f} ms")
    print(f"round trip median {trip['median']:.1f} ms, p95 {trip['p95']:.1f} ms "
          f"(server {figures['server_total_ms']['median']:.1f} ms)")
    print(f"inferencer median {infer['median']:.1f} ms, p95 {infer['p95']:.1f} ms: "
          f"{100 * figures['inferencer_share']:.0f} % of the round trip")
    print(f"target median <= {TARGET_MEDIAN_MS:.0f} ms: {'met' if figures['target_met'] else 'not met'}")
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, figures, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
