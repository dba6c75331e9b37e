#!/usr/bin/env python
"""Benchmark AKF reverse distillation against anomalib's ReverseDistillation, side by side.

Both models are trained and evaluated in ONE run on the same data, teacher
(backbone + weights), input size, batch size, epochs and optimiser settings,
through anomalib's ``Engine``; both are exported to
OpenVINO through the package's one export path (:func:`defect_plugins.deploy.export.export_model`:
FP32 and, unless ``--no-int8``, INT8 through its accuracy guard, PTQ then NNCF accuracy control).
Timing and INT8 are the package's shared ones (``deploy.runtime``, ``deploy.export``), FLOPs the
deployment study's counter (``experiments.deployment.flops``). Reported per model: parameters (total /
trainable), FLOPs of one forward pass (``torch.utils.flop_counter``), training seconds per epoch, an
interleaved training-step timing (A/B/A/B... so that load from other
processes on the machine hits both models alike), PyTorch latency, OpenVINO
FP32 and INT8 latency at batch 1 and throughput at batch 8 (``ov.AsyncInferQueue``; precision hint
always explicit: f32; OpenVINO would otherwise pick bf16 on this CPU), image
AUROC, pixel AUROC, AUPRO (anomalib metrics), image AUROC of the OpenVINO
FP32/INT8 models, and the f32 parity between PyTorch and OpenVINO.

anomalib's RD has a hard-coded Adam(lr 0.005, betas (0.5, 0.99)); AKF-RD is
given the same optimiser here unless ``--akf-lr``/``--akf-betas`` say otherwise,
so that only the bottleneck differs.

Examples::

    # real data, offline stand-in teacher (used for BOTH models)
    nice -n 10 python experiments/akf_rd/benchmark_akf_rd.py --data ../shared/data/deeppcb_ad --image-size 128 \
        --backbone resnet18 --teacher-weights ../shared/weights/resnet18_steel_neu_128.pth --epochs 40 \
        --out work_dirs/akf/bench_deeppcb_128.json
    # synthetic data made on the fly, random-init teacher
    python experiments/akf_rd/benchmark_akf_rd.py --synthetic --image-size 64 --epochs 10 \
        --out work_dirs/akf/bench_synth.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

from anomalib.deploy import CompressionType, ExportType  # noqa: E402
from anomalib.engine import Engine  # noqa: E402
from anomalib.models import ReverseDistillation  # noqa: E402

from defect_plugins.anomaly import (AkfReverseDistillation, RankPreservingPostProcessor,  # noqa: E402
                                     load_teacher_weights)
from defect_plugins.anomaly.callbacks import EpochTimer  # noqa: E402
from defect_plugins.deploy.export import export_model, load_model, parity  # noqa: E402
from defect_plugins.deploy.families.anomaly import adopt_anomalib_ir  # noqa: E402
from defect_plugins.deploy.export.evaluation import evaluate  # noqa: E402
from defect_plugins.deploy.runtime import compile_model, latency, openvino_predict, throughput, time_calls  # noqa: E402
from defect_plugins.fileio import atomic_write_json  # noqa: E402
from defect_plugins.imaging import list_images, read_bgr  # noqa: E402
from defect_plugins.imaging.geometry import to_input  # noqa: E402
from experiments.deployment.flops import count_gflops  # noqa: E402
from experiments.lib.mvtec_layout import mvtec_layout_datamodule  # noqa: E402

RD_LR, RD_BETAS = 0.005, (0.5, 0.99)  # anomalib ReverseDistillation.configure_optimizers
MODEL_CLASSES = {"rd": "anomalib.models.ReverseDistillation"}  # class paths for the export; AKF-RD otherwise
VARIANTS = {  # name -> (fusion, oce, akf_lateral): the AKF paper's Table 3 settings, plus the literal AKF reading
    "akf_oce": ("akf", True, True),
    "akf": ("akf", False, True),
    "concat_oce": ("concat", True, True),
    "concat": ("concat", False, True),
    "akf_literal_oce": ("akf", True, False),  # no lateral conv on the deeper level (components/fusion.py)
    "akf_literal": ("akf", False, False),
}


def build_model(name: str, args: argparse.Namespace) -> Any:  # noqa: ANN401
    """RD or an AKF-RD variant with the same teacher, size, evaluator and post-processor, no visualiser.

    The post-processor keeps the scores' order (:class:`defect_plugins.anomaly.RankPreservingPostProcessor`):
    anomalib's default clamps them before the evaluator, and the ties change AUROC / AUPRO.
    """
    size = (args.image_size, args.image_size)
    pre_processor = AkfReverseDistillation.configure_pre_processor(size)
    evaluator = AkfReverseDistillation.configure_evaluator()
    if name == "rd":
        model = ReverseDistillation(
            backbone=args.backbone,
            pre_trained=args.pre_trained,
            pre_processor=pre_processor,
            post_processor=RankPreservingPostProcessor(),
            evaluator=evaluator,
            visualizer=False,
        )
        if args.teacher_weights:
            load_teacher_weights(model.model.encoder.feature_extractor, args.teacher_weights)
        return model
    fusion, oce, lateral = VARIANTS[name]
    return AkfReverseDistillation(
        backbone=args.backbone,
        fusion=fusion,
        oce=oce,
        akf_lateral=lateral,
        akf_weights=args.akf_weights,
        image_size=size,
        pre_trained=args.pre_trained,
        teacher_weights=args.teacher_weights,
        lr=args.akf_lr,
        betas=tuple(args.akf_betas),
        post_processor=RankPreservingPostProcessor(),
        evaluator=evaluator,
        visualizer=False,
    )


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:  # noqa: ANN401
    return list(model.model.bottleneck.parameters()) + list(model.model.decoder.parameters())


def count_flops(model: Any, size: int) -> int:  # noqa: ANN401
    """FLOPs of one forward pass of the torch model at batch 1 (the package's counter, MAC = 2 FLOPs)."""
    return int(count_gflops(model.model.eval(), torch.randn(1, 3, size, size)) * 1e9)


def torch_latency_ms(model: Any, size: int, repeats: int) -> float:  # noqa: ANN401
    """Median latency of the full module (pre-processor + model + post-processor), batch 1."""
    model.eval()
    image = torch.rand(1, 3, size, size)
    with torch.no_grad():
        return time_calls(lambda: model(image), runs=repeats, warmup=3)["p50_ms"]


def interleaved_step_seconds(models: dict[str, Any], batch: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median seconds of one training step per model, measured A/B/A/B so machine load hits all alike.

    Each step is one timed call of the package's timing loop (:func:`time_calls`), the models in turn.
    """
    steps, times = {}, {name: [] for name in models}
    for name, model in models.items():
        model.model.train()
        opt = torch.optim.Adam(trainable_parameters(model), lr=1e-6)

        def step(model: Any = model, opt: torch.optim.Optimizer = opt) -> None:  # noqa: ANN401
            opt.zero_grad()
            model.loss(*model.model(batch)).backward()
            opt.step()

        steps[name] = step
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(time_calls(step, runs=1, warmup=0)["mean_ms"] / 1000.0)
    return {name: statistics.median(values[1:] if len(values) > 1 else values) for name, values in times.items()}


def interleaved_latency_ms(calls: dict[str, Any], rounds: int) -> dict[str, float]:
    """Median milliseconds per call, calling the models in turn (A/B/A/B) so machine load hits all alike."""
    for call in calls.values():
        time_calls(call, runs=1, warmup=3)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(time_calls(call, runs=1, warmup=0)["mean_ms"])
    return {name: statistics.median(values) for name, values in times.items()}


def openvino_figures(model: Any, size: int, repeats: int, threads: int, seconds: float) -> dict[str, float]:  # noqa: ANN401
    """Latency p50 at batch 1 (``LATENCY`` hint) and images/s at batch 8 (``THROUGHPUT``), both at f32."""
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    eight = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    compiled = compile_model(model, "f32", num_threads=threads, batch=1)
    compiled_tp = compile_model(model, "f32", performance_hint="THROUGHPUT", num_threads=threads, batch=8)
    return {"latency_ms_b1": latency(compiled, one, runs=repeats, warmup=3)["p50_ms"],
            "throughput_img_s_b8": throughput(compiled_tp, eight, seconds=seconds)["images_per_s"]}


def run_one(name: str, args: argparse.Namespace, data_root: Path, work: Path) -> dict:
    torch.manual_seed(args.seed)
    model = build_model(name, args)
    datamodule = mvtec_layout_datamodule(data_root, batch_size=args.batch_size, seed=args.seed)
    timer = EpochTimer()
    engine = Engine(
        callbacks=[timer],
        logger=False,
        default_root_dir=work / name,
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        # Validate once, after the last epoch: the post-processor takes its score/map normalisation
        # and thresholds from the validation pass (anomalib: validation = test split, "same_as_test").
        check_val_every_n_epoch=args.epochs,
    )
    start = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    result: dict[str, Any] = {
        "params_total": sum(p.numel() for p in model.model.parameters()),
        "params_trainable": sum(p.numel() for p in trainable_parameters(model)),
        "flops": count_flops(model, args.image_size),
        "train_s_per_epoch": statistics.median(timer.seconds[1:] if len(timer.seconds) > 1 else timer.seconds),
        "train_s_per_epoch_mean": statistics.fmean(timer.seconds),
        "fit_seconds": fit_seconds,
        "image_AUROC": metrics.get("image_AUROC"),
        "pixel_AUROC": metrics.get("pixel_AUROC"),
        "pixel_AUPRO": metrics.get("pixel_AUPRO"),
        "image_F1Score": metrics.get("image_F1Score"),
        "torch_latency_ms_b1": torch_latency_ms(model, args.image_size, args.repeats),
    }
    # The package's one export path, from the checkpoint the Engine wrote (uint8 BGR NHWC IR).
    checkpoint = engine.best_model_path
    if not checkpoint:
        msg = f"{name}: the anomalib Engine wrote no checkpoint under {work / name}; cannot export."
        raise FileNotFoundError(msg)
    size = (args.image_size, args.image_size)
    loaded = load_model("anomaly", checkpoint=checkpoint, input_size=size,
                        anomalib_model=MODEL_CLASSES.get(name, "defect_plugins.anomaly.AkfReverseDistillation"))
    fp32_xml, fp32_meta = export_model("anomaly", work / name / "export_fp32" / "model.xml", loaded=loaded)
    # f32 parity on one test image between PyTorch and the FP32 export.
    first = to_input(read_bgr(list_images(data_root / "test" / "good")[0]), size)
    diffs = parity(loaded, fp32_xml, first)
    result["ov_fp32_parity_score_absdiff"] = diffs["pred_score"]
    result["ov_fp32_parity_map_absmax"] = diffs["anomaly_map"]
    for key, value in openvino_figures(fp32_xml, args.image_size, args.repeats, args.threads, args.seconds).items():
        result[f"ov_fp32_{key}"] = value
    result["ov_fp32_image_AUROC"] = evaluate(openvino_predict(fp32_xml), fp32_meta, data_root).value
    result["ov_fp32_xml"] = str(fp32_xml)
    if not args.no_int8:
        # The package's INT8 guard (scoring head in f32; PTQ, then NNCF accuracy control), calibrated on
        # the training images; forced so that it is measured, the report says whether it met the tolerance.
        int8_xml, int8_meta = export_model(
            "anomaly", work / name / "export_int8" / "model.xml", loaded=loaded, precision="INT8",
            calib_dir=data_root / "train" / "good", eval_dir=data_root, tolerance=args.int8_tolerance, force=True,
        )
        for key, value in openvino_figures(int8_xml, args.image_size, args.repeats, args.threads, args.seconds).items():
            result[f"ov_int8_{key}"] = value
        result["ov_int8_image_AUROC"] = int8_meta.quantization["int8"]
        result["ov_int8_quantization"] = {key: int8_meta.quantization[key]
                                          for key in ("path", "drop", "forced", "int8_layers", "float_layers")}
        result["ov_int8_xml"] = str(int8_xml)
    if not args.no_int8 and args.anomalib_int8:
        # anomalib's own INT8_PTQ (whole graph, scoring head included), for comparison; its float RGB
        # NCHW IR is adopted into the uint8 BGR contract to be measured alike.
        import openvino as ov

        anomalib_int8_xml = Path(
            engine.export(
                model=model,
                export_type=ExportType.OPENVINO,
                export_root=work / name / "export_int8_anomalib",
                compression_type=CompressionType.INT8_PTQ,
                datamodule=datamodule,
            ),
        )
        adopted, adopted_meta = adopt_anomalib_ir(ov.Core().read_model(str(anomalib_int8_xml)), anomalib_int8_xml)
        for key, value in openvino_figures(adopted, args.image_size, args.repeats, args.threads, args.seconds).items():
            result[f"ov_int8_anomalib_{key}"] = value
        adopted_meta.input_size = size
        result["ov_int8_anomalib_image_AUROC"] = evaluate(openvino_predict(adopted), adopted_meta, data_root).value
    result["interleaved_model"] = model
    return result


def format_table(results: dict[str, dict]) -> str:
    rows = [
        ("params (M, total)", "params_total", 1e-6, "{:.2f}"),
        ("params (M, trainable)", "params_trainable", 1e-6, "{:.2f}"),
        ("GFLOPs (1 image)", "flops", 1e-9, "{:.2f}"),
        ("train s/epoch (median)", "train_s_per_epoch", 1, "{:.2f}"),
        ("train step s (interleaved)", "step_s_interleaved", 1, "{:.3f}"),
        ("PyTorch latency ms (b1)", "torch_latency_ms_b1", 1, "{:.1f}"),
        ("PyTorch ms (b1, interleaved)", "torch_latency_ms_b1_interleaved", 1, "{:.1f}"),
        ("OV FP32 latency ms (b1)", "ov_fp32_latency_ms_b1", 1, "{:.1f}"),
        ("OV FP32 ms (b1, interleaved)", "ov_fp32_latency_ms_b1_interleaved", 1, "{:.1f}"),
        ("OV FP32 img/s (b8)", "ov_fp32_throughput_img_s_b8", 1, "{:.1f}"),
        ("OV INT8 latency ms (b1)", "ov_int8_latency_ms_b1", 1, "{:.1f}"),
        ("OV INT8 ms (b1, interleaved)", "ov_int8_latency_ms_b1_interleaved", 1, "{:.1f}"),
        ("OV INT8 img/s (b8)", "ov_int8_throughput_img_s_b8", 1, "{:.1f}"),
        ("OV INT8 anomalib-PTQ ms (b1)", "ov_int8_anomalib_latency_ms_b1", 1, "{:.1f}"),
        ("image AUROC", "image_AUROC", 1, "{:.3f}"),
        ("pixel AUROC", "pixel_AUROC", 1, "{:.3f}"),
        ("AUPRO", "pixel_AUPRO", 1, "{:.3f}"),
        ("image F1", "image_F1Score", 1, "{:.3f}"),
        ("OV FP32 image AUROC", "ov_fp32_image_AUROC", 1, "{:.3f}"),
        ("OV INT8 image AUROC", "ov_int8_image_AUROC", 1, "{:.3f}"),
        ("OV INT8 anomalib-PTQ AUROC", "ov_int8_anomalib_image_AUROC", 1, "{:.3f}"),
        ("OV f32 |score diff|", "ov_fp32_parity_score_absdiff", 1, "{:.1e}"),
    ]
    names = list(results)
    width = max(len(r[0]) for r in rows)
    lines = [f"| {'metric':<{width}} | " + " | ".join(f"{n:>12}" for n in names) + " |"]
    lines.append("|" + "-" * (width + 2) + "|" + "|".join("-" * 14 for _ in names) + "|")
    for label, key, scale, fmt in rows:
        cells = []
        for n in names:
            value = results[n].get(key)
            cells.append(f"{fmt.format(value * scale):>12}" if isinstance(value, int | float) else f"{'n/a':>12}")
        lines.append(f"| {label:<{width}} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="MVTec AD layout folder (train/good, test/..., [ground_truth/...])")
    source.add_argument("--synthetic", action="store_true", help="generate the project's synthetic steel data")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--teacher-weights", type=Path, default=None, help="local teacher state_dict, used for BOTH")
    parser.add_argument("--pre-trained", action="store_true", help="ImageNet teacher from the hub (needs internet)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--variants", default="akf_oce", help=f"comma-separated AKF-RD variants of {list(VARIANTS)}")
    parser.add_argument("--akf-weights", choices=["positional", "adaptive", "adaptive_channels", "fixed"],
                        default="positional", help="AKF fusion weights ('fixed': deprecated name of 'positional')")
    parser.add_argument("--akf-lr", type=float, default=RD_LR)
    parser.add_argument("--akf-betas", type=float, nargs=2, default=list(RD_BETAS))
    parser.add_argument("--no-int8", action="store_true", help="skip INT8 post-training quantisation")
    parser.add_argument(
        "--anomalib-int8", action="store_true", help="also export with anomalib's whole-graph INT8_PTQ (slow)",
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats for latency")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each OpenVINO throughput run")
    parser.add_argument("--int8-tolerance", type=float, default=0.01, help="INT8 guard: largest image-AUROC drop")
    parser.add_argument("--step-rounds", type=int, default=8, help="rounds of the interleaved step timing")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenVINO threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=60, help="synthetic training images")
    parser.add_argument("--work-dir", type=Path, default=Path("work_dirs/akf/bench"))
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.teacher_weights is not None and not args.teacher_weights.is_file():
        parser.error(f"--teacher-weights {args.teacher_weights} does not exist")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = args.threads or torch.get_num_threads()
    args.teacher_weights = str(args.teacher_weights) if args.teacher_weights else None
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.synthetic:
        from defect_plugins.data import make_anomaly_dataset

        data_root = work / "synthetic" / f"steel_{args.image_size}_{args.num_train}_{args.seed}"
        if not data_root.exists():
            make_anomaly_dataset(
                data_root, num_train=args.num_train, num_test_good=10, num_test_defect=6,
                image_size=args.image_size, seed=args.seed,
            )
    else:
        data_root = args.data.resolve()
    names = ["rd", *args.variants.split(",")]
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for name in names:
        print(f"[benchmark] {name}: training {args.epochs} epochs on {data_root}", flush=True)
        results[name] = run_one(name, args, data_root, work)
        shown = {k: v for k, v in results[name].items() if k != "interleaved_model"}
        print(f"[benchmark] {name}: {shown}", flush=True)
    step_batch = torch.rand(min(args.batch_size, 8), 3, args.image_size, args.image_size)
    models = {name: results[name].pop("interleaved_model") for name in names}
    for name, seconds in interleaved_step_seconds(models, step_batch, args.step_rounds).items():
        results[name]["step_s_interleaved"] = seconds
    # Latencies again, interleaved across the models (the per-model figures above were taken minutes apart).
    image = torch.rand(1, 3, args.image_size, args.image_size)
    for model in models.values():
        model.eval()
    with torch.no_grad():
        torch_calls = {name: (lambda m=models[name]: m(image)) for name in names}
        for name, value in interleaved_latency_ms(torch_calls, args.repeats * 2).items():
            results[name]["torch_latency_ms_b1_interleaved"] = value
    one = np.random.default_rng(0).integers(0, 256, (1, args.image_size, args.image_size, 3), dtype=np.uint8)
    for kind in ("fp32", "int8"):
        if not all(f"ov_{kind}_xml" in results[name] for name in names):
            continue
        requests = {
            name: compile_model(results[name][f"ov_{kind}_xml"], "f32", num_threads=args.threads, batch=1)
            .create_infer_request()
            for name in names
        }
        ov_calls = {name: (lambda r=requests[name]: r.infer({0: one})) for name in names}
        for name, value in interleaved_latency_ms(ov_calls, args.repeats * 3).items():
            results[name][f"ov_{kind}_latency_ms_b1_interleaved"] = value
    ref = results["rd"]
    for name in names[1:]:
        res = results[name]
        res["ratio_train_s_per_epoch_vs_rd"] = res["train_s_per_epoch"] / ref["train_s_per_epoch"]
        res["ratio_step_interleaved_vs_rd"] = res["step_s_interleaved"] / ref["step_s_interleaved"]
        res["ratio_ov_fp32_latency_vs_rd"] = res["ov_fp32_latency_ms_b1"] / ref["ov_fp32_latency_ms_b1"]
        res["ratio_ov_fp32_latency_interleaved_vs_rd"] = (
            res["ov_fp32_latency_ms_b1_interleaved"] / ref["ov_fp32_latency_ms_b1_interleaved"]
        )
    table = format_table(results)
    meta = {
        "data": str(data_root),
        "image_size": args.image_size,
        "backbone": args.backbone,
        "teacher": args.teacher_weights or ("ImageNet (timm hub)" if args.pre_trained else "random init"),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": {"rd": {"lr": RD_LR, "betas": RD_BETAS}, "akf": {"lr": args.akf_lr, "betas": args.akf_betas}},
        "akf_weights": args.akf_weights,
        "threads": args.threads,
        "openvino_precision_hint": "f32 (explicit; INT8 models: int8 kernels, f32 elsewhere)",
        "int8": (
            "ov_int8 = defect_plugins INT8 guard (scoring head in f32; nncf PTQ, then accuracy control, "
            f"tolerance {args.int8_tolerance}, forced); ov_int8_anomalib = anomalib INT8_PTQ (whole graph)"
        ),
        "hardware": f"{platform.processor() or platform.machine()}, torch threads {args.threads}",
        "command": " ".join(sys.argv),
        "wall_seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, {"meta": meta, "results": results, "table": table}, indent=2, default=str)
    print(table)
    for name in names[1:]:
        res = results[name]
        print(
            f"{name}: train s/epoch {res['ratio_train_s_per_epoch_vs_rd']:.2f}x RD "
            f"(interleaved step {res['ratio_step_interleaved_vs_rd']:.2f}x), "
            f"OV FP32 latency {res['ratio_ov_fp32_latency_vs_rd']:.2f}x RD "
            f"(interleaved {res['ratio_ov_fp32_latency_interleaved_vs_rd']:.2f}x)",
        )
    print(f"[benchmark] wrote {args.out} ({meta['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
