"""Training-step time in float32 and under bf16 autocast, side by side, on this CPU.

The figure behind ``AutocastOptimWrapper``'s ``enabled='auto'`` and the demo's ``--precision auto``
(docs/RESULTS.md, README demo): a torchvision ResNet-18 forward + backward + SGD step, the two
precisions timed in turn (:func:`defect_plugins.deploy.runtime.time_interleaved`), at the demo's
sizes (64 px batch 32: the classifier; 160 px batch 8: AKF-RD's teacher input).

    OMP_NUM_THREADS=1 python experiments/training_precision/bench_training_precision.py --threads 1 \
        --json work_dirs/bench_precision.json
"""
from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
import torchvision

from defect_plugins.deploy.runtime import time_interleaved
from defect_plugins.engine.autocast import native_bf16
from defect_plugins.fileio import atomic_write_json


def train_step(size: int, batch: int, bf16: bool):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 6, (batch, ))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for size, batch in ((64, 32), (160, 8)):
        timed = time_interleaved({"float32": train_step(size, batch, False), "bf16": train_step(size, batch, True)},
                                 runs=args.runs, warmup=2)
        row = {"model": "resnet18", "size": size, "batch": batch, "float32_ms": timed["float32"]["p50_ms"],
               "bf16_ms": timed["bf16"]["p50_ms"]}
        row["speedup"] = row["float32_ms"] / row["bf16_ms"]
        rows.append(row)
        print(f"resnet18 {size} px batch {batch}: float32 {row['float32_ms']:.0f} ms, bf16 autocast "
              f"{row['bf16_ms']:.0f} ms per training step ({row['speedup']:.2f}x)", flush=True)
    report = {"rows": rows, "threads": args.threads, "native_bf16": native_bf16("cpu"),
              "processor": platform.processor() or platform.machine(), "torch": torch.__version__}
    print(f"native bf16 on this CPU: {report['native_bf16']}")
    if args.json is not None:
        atomic_write_json(args.json, report, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
