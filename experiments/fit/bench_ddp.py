"""Training images per second of ``defect-fit classifier`` on 1 and on 2 processes (``--nproc``), same data and epochs.

Each run is the product's command on one tiny synthetic set (three classes, random-init ResNet-18, 32 px,
``--no-int8``), kept in its work folder so the training's own records can be read:

* **end to end**: images trained (the ranks' records, :mod:`defect_plugins.fit.rank_hook`; the sampler pads a
  rank's share to equal length) over the training's wall time in the card, which includes starting the
  ``torch.distributed.run`` workers and importing the toolkit in each;
* **steady state**: the global batch over mmengine's mean iteration time (``time`` in rank 0's
  ``scalars.json``, the first logged record of the run left out), i.e. the rate once the workers run.

On a machine with fewer cores than processes x threads, expect nothing from a second process: the two share the
cores. torchrun starts each worker with ``OMP_NUM_THREADS=1`` unless it is set; one process uses torch's default
(one thread per core), so on a machine other jobs also load, the one multi-threaded process suffers most: the
figures record the threads and the load average, and a fair comparison sets ``OMP_NUM_THREADS`` for both.
The figures are for this script's data and machine only; the JSON records both, with the commands.

    python experiments/fit/bench_ddp.py --json experiments/fit/runs/bench_ddp.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a file from a clone: ``experiments.*`` and the package importable
    sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fit_command(data: str, out: str, nproc: int, args: argparse.Namespace) -> list[str]:
    return ["defect-fit", "classifier", data, "--out", out, "--image-size", str(args.image_size), "--epochs",
            str(args.epochs), "--batch-size", str(args.batch_size), "--weights", "none", "--no-int8", "--keep-work",
            "--nproc", str(nproc)]


def steady_seconds_per_iteration(train_dir: Path) -> float | None:
    """Mean of rank 0's logged iteration times, the first record left out (the first iterations warm up)."""
    files = sorted(train_dir.glob("*/vis_data/scalars.json"))
    if not files:
        return None
    times = [json.loads(line)["time"] for line in files[-1].read_text().splitlines()
             if line.strip() and "time" in json.loads(line)]
    times = times[1:] if len(times) > 1 else times
    return sum(times) / len(times) if times else None


def run_one(data: Path, folder: Path, nproc: int, args: argparse.Namespace) -> dict[str, Any]:
    out = folder / f"bundle_nproc{nproc}"
    command = fit_command(str(data), str(out), nproc, args)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "defect_plugins.cli", "fit", *command[1:]], capture_output=True,
                         text=True, timeout=args.timeout)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"--nproc {nproc} failed:\n{run.stdout}\n{run.stderr}")
    card = json.loads((out / "card.json").read_text())
    processes = card["training"]["processes"]
    images = sum(r["images"] for r in processes["ranks"])
    seconds = card["training"]["train_seconds"]
    per_iteration = steady_seconds_per_iteration(out.with_name(out.name + ".work") / "train")
    global_batch = processes["global_batch"]
    return {"nproc": nproc, "world_size": processes["world_size"], "backend": processes["backend"],
            "per_process_batch": processes["per_process_batch"], "global_batch": global_batch,
            "images_trained": images, "train_seconds": seconds,
            "images_per_s_end_to_end": round(images / seconds, 2) if seconds else None,
            "seconds_per_iteration": round(per_iteration, 4) if per_iteration else None,
            "images_per_s_steady": round(global_batch / per_iteration, 2) if per_iteration else None,
            "threads_per_process": processes["ranks"][0].get("threads") if processes["ranks"] else None,
            "fit_wall_seconds": round(wall, 1), "ranks": processes["ranks"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=40, help="synthetic images per class (three classes)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    import torch

    from defect_plugins.data import make_classification_dataset

    folder = Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    try:
        data = make_classification_dataset(folder / "parts", per_class=args.per_class, image_size=args.image_size,
                                           seed=0)
        for extra in ("crazing", "inclusion", "patches"):
            shutil.rmtree(data / extra)
        load_before = os.getloadavg()
        rows = [run_one(data, folder, nproc, args) for nproc in args.nprocs]
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {
        "what": "defect-fit classifier training throughput by --nproc (synthetic NEU-like classes, random init)",
        "commands": [" ".join(fit_command("DATA", f"BUNDLE{n}", n, args)) for n in args.nprocs],
        "data": {"classes": 3, "per_class": args.per_class, "image_size": args.image_size,
                 "train_share": 0.6, "epochs": args.epochs},
        "hardware": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "cuda": torch.cuda.is_available(),
                     "torch": torch.__version__, "python": platform.python_version(),
                     "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)]},
        "runs": rows,
    }
    for row in rows:
        print(f"--nproc {row['nproc']}: {row['images_trained']} images in {row['train_seconds']} s of training "
              f"= {row['images_per_s_end_to_end']} images/s end to end; steady {row['images_per_s_steady']} "
              f"images/s (global batch {row['global_batch']}, {row['seconds_per_iteration']} s per iteration)")
    print(f"hardware: {result['hardware']}")
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result, indent=2)
        print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
