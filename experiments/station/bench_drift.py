"""Cost of the drift watch per inspection: ``image_stats`` on the camera image plus ``DriftWatch.observe``.

    python experiments/station/bench_drift.py [--seconds 1.0] [--json bench_drift.json]

The watch must cost well under 1 % of an inspection (the models' inference takes about 20-90 ms on a
factory CPU), so the figure that matters is the median time per inspection. For each image size
(200 x 200 and 1024 x 1024, BGR, textured) this times ``image_stats`` and ``observe`` separately,
each for about ``--seconds`` after a short warm-up, on a watch whose window is already full (the
steady state: every observation also removes the oldest one). OpenCV's own threads are left as
the station leaves them; ``cv2.getNumThreads()`` is recorded.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: the clone's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from defect_plugins.deploy.drift import DriftConfig, DriftReference, DriftWatch, image_stats  # noqa: E402

SIZES = (200, 1024)
INFERENCE_MS = (20.0, 90.0)  # the inference times the watch is compared with


def _image(side: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    noise = cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 1.0)
    grey = np.clip(120 + 20 * noise / max(float(noise.std()), 1e-6), 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _timed(call, seconds: float) -> dict[str, float]:  # noqa: ANN001
    """Median and 95th percentile of ``call()`` in microseconds over about ``seconds``."""
    for _ in range(20):
        call()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    array = np.asarray(times, dtype=np.float64) / 1000.0
    return {"median_us": float(np.median(array)), "p95_us": float(np.percentile(array, 95)), "calls": len(times)}


def measure(seconds: float) -> dict:
    import cv2

    rng = np.random.default_rng(0)
    reference = DriftReference(values={"score": rng.normal(0.3, 0.05, 300), "brightness": rng.normal(120, 5, 300),
                                       "contrast": rng.normal(20, 2, 300), "sharpness": rng.normal(50, 5, 300)})
    figures: dict = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "opencv": cv2.__version__,
                     "opencv_threads": cv2.getNumThreads(), "config": DriftConfig().to_dict(), "sizes": {}}
    for side in SIZES:
        image = _image(side, rng)
        stats = image_stats(image)
        watch = DriftWatch(reference)
        for value in rng.normal(0.3, 0.05, watch.config.window):  # a full window: the steady state
            watch.observe(float(value), stats)
        scores = iter(np.tile(rng.normal(0.3, 0.05, 1000), 10_000_000 // 1000))
        stats_t = _timed(lambda image=image: image_stats(image), seconds)
        observe_t = _timed(lambda w=watch, s=scores, st=stats: w.observe(float(next(s)), st), seconds)
        total = stats_t["median_us"] + observe_t["median_us"]
        figures["sizes"][f"{side}x{side}"] = {
            "image_stats": stats_t, "observe": observe_t, "per_inspection_us": total,
            "share_of_inference_percent": {f"{ms:g} ms": 100 * total / (1000 * ms) for ms in INFERENCE_MS}}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per measurement (default 1 s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    figures = measure(args.seconds)
    for size, row in figures["sizes"].items():
        shares = ", ".join(f"{v:.3f} % of {k}" for k, v in row["share_of_inference_percent"].items())
        print(f"{size}: image_stats {row['image_stats']['median_us']:.0f} us (p95 {row['image_stats']['p95_us']:.0f}), "
              f"observe {row['observe']['median_us']:.0f} us (p95 {row['observe']['p95_us']:.0f}); "
              f"per inspection {row['per_inspection_us']:.0f} us = {shares}")
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, figures, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
