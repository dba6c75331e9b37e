"""The README's main demo: synthetic steel -> anomalib training -> OpenVINO export -> CPU inference.

Every step uses the tool a user would run by hand, as a subprocess, so the demo shows (and
checks) the real command lines:

1. ``defect-synth anomaly`` writes a small MVTec-AD-layout data set of synthetic rolled steel;
2. ``anomalib train --config configs/akf_rd_synthetic.yaml`` trains AKF reverse distillation
   with a random-init teacher (nothing is downloaded);
3. ``anomalib export --export_type openvino`` writes the OpenVINO IR;
4. anomalib's :class:`~anomalib.deploy.OpenVINOInferencer` scores every test image on the CPU,
   at an explicit f32 precision (OpenVINO's bf16 default on recent CPUs changes scores), and
   the demo writes ``scores.csv``, one heatmap overlay per image and ``summary.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from defect_plugins.fileio import atomic_path, atomic_write_json

from .runner import DemoError, StepRunner, latest

ANOMALY_CONFIG = "akf_rd_synthetic.yaml"  # packaged: defect_plugins/configs/
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def _heatmap_overlay(image_rgb: np.ndarray, anomaly_map: np.ndarray) -> np.ndarray:
    import cv2

    heat = cv2.resize(anomaly_map.astype(np.float32), image_rgb.shape[1::-1])
    heat = np.clip(heat, 0.0, 1.0)  # the exported post-processor normalises maps: 0.5 is the threshold
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    overlay = cv2.addWeighted(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), 0.55, colour, 0.45, 0)
    contours, _ = cv2.findContours((heat >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(overlay, contours, -1, (255, 255, 255), 1)
    return overlay


def run_anomaly_demo(out: Path, *, epochs: int, image_size: int, num_train: int, seed: int) -> dict:
    """Train, export and run AKF-RD on synthetic steel; return the summary written to disk."""
    import cv2
    from anomalib.deploy import OpenVINOInferencer
    from sklearn.metrics import roc_auc_score

    from defect_plugins.packaged_configs import resolve_config

    steps = StepRunner(out / "logs", cwd=out)
    data_root, category = out / "data", "steel"
    started = time.perf_counter()
    steps.run("make-data", [
        sys.executable, "-m", "defect_plugins.data.cli", "anomaly", str(data_root / category),
        "--num-train", str(num_train), "--num-test-good", "8", "--num-test-defect", "6",
        "--size", str(image_size), "--seed", str(seed),
    ])
    anomalib = [sys.executable, "-m", "anomalib.cli.cli"] if shutil.which("anomalib") is None else ["anomalib"]
    steps.run("train", [
        *anomalib, "train", "--config", str(resolve_config(ANOMALY_CONFIG)),
        "--data.root", str(data_root), "--data.category", category,
        "--model.image_size", f"[{image_size},{image_size}]",
        "--trainer.max_epochs", str(epochs), "--default_root_dir", str(out / "anomalib"),
        "--seed_everything", str(seed),
    ])
    checkpoint = latest(out / "anomalib", "*.ckpt")
    steps.run("export", [
        *anomalib, "export", "--model", "defect_plugins.anomaly.AkfReverseDistillation",
        "--model.pre_trained", "false", "--model.image_size", f"[{image_size},{image_size}]",
        "--export_type", "openvino", "--ckpt_path", str(checkpoint), "--export_root", str(out / "export"),
    ])
    model_xml = latest(out / "export", "model.xml")

    inferencer = OpenVINOInferencer(path=model_xml, device="CPU", config=F32)
    heatmaps = out / "heatmaps"
    heatmaps.mkdir(exist_ok=True)
    rows = []
    for image_path in sorted((data_root / category / "test").rglob("*.png")):
        prediction = inferencer.predict(image_path)
        score = float(np.asarray(prediction.pred_score).reshape(-1)[0])
        anomaly_map = np.asarray(prediction.anomaly_map).squeeze()
        image = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
        name = f"{image_path.parent.name}_{image_path.stem}.png"
        with atomic_path(heatmaps / name) as tmp:
            if not cv2.imwrite(str(tmp), _heatmap_overlay(image, anomaly_map)):
                raise DemoError(f"could not write {heatmaps / name}")
        rows.append({"image": str(image_path.relative_to(data_root)), "truth": image_path.parent.name,
                     "score": round(score, 6), "decision": "defect" if score >= 0.5 else "good"})
    with atomic_path(out / "scores.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    labels = [row["truth"] != "good" for row in rows]
    summary = {
        "model": "AkfReverseDistillation (resnet18 teacher, random init: offline demo)",
        "image_size": image_size, "epochs": epochs, "train_images": num_train,
        "test_images": len(rows), "openvino_model": str(model_xml), "openvino_precision": "f32",
        "image_auroc_openvino": round(float(roc_auc_score(labels, [row["score"] for row in rows])), 4),
        "decision_accuracy": round(float(np.mean([(row["decision"] == "defect") == t
                                                  for row, t in zip(rows, labels)])), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_json(out / "summary.json", summary, indent=2)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="defect-demo-anomaly", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (must be new or empty)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--num-train", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.image_size < 32 or args.num_train < 1:
        parser.error("--epochs and --num-train must be >= 1 and --image-size >= 32")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"output folder {args.out} exists and is not empty")
    out = args.out.resolve()
    try:
        summary = run_anomaly_demo(out, epochs=args.epochs, image_size=args.image_size,
                                   num_train=args.num_train, seed=args.seed)
    except DemoError as error:
        print(f"defect-demo: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    print(f"[demo] scores: {out / 'scores.csv'}  heatmaps: {out / 'heatmaps'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
