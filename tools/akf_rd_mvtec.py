#!/usr/bin/env python
"""The AKF paper's MVTec AD protocol: one model per category, the mean over categories.

Zhao, Wang, Zhu, Xue (2025), "渐进式融合知识蒸馏的工业异常检测方法", Table 2: AKF-RD and
reverse distillation (Deng & Li, CVPR 2022) trained and tested per MVTec AD category (15), image
AUROC / pixel AUROC / AUPRO per category and their mean. This tool runs that protocol through
anomalib's ``Engine`` (``fit`` then ``test``, one fresh model per category) for

* ``akf_rd``: :class:`defect_plugins.anomaly.AkfReverseDistillation`, one run per ``--variants``
  entry (``akf_oce`` is the paper's model; ``akf``, ``concat``, ``concat_oce`` the rest of its
  Table 3; ``akf_literal_oce`` / ``akf_literal`` the literal reading of the fusion without the
  lateral conv, see ``defect_plugins/anomaly/akf_rd/components/fusion.py``), paper optimizer
  Adam(lr 1e-4) unless ``--lr`` / ``--betas`` say otherwise;
* ``rd``: anomalib's ``ReverseDistillation`` (its own hard-coded Adam(0.005, (0.5, 0.99)));
* ``patchcore``: anomalib's ``Patchcore`` (no training; its default coreset ratio 0.1, layers 2-3).

Every model gets the same teacher, input size, pre-processor (resize to ``--image-size``) and
evaluator (AKF-RD's: image AUROC and F1, pixel AUROC and AUPRO).

Resumable: every finished (model, category) run is kept in ``OUT/results.json`` (written
atomically after each run); a second invocation with the same settings skips them, so an
interrupted protocol continues where it stopped. Different settings (epochs, size, teacher,
...) in the same ``OUT`` are refused, naming the key. ``OUT/table.md`` is the per-category table
in the layout of the paper's Table 2 with the mean row, rewritten after each run.

The paper's figures beside ours: only the 15-category means are available in this repository
(``docs/RESULTS.md``, "Paper's figures"); the paper's per-category numbers are not, so the table
has no per-category paper column.

Examples::

    # the paper's setting (internet: ImageNet wide_resnet50_2 from timm's hub; anomalib downloads MVTec AD)
    python tools/akf_rd_mvtec.py --root datasets/MVTecAD --models akf_rd rd --out work_dirs/mvtec
    # offline: a local teacher (torchvision/timm state dict, e.g. from defect-teacher) and a local copy
    python tools/akf_rd_mvtec.py --root /data/MVTecAD --teacher-weights wide_resnet50_2.pth \\
        --categories bottle carpet --models akf_rd rd patchcore --variants akf_oce akf_literal_oce --out work_dirs/mvtec
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

MVTEC_CATEGORIES = ("bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill",
                    "screw", "tile", "toothbrush", "transistor", "wood", "zipper")
VARIANTS = {  # name -> AkfReverseDistillation arguments (the paper's Table 3 plus the literal fusion)
    "akf_oce": {"fusion": "akf", "oce": True},
    "akf": {"fusion": "akf", "oce": False},
    "concat_oce": {"fusion": "concat", "oce": True},
    "concat": {"fusion": "concat", "oce": False},
    "akf_literal_oce": {"fusion": "akf", "oce": True, "akf_lateral": False},
    "akf_literal": {"fusion": "akf", "oce": False, "akf_lateral": False},
}
MODELS = ("akf_rd", "rd", "patchcore")
METRICS = (("image_AUROC", "image AUROC"), ("pixel_AUROC", "pixel AUROC"), ("pixel_AUPRO", "AUPRO"))
# The paper's 15-category means as quoted in docs/RESULTS.md ("Paper's figures"), percent.
PAPER_MEANS = {"AKF-RD (akf_oce)": (99.0, 97.9, 94.8), "RD": (98.5, 97.8, 93.9)}
SETTING_KEYS = ("backbone", "image_size", "epochs", "batch_size", "lr", "betas", "seed", "teacher_weights",
                "pre_trained")


class ProtocolError(ValueError):
    """Bad input or a results file that cannot be resumed; the message names the file or key."""


def run_names(models: Sequence[str], variants: Sequence[str]) -> list[str]:
    """``rd``, ``patchcore`` and ``akf_rd:<variant>`` for every AKF-RD variant, in the order asked."""
    names: list[str] = []
    for model in models:
        names.extend(f"akf_rd:{v}" for v in variants) if model == "akf_rd" else names.append(model)
    return names


def label(name: str) -> str:
    """Column title: ``AKF-RD (akf_oce)``, ``RD``, ``PatchCore``."""
    if name.startswith("akf_rd:"):
        return f"AKF-RD ({name.split(':', 1)[1]})"
    return {"rd": "RD", "patchcore": "PatchCore"}[name]


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """What must match between a run and the results it resumes."""
    return {"backbone": args.backbone, "image_size": args.image_size, "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "betas": list(args.betas), "seed": args.seed,
            "teacher_weights": str(args.teacher_weights.resolve()) if args.teacher_weights else None,
            "pre_trained": args.teacher_weights is None}


def load_results(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Results so far (empty for a new ``OUT``); :class:`ProtocolError` on a bad file or other settings."""
    if not path.exists():
        return {"settings": settings, "runs": {}}
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ProtocolError(f"{path}: not JSON ({error}); move it away to start over") from None
    if not isinstance(results, dict) or not isinstance(results.get("runs"), dict) or \
            not isinstance(results.get("settings"), dict):
        raise ProtocolError(f"{path}: expected an object with 'settings' and 'runs'")
    for key in SETTING_KEYS:
        if results["settings"].get(key) != settings[key]:
            raise ProtocolError(f"{path}: settings.{key} is {results['settings'].get(key)!r} there but "
                                f"{settings[key]!r} now; use another --out or the same settings to resume")
    return results


def build_model(name: str, args: argparse.Namespace) -> Any:  # noqa: ANN401
    """A fresh model of run ``name`` with the shared teacher, pre-processor and evaluator."""
    from anomalib.models import Patchcore, ReverseDistillation

    from defect_plugins.anomaly import AkfReverseDistillation, load_teacher_weights

    size = (args.image_size, args.image_size)
    common = {"pre_processor": AkfReverseDistillation.configure_pre_processor(size),
              "evaluator": AkfReverseDistillation.configure_evaluator(), "visualizer": False}
    pre_trained = args.teacher_weights is None
    if name.startswith("akf_rd:"):
        return AkfReverseDistillation(backbone=args.backbone, image_size=size, pre_trained=pre_trained,
                                      teacher_weights=args.teacher_weights, lr=args.lr, betas=tuple(args.betas),
                                      **VARIANTS[name.split(":", 1)[1]], **common)
    if name == "rd":
        model = ReverseDistillation(backbone=args.backbone, pre_trained=pre_trained, **common)
        extractor = model.model.encoder
    else:
        model = Patchcore(backbone=args.backbone, pre_trained=pre_trained, **common)
        extractor = model.model.feature_extractor
    if args.teacher_weights is not None:
        load_teacher_weights(extractor.feature_extractor, args.teacher_weights)
    return model


def run_one(name: str, category: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (``Engine.fit``) and test (``Engine.test``) one model on one category; return its figures."""
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    from defect_plugins.anomaly.callbacks import EpochProgress

    seed_everything(args.seed, workers=True)
    model = build_model(name, args)
    datamodule = MVTecAD(root=args.root, category=category, train_batch_size=args.batch_size,
                         eval_batch_size=args.batch_size, num_workers=args.num_workers, seed=args.seed)
    engine = Engine(logger=False, default_root_dir=args.out / "runs" / name.replace(":", "_") / category,
                    max_epochs=args.epochs, accelerator=args.accelerator, devices=1, enable_progress_bar=False,
                    enable_model_summary=False, check_val_every_n_epoch=args.epochs,
                    callbacks=[EpochProgress()])
    start = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    return {"metrics": {key: float(value) for key, value in metrics.items()},
            "fit_seconds": round(fit_seconds, 2), "epochs_run": int(engine.trainer.current_epoch),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    return " / ".join(f"{100 * run['metrics'][key]:.1f}" if key in run["metrics"] else "n/a" for key, _ in METRICS)


def render_table(results: dict[str, Any], names: Sequence[str], categories: Sequence[str]) -> str:
    """Markdown: one row per category, one column per model (image AUROC / pixel AUROC / AUPRO, %), mean row."""
    runs = results["runs"]
    head = "| category | " + " | ".join(label(n) for n in names) + " |"
    lines = [f"Per-category results, {' / '.join(t for _, t in METRICS)} in percent (ours, measured).", "",
             head, "|---" * (len(names) + 1) + "|"]
    for category in categories:
        lines.append(f"| {category} | " + " | ".join(_cell(runs.get(f"{n}/{category}")) for n in names) + " |")
    means = []
    for name in names:
        done = [runs[f"{name}/{c}"] for c in categories if f"{name}/{c}" in runs]
        if not done:
            means.append("-")
            continue
        values = []
        for key, _ in METRICS:
            got = [r["metrics"][key] for r in done if key in r["metrics"]]
            values.append(f"{100 * statistics.fmean(got):.1f}" if got else "n/a")
        suffix = "" if len(done) == len(categories) else f" ({len(done)} of {len(categories)})"
        means.append(" / ".join(values) + suffix)
    lines.append("| **mean** | " + " | ".join(means) + " |")
    s = results["settings"]
    teacher = s["teacher_weights"] or "ImageNet weights from timm's hub"
    lines += ["", f"Settings: backbone {s['backbone']}, teacher {teacher}, {s['image_size']} px, {s['epochs']} epochs, "
              f"batch {s['batch_size']}, AKF-RD Adam lr {s['lr']} betas {tuple(s['betas'])}, seed {s['seed']}.", "",
              "The paper's figures (quoted, not measured here; MVTec AD mean of its 15 categories, ImageNet "
              "wide_resnet50_2, 256 px, 100 epochs; from docs/RESULTS.md):", ""]
    lines += [f"- paper's {model}: {' / '.join(f'{v:.1f}' for v in values)}" for model, values in PAPER_MEANS.items()]
    lines += ["", "The paper's per-category figures (its Table 2) are not in this repository, so no per-category "
              "paper column is shown."]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="MVTec AD folder (one sub-folder per category)")
    parser.add_argument("--categories", nargs="+", default=list(MVTEC_CATEGORIES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["akf_rd", "rd"])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["akf_oce"],
                        help="AKF-RD settings (default: akf_oce, the paper's model)")
    parser.add_argument("--out", type=Path, required=True, help="results.json, table.md and the runs go here")
    parser.add_argument("--backbone", default="wide_resnet50_2")
    parser.add_argument("--teacher-weights", type=Path,
                        help="local torchvision/timm state dict for every model's teacher (offline); "
                             "without it the teacher comes from timm's hub")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4, help="AKF-RD Adam learning rate (paper: 1e-4)")
    parser.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999], help="AKF-RD Adam betas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator (auto, cpu, gpu)")
    args = parser.parse_args(argv)
    if args.teacher_weights is not None and not args.teacher_weights.is_file():
        parser.error(f"--teacher-weights {args.teacher_weights}: file not found")
    if args.epochs < 1 or args.image_size < 1 or args.batch_size < 1:
        parser.error("--epochs, --image-size and --batch-size must be at least 1")
    missing = [c for c in args.categories if not (args.root / c).is_dir()]
    if missing and args.teacher_weights is not None:
        parser.error(f"category folders not found under {args.root}: {missing} (offline run: no download)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every (model, category) not yet in ``OUT/results.json``; write the results and the table after each."""
    args = parse_args(argv)
    from defect_plugins.fileio import atomic_write_json, atomic_write_text

    names = run_names(args.models, args.variants)
    results_path, table_path = args.out / "results.json", args.out / "table.md"
    try:
        results = load_results(results_path, settings_of(args))
    except ProtocolError as error:
        print(f"akf_rd_mvtec: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for category in args.categories:
        for name in names:
            key = f"{name}/{category}"
            if key in results["runs"]:
                print(f"[mvtec] {key}: done before, kept", flush=True)
                continue
            print(f"[mvtec] {key}: training and testing", flush=True)
            results["runs"][key] = run_one(name, category, args)
            atomic_write_json(results_path, results, indent=2)
            atomic_write_text(table_path, render_table(results, names, args.categories))
            print(f"[mvtec] {key}: {_cell(results['runs'][key])}", flush=True)
    atomic_write_text(table_path, render_table(results, names, args.categories))
    print(table_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
