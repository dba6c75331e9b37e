"""The full demo: all three toolkits on synthetic steel, each exported and run through OpenVINO.

Every training step is the command a user would type (subprocesses, logs under ``OUT/logs``):

1. anomalib: ``defect-synth anomaly`` -> ``anomalib train --config configs/akf_rd_synthetic.yaml``
   (AKF reverse distillation, random-init teacher);
2. mmpretrain: ``defect-synth cls`` -> ``tools/neu_cls_split.py`` -> ``tools/mim_train.sh mmpretrain``
   SARSN-34 teacher -> RKD ResNet-34 student (RKD-SARSN);
3. mmseg: ``defect-synth seg`` -> ``tools/mim_train.sh mmseg`` ARCD stage 1 (reconstruction) ->
   stage 2 (U-Net discrimination + machine-bed region head);

then, for each model, :func:`defect_plugins.deploy.export.export_model` (OpenVINO IR with
preprocessing inside; FP32, and INT8 with the tolerance guard for the classifier),
:func:`defect_plugins.deploy.infer.run_inference` on the held-out images at
``INFERENCE_PRECISION_HINT="f32"`` (decisions, overlays, quantified defect regions), and
:func:`defect_plugins.deploy.report.write_report` for ``OUT/index.html`` + ``OUT/summary.md``.

Sizes are set so that the whole run stays well under 20 minutes on 2 CPU cores; the models are
small and briefly trained, so their numbers show that the pipeline works, not what the methods reach.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .demo import ANOMALY_CONFIG, REPO_ROOT, DemoError, _find_one, _run

MIM_TRAIN = str(REPO_ROOT / "tools" / "mim_train.sh")


def _anomalib() -> list[str]:
    return [sys.executable, "-m", "anomalib.cli.cli"] if shutil.which("anomalib") is None else ["anomalib"]


def run_anomaly(out: Path, logs: Path, *, epochs: int, image_size: int, num_train: int, seed: int) -> dict[str, Any]:
    """anomalib AKF-RD: train, export (anomalib's exporter inside export_model), infer."""
    from .deploy.export import export_model
    from .deploy.infer import run_inference

    data_root, category = out / "data", "steel"
    _run("anomaly-data", [sys.executable, "-m", "defect_plugins.data.cli", "anomaly", str(data_root / category),
                          "--num-train", str(num_train), "--num-test-good", "8", "--num-test-defect", "6",
                          "--size", str(image_size), "--seed", str(seed)], logs)
    _run("anomaly-train", [*_anomalib(), "train", "--config", str(ANOMALY_CONFIG), "--data.root", str(data_root),
                           "--data.category", category, "--model.image_size", f"[{image_size},{image_size}]",
                           "--trainer.max_epochs", str(epochs), "--default_root_dir", str(out / "anomalib"),
                           "--seed_everything", str(seed)], logs)
    checkpoint = _find_one(out / "anomalib", "*.ckpt")
    xml, metadata = export_model("anomaly", out / "export" / "akf_rd_fp32.xml", checkpoint=checkpoint)
    summary = run_inference(xml, [data_root / category / "test"], out / "results", progress=False)
    from .deploy.int8 import evaluate, openvino_predict

    auroc = evaluate(openvino_predict(xml, "f32"), metadata, data_root / category)
    return {"model": str(xml), "image_auroc_openvino_f32": round(auroc.value, 4), "inference": summary}


def _cls_overrides(data: Path, split: Path, epochs: int) -> list[str]:
    options = []
    for loader in ("train_dataloader", "val_dataloader"):
        ann = split / ("train.txt" if loader == "train_dataloader" else "test.txt")
        options += [f"{loader}.dataset.data_prefix={data}", f"{loader}.dataset.ann_file={ann}"]
    return options + [f"train_cfg.max_epochs={epochs}", f"train_cfg.val_interval={epochs}",
                      f"param_scheduler.1.T_max={max(1, epochs - 2)}", f"param_scheduler.1.end={epochs}",
                      f"default_hooks.checkpoint.interval={epochs}", "train_dataloader.batch_size=16"]


def run_classification(out: Path, logs: Path, *, epochs: int, per_class: int, seed: int) -> dict[str, Any]:
    """mmpretrain SARSN-34 teacher -> RKD ResNet-34 student; export FP32 + INT8; infer."""
    from .deploy.export import export_model, load_model
    from .deploy.infer import run_inference
    from .deploy.int8 import QuantizationToleranceError

    data, split = out / "data", out / "split"
    _run("cls-data", [sys.executable, "-m", "defect_plugins.data.cli", "cls", str(data), "--per-class",
                      str(per_class), "--size", "64", "--seed", str(seed)], logs)
    _run("cls-split", [sys.executable, str(REPO_ROOT / "tools" / "neu_cls_split.py"), str(data), "--out", str(split),
                       "--seed", str(seed)], logs)
    options = _cls_overrides(data, split, epochs)
    teacher_dir, student_dir = out / "sarsn34_teacher", out / "rkd_resnet34_student"
    _run("cls-train-teacher", ["bash", MIM_TRAIN, "mmpretrain", "configs/neu_cls/sarsn34_neu_cls_64.py",
                               "--work-dir", str(teacher_dir), "--cfg-options", *options], logs)
    teacher = _find_one(teacher_dir, "epoch_*.pth")
    student_config = "configs/neu_cls/rkd_sarsn34_resnet34_neu_cls_64.py"
    _run("cls-train-student", ["bash", MIM_TRAIN, "mmpretrain", student_config, "--work-dir", str(student_dir),
                               "--cfg-options", *options, f"model.teacher_checkpoint={teacher}"], logs)
    checkpoint = _find_one(student_dir, "epoch_*.pth")
    # a labelled folder of the held-out split for the INT8 metric and the inference run
    test_dir = out / "test_images"
    for line in (split / "test.txt").read_text().splitlines():
        if line.strip():
            rel = line.split()[0]
            (test_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(data / rel, test_dir / rel)
    loaded = load_model("classifier", config=REPO_ROOT / student_config, checkpoint=checkpoint)
    fp32, _ = export_model("classifier", out / "export" / "rkd_student_fp32.xml", loaded=loaded)
    result: dict[str, Any] = {"model": str(fp32)}
    try:
        int8, metadata = export_model("classifier", out / "export" / "rkd_student_int8.xml", loaded=loaded,
                                      precision="INT8", calib_dir=data, eval_dir=test_dir, tolerance=0.02)
        result["int8"] = {"model": str(int8), **(metadata.quantization or {})}
    except QuantizationToleranceError as error:
        result["int8"] = {"refused": str(error)}
    result["inference"] = run_inference(fp32, [test_dir], out / "results", progress=False)
    return result


def run_segmentation(out: Path, logs: Path, *, iters: int, scale: int, seed: int) -> dict[str, Any]:
    """mmseg ARCD: stage 1 reconstruction, stage 2 U-Net with region head; export; infer."""
    from .deploy.export import export_model
    from .deploy.infer import run_inference

    data = out / "data"
    _run("seg-data", [sys.executable, "-m", "defect_plugins.data.cli", "seg", str(data), "--seed", str(seed)], logs)
    common = [f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={iters}",
              f"default_hooks.checkpoint.interval={iters}",
              f"train_dataloader.dataset.data_root={data}", f"val_dataloader.dataset.data_root={data}",
              f"test_dataloader.dataset.data_root={data}",
              f"val_dataloader.dataset.pipeline.1.scale={scale}", f"test_dataloader.dataset.pipeline.1.scale={scale}"]
    # PadSquareResize is step 1 of the stage-1 training pipeline and step 3 of stage 2's (after the label loaders)
    stage1, stage2 = out / "arcd_stage1", out / "arcd_stage2"
    _run("seg-train-stage1", ["bash", MIM_TRAIN, "mmseg", "configs/arcd/arcd_stage1_recon_strip.py",
                              "--work-dir", str(stage1), "--cfg-options", *common,
                              f"train_dataloader.dataset.pipeline.1.scale={scale}",
                              "param_scheduler.0.milestones=[1000000]"], logs)
    config = REPO_ROOT / "configs" / "arcd" / "arcd_stage2_unet_strip.py"
    _run("seg-train-stage2", ["bash", MIM_TRAIN, "mmseg", str(config), "--work-dir", str(stage2), "--cfg-options",
                              *common, f"train_dataloader.dataset.pipeline.3.scale={scale}",
                              f"model.reconstructor_checkpoint={stage1}", f"param_scheduler.0.end={iters}"],
         logs)
    checkpoint = _find_one(stage2, "iter_*.pth")
    # the stage-2 checkpoint holds the reconstructor too; the geometry (pad to square, resize) comes
    # from the config's test pipeline, the trained scale from here
    xml, _ = export_model("segmentor", out / "export" / "arcd_unet_fp32.xml", config=config, checkpoint=checkpoint,
                          input_size=(scale, scale))
    summary = run_inference(xml, [data / "img_dir" / "val"], out / "results", progress=False)
    return {"model": str(xml), "inference": summary}


def main(argv: list[str] | None = None) -> int:
    from .deploy.report import Section, write_report

    parser = argparse.ArgumentParser(prog="defect-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (must be new or empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anomaly-epochs", type=int, default=8)
    parser.add_argument("--anomaly-size", type=int, default=96)
    parser.add_argument("--anomaly-train", type=int, default=60)
    parser.add_argument("--cls-epochs", type=int, default=6)
    parser.add_argument("--cls-per-class", type=int, default=20)
    parser.add_argument("--seg-iters", type=int, default=60)
    parser.add_argument("--seg-scale", type=int, default=128)
    parser.add_argument("--only", nargs="+", choices=("anomaly", "cls", "seg"), default=["anomaly", "cls", "seg"])
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"output folder {args.out} exists and is not empty")
    out = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    sections = []
    steps = {
        "anomaly": ("anomalib: AKF reverse distillation", lambda o: run_anomaly(
            o, logs, epochs=args.anomaly_epochs, image_size=args.anomaly_size, num_train=args.anomaly_train,
            seed=args.seed)),
        "cls": ("mmpretrain: RKD-SARSN (SARSN-34 teacher -> ResNet-34 student)", lambda o: run_classification(
            o, logs, epochs=args.cls_epochs, per_class=args.cls_per_class, seed=args.seed)),
        "seg": ("mmseg: ARCD (U-Net, region head)", lambda o: run_segmentation(
            o, logs, iters=args.seg_iters, scale=args.seg_scale, seed=args.seed)),
    }
    try:
        for key in args.only:
            title, step = steps[key]
            step_start = time.perf_counter()
            print(f"[demo-all] {title}", flush=True)
            result = step(out / key)
            result["seconds"] = round(time.perf_counter() - step_start, 1)
            summary[key] = result
            figures = {"seconds": result["seconds"], "openvino model": Path(result["model"]).name}
            if "image_auroc_openvino_f32" in result:
                figures["image AUROC (OpenVINO f32)"] = result["image_auroc_openvino_f32"]
            if "int8" in result:
                figures["INT8"] = {k: result["int8"][k] for k in ("metric", "fp32", "int8", "drop")
                                   if k in result["int8"]} or result["int8"]
            sections.append(Section(title, out / key / "results", figures))
    except DemoError as error:
        print(f"defect-demo-all: error: {error}", file=sys.stderr)
        return 1
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    page = write_report(out, sections, title="defect-plugins demo: anomalib, mmpretrain and mmseg on OpenVINO")
    print(f"[demo-all] done in {summary['seconds']} s; summary page {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
