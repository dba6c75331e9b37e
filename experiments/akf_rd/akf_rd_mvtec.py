#!/usr/bin/env python
"""The AKF paper's MVTec AD protocol: one model per category and seed, the mean over categories.

Zhao, Wang, Zhu, Xue (2025), "渐进式融合知识蒸馏的工业异常检测方法", Table 2: AKF-RD and
reverse distillation (Deng & Li, CVPR 2022) trained and tested per MVTec AD category (15), image
AUROC / pixel AUROC / AUPRO per category and their mean. This tool runs that protocol through
anomalib's ``Engine`` (``fit`` then ``test``, one fresh model per category and seed) for

* ``akf_rd``: :class:`defect_plugins.anomaly.AkfReverseDistillation`, one run per ``--variants``
  entry (``akf_oce`` is the paper's model; ``akf``, ``concat``, ``concat_oce`` the rest of its
  Table 3; ``akf_literal_oce`` / ``akf_literal`` the literal reading of the fusion without the
  lateral conv, see ``defect_plugins/anomaly/akf_rd/components/fusion.py``) and per
  ``--akf-optimizers`` entry: ``paper`` is Adam(``--lr``, ``--betas``) (the paper: lr 1e-4),
  ``rd`` anomalib RD's hard-coded Adam(0.005, (0.5, 0.99)), so that only the bottleneck differs
  from ``rd`` (run name ``akf_rd:<variant>@rd``);
* ``rd``: anomalib's ``ReverseDistillation`` (its own hard-coded Adam(0.005, (0.5, 0.99)));
* ``patchcore``: anomalib's ``Patchcore`` (no training; its default coreset ratio 0.1, layers 2-3).

Every model gets the same teacher, input size, pre-processor (resize to ``--image-size``),
evaluator (AKF-RD's: image AUROC and F1, pixel AUROC and AUPRO) and post-processor:
:class:`defect_plugins.anomaly.RankPreservingPostProcessor`, anomalib's with a strictly increasing
normalisation, because anomalib's clamps scores to [0, 1] before the evaluator sees them and the
resulting ties change each model's AUROC / AUPRO by a different amount (see that module).

A "category" is any folder ``ROOT/<category>`` in the MVTec AD layout
(:func:`experiments.lib.mvtec_layout.mvtec_layout_datamodule`): with ``ground_truth`` it is read
by anomalib's ``MVTecAD``, without it by ``Folder`` (image metrics only), so DeepPCB or a single MVTec
category linked into one folder run the same way.

Seeds (``--seeds 0 1 2``) run one after another, each seed over every category and model, so
a protocol cut short still holds complete pairs. With several seeds ``OUT/table.md`` adds mean
+- sd per model and category and the paired per-seed differences against each ``--reference``
model (:mod:`experiments.lib.stats`), per category and on the mean over categories.
Training seconds per epoch (median over epochs, validation excluded) are kept per run.
``--once patchcore`` runs a model for the first seed only: PatchCore has no training (its one random
step is the coreset's start point), so further seeds cost CPU and measure almost nothing; differences
against such a model take its one run for every seed (said so above that table).
``--latency`` also exports each model of the first seed, right after its training, through the package's
one export path (:func:`defect_plugins.deploy.export.export_model`, what ``defect-export anomaly`` runs; FP32) to
``OUT/ir/<run>/<category>.xml`` and times the IRs of a category interleaved (OpenVINO, f32 hint,
batch 1, :func:`defect_plugins.deploy.runtime.time_interleaved`).

Teachers: ``--teacher-weights FILE`` (a local torchvision/timm state dict, e.g. from ``defect-teacher``)
for every model, ``--random-teacher`` for a randomly initialised one (the floor), neither for
timm's ImageNet download. ``--against LABEL=OTHER_OUT`` pairs every model, seed by seed, with the same
model in another results folder of the same protocol (another teacher): how much the teacher matters.

Resumable: every finished (model, category, seed) run is kept in ``OUT/results.json`` (written
atomically after each run); a second invocation with the same settings skips them, so an
interrupted protocol continues where it stopped. Different settings (epochs, size, teacher,
...) in the same ``OUT`` are refused, naming the key. ``OUT/table.md`` is rewritten after each run.

The paper's figures beside ours: only the 15-category means are available in this repository
(``docs/RESULTS.md``, "Paper's figures"); the paper's per-category numbers are not, so the table
has no per-category paper column.

Examples::

    # the paper's setting (internet: ImageNet wide_resnet50_2 from timm's hub; anomalib downloads MVTec AD)
    python experiments/akf_rd/akf_rd_mvtec.py --root datasets/MVTecAD --models akf_rd rd --out work_dirs/mvtec
    # offline: a local teacher (torchvision/timm state dict, e.g. from defect-teacher) and a local copy
    python experiments/akf_rd/akf_rd_mvtec.py --root /data/MVTecAD --teacher-weights wide_resnet50_2.pth \\
        --categories bottle carpet --models akf_rd rd patchcore --variants akf_oce akf_literal_oce --out work_dirs/mvtec
    # the comparison of runs/rd_patchcore_3seeds/compare: DeepPCB and MVTec bottle linked into one folder,
    # 3 seeds, paired against RD
    python experiments/akf_rd/akf_rd_mvtec.py --root work_dirs/ad --categories deeppcb bottle --backbone resnet18 \\
        --teacher-weights steel_resnet18.pth --image-size 128 --epochs 40 --batch-size 16 \\
        --models akf_rd rd patchcore --akf-optimizers paper rd --seeds 0 1 2 --once patchcore \\
        --reference rd patchcore --latency --out work_dirs/akf/compare
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

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
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
AKF_OPTIMIZERS = ("paper", "rd")
RD_ADAM = (0.005, (0.5, 0.99))  # anomalib ReverseDistillation.configure_optimizers (hard-coded)
METRICS = (("image_AUROC", "image AUROC"), ("pixel_AUROC", "pixel AUROC"), ("pixel_AUPRO", "AUPRO"))
# The paper's 15-category means as quoted in docs/RESULTS.md ("Paper's figures"), percent.
PAPER_MEANS = {"AKF-RD (akf_oce)": (99.0, 97.9, 94.8), "RD": (98.5, 97.8, 93.9)}
RANDOM_TEACHER = "random init"  # settings.teacher_weights of --random-teacher
SCORES = "rank-preserving"  # settings.scores: metrics on RankPreservingPostProcessor's scores, not clamped ones
SETTING_KEYS = ("root", "scores", "backbone", "image_size", "epochs", "batch_size", "lr", "betas", "teacher_weights",
                "pre_trained")


class ProtocolError(ValueError):
    """Bad input or a results file that cannot be resumed; the message names the file or key."""


# --------------------------------------------------------------------------- runs and settings


def run_names(models: Sequence[str], variants: Sequence[str], optimizers: Sequence[str] = ("paper",)) -> list[str]:
    """``rd``, ``patchcore`` and ``akf_rd:<variant>`` (``@rd`` with RD's optimizer), in the order asked."""
    names: list[str] = []
    for model in models:
        if model != "akf_rd":
            names.append(model)
            continue
        for optimizer in optimizers:
            names.extend(f"akf_rd:{v}" + ("" if optimizer == "paper" else f"@{optimizer}") for v in variants)
    return names


def label(name: str) -> str:
    """Column title: ``AKF-RD (akf_oce)``, ``AKF-RD (akf_oce, RD's Adam)``, ``RD``, ``PatchCore``."""
    if name.startswith("akf_rd:"):
        variant, _, optimizer = name.split(":", 1)[1].partition("@")
        return f"AKF-RD ({variant}{', RD' + chr(39) + 's Adam' if optimizer == 'rd' else ''})"
    return {"rd": "RD", "patchcore": "PatchCore"}[name]


def run_key(name: str, category: str, seed: int) -> str:
    return f"{name}/{category}/seed{seed}"


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """What must match between a run and the results it resumes (seeds may be added)."""
    return {"root": str(args.root.resolve()), "scores": SCORES, "backbone": args.backbone,
            "image_size": args.image_size, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "betas": list(args.betas),
            "teacher_weights": RANDOM_TEACHER if args.random_teacher else
            str(args.teacher_weights.resolve()) if args.teacher_weights else None,
            "pre_trained": args.teacher_weights is None and not args.random_teacher}


def load_results(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Results so far (empty for a new ``OUT``); :class:`ProtocolError` on a bad file or other settings."""
    if not path.exists():
        return {"settings": settings, "runs": {}, "latency_ms": {}}
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
    bad = [key for key in results["runs"] if key.count("/") != 2 or not key.rsplit("/", 1)[1].startswith("seed")]
    if bad:
        raise ProtocolError(f"{path}: run keys must read MODEL/CATEGORY/seedN, found {bad[:3]} (a file of an "
                            "older layout: use another --out)")
    results.setdefault("latency_ms", {})
    return results


# --------------------------------------------------------------------------- one run


def build_model(name: str, args: argparse.Namespace) -> Any:  # noqa: ANN401
    """A fresh model of run ``name`` with the shared teacher, pre-processor and evaluator."""
    from anomalib.models import Patchcore, ReverseDistillation

    from defect_plugins.anomaly import AkfReverseDistillation, RankPreservingPostProcessor, load_teacher_weights

    size = (args.image_size, args.image_size)
    common = {"pre_processor": AkfReverseDistillation.configure_pre_processor(size),
              "post_processor": RankPreservingPostProcessor(),
              "evaluator": AkfReverseDistillation.configure_evaluator(), "visualizer": False}
    pre_trained = args.teacher_weights is None and not args.random_teacher
    if name.startswith("akf_rd:"):
        variant, _, optimizer = name.split(":", 1)[1].partition("@")
        lr, betas = RD_ADAM if optimizer == "rd" else (args.lr, tuple(args.betas))
        return AkfReverseDistillation(backbone=args.backbone, image_size=size, pre_trained=pre_trained,
                                      teacher_weights=args.teacher_weights, lr=lr, betas=betas,
                                      **VARIANTS[variant], **common)
    if name == "rd":
        model = ReverseDistillation(backbone=args.backbone, pre_trained=pre_trained, **common)
        extractor = model.model.encoder
    else:
        model = Patchcore(backbone=args.backbone, pre_trained=pre_trained, **common)
        extractor = model.model.feature_extractor
    if args.teacher_weights is not None:
        load_teacher_weights(extractor.feature_extractor, args.teacher_weights)
    return model


def ir_path(out: Path, name: str, category: str) -> Path:
    return out / "ir" / name.replace(":", "_").replace("@", "_") / f"{category}.xml"


def run_one(name: str, category: str, seed: int, args: argparse.Namespace, *, export: bool) -> dict[str, Any]:
    """Train (``Engine.fit``) and test (``Engine.test``) one model on one category; return its figures.

    ``export``: also write the trained model's checkpoint and its FP32 IR (:func:`ir_path`).
    """
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything

    from defect_plugins.anomaly.callbacks import EpochProgress, EpochTimer
    from experiments.lib.mvtec_layout import mvtec_layout_datamodule
    seed_everything(seed, workers=True)
    model = build_model(name, args)
    datamodule = mvtec_layout_datamodule(args.root / category, batch_size=args.batch_size, seed=seed,
                                         num_workers=args.num_workers)
    run_dir = args.out / "runs" / name.replace(":", "_").replace("@", "_") / category / f"seed{seed}"
    timer = EpochTimer()
    # PatchCore makes one pass (its trainer_arguments set max_epochs 1, which the Engine applies); the one
    # validation pass, which sets the post-processor's thresholds, must come after the last epoch it runs
    epochs = int(model.trainer_arguments.get("max_epochs", args.epochs))
    engine = Engine(logger=False, default_root_dir=run_dir, max_epochs=epochs, accelerator=args.accelerator,
                    devices=1, enable_progress_bar=False, enable_model_summary=False,
                    check_val_every_n_epoch=epochs, callbacks=[EpochProgress(), timer])
    start = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    result = {"metrics": {key: float(value) for key, value in metrics.items()},
              "fit_seconds": round(fit_seconds, 2), "epochs_run": int(engine.trainer.current_epoch),
              "train_s_per_epoch": round(statistics.median(timer.seconds), 3) if timer.seconds else None,
              "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if export:  # the package's one export path, from the trained module (no checkpoint round trip)
        from defect_plugins.deploy.export import export_model
        from defect_plugins.deploy.export.families.anomaly import from_module

        size = (args.image_size, args.image_size)
        loaded = from_module(model, input_size=size,
                             source={"framework": "anomalib", "run": run_key(name, category, seed)})
        xml, _ = export_model("anomaly", ir_path(args.out, name, category), input_size=size, loaded=loaded)
        result["ir"] = str(xml)
    return result


def time_category(results: dict[str, Any], names: Sequence[str], category: str, args: argparse.Namespace) -> None:
    """Median OpenVINO f32 latency at batch 1 of the category's IRs, timed interleaved, into ``latency_ms``.

    Only when every model's IR is on disk: figures are compared only when timed side by side, so a
    category whose IRs are partly missing (results copied from another machine) keeps its earlier
    figures, and the models that lack an IR are named.
    """
    import numpy as np

    from defect_plugins.deploy.runtime import f32_compile, time_interleaved

    seed = args.seeds[0]
    irs = {n: results["runs"].get(run_key(n, category, seed), {}).get("ir") for n in names}
    missing = sorted(n for n, xml in irs.items() if not xml or not Path(xml).is_file())
    if missing:
        print(f"[mvtec] not timing {category}: no OpenVINO IR on disk for {', '.join(missing)} "
              f"(latency is compared only when timed together); earlier figures kept", flush=True)
        return
    image = np.random.default_rng(0).integers(0, 256, (1, args.image_size, args.image_size, 3), dtype=np.uint8)
    requests = {n: f32_compile(xml, batch=1).create_infer_request() for n, xml in irs.items()}
    timings = time_interleaved({n: (lambda r=r: r.infer({0: image})) for n, r in requests.items()},
                               runs=args.latency_runs)
    results["latency_ms"][category] = {n: round(t["p50_ms"], 2) for n, t in timings.items()}


# --------------------------------------------------------------------------- tables


def _cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    return " / ".join(f"{100 * run['metrics'][key]:.1f}" if key in run["metrics"] else "n/a" for key, _ in METRICS)


def per_seed(results: dict[str, Any], name: str, category: str, key: str) -> dict[int, float]:
    """``{seed: value}`` of one metric (or ``train_s_per_epoch``) over the finished seeds."""
    values = {}
    for run_id, run in results["runs"].items():
        run_name, run_category, seed = run_id.split("/")
        value = run["metrics"].get(key) if key in dict(METRICS) else run.get(key)
        if run_name == name and run_category == category and value is not None:
            values[int(seed[4:])] = float(value)
    return values


def category_mean_per_seed(results: dict[str, Any], name: str, categories: Sequence[str], key: str) -> dict[int, float]:
    """``{seed: mean over categories}`` for the seeds where every category has the value."""
    per_category = [per_seed(results, name, c, key) for c in categories]
    seeds = set.intersection(*(set(p) for p in per_category)) if per_category else set()
    return {s: statistics.fmean(p[s] for p in per_category) for s in sorted(seeds)}


def paired_rows(results: dict[str, Any], other: dict[str, Any], pairs: Sequence[tuple[str, str]],
                categories: Sequence[str], once: Sequence[str] = ()) -> list[str]:
    """Markdown rows of ``A - B`` per seed (A from ``results``, B from ``other``), per category and on the mean.

    A reference in ``once`` ran for one seed only: its one value stands for every seed of A."""
    from experiments.lib.stats import format_mean_sd, paired_differences

    lines = ["| category | model | " + " | ".join(t for _, t in METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for category in [*categories, "mean"]:
        cats = categories if category == "mean" else [category]
        for name, reference in pairs:
            cells = []
            for key, _ in METRICS:
                a = category_mean_per_seed(results, name, cats, key)
                b = category_mean_per_seed(other, reference, cats, key)
                if reference in once and b:
                    b = dict.fromkeys(a, b[min(b)])
                if not set(a) & set(b):
                    cells.append("n/a")
                    continue
                diff = paired_differences(a, b)
                each = ", ".join(f"{100 * d:+.1f}" for d in diff["differences"].values())
                sign = "+" if diff["mean"] >= 0 else ""
                cells.append(f"{sign}{format_mean_sd(diff, scale=100, digits=1)} [{each}]")
            if any(c != "n/a" for c in cells):
                lines.append(f"| {category} | {label(name)} | " + " | ".join(cells) + " |")
    return lines


def render_table(results: dict[str, Any], names: Sequence[str], categories: Sequence[str],
                 references: Sequence[str] = (), against: dict[str, dict[str, Any]] | None = None,
                 once: Sequence[str] = ()) -> str:
    """Markdown: the paper's Table 2 layout (means over seeds), then mean +- sd and paired differences
    (against ``references`` here, and against the same models in the ``against`` results)."""
    from experiments.lib.stats import format_mean_sd, mean_sd

    seeds_done = sorted({int(k.rsplit("/seed", 1)[1]) for k in results["runs"]})
    head = "| category | " + " | ".join(label(n) for n in names) + " |"
    lines = [f"Per-category results, {' / '.join(t for _, t in METRICS)} in percent (ours, measured; mean over "
             f"the seeds done: {seeds_done or 'none'}).", "", head, "|---" * (len(names) + 1) + "|"]

    def mean_cell(name: str, cats: Sequence[str]) -> str:
        values = []
        for key, _ in METRICS:  # a metric some category lacks (no masks) has no mean over the categories
            per_category = [per_seed(results, name, c, key).values() for c in cats]
            # the mean of the category means: a category with more seeds done does not weigh more
            values.append(f"{100 * statistics.fmean(statistics.fmean(v) for v in per_category):.1f}"
                          if per_category and all(per_category) else "n/a")
        return "-" if all(v == "n/a" for v in values) else " / ".join(values)

    for category in categories:
        lines.append(f"| {category} | " + " | ".join(mean_cell(n, [category]) for n in names) + " |")
    means = []
    for name in names:
        done = [c for c in categories if per_seed(results, name, c, "image_AUROC")]
        suffix = "" if len(done) == len(categories) else f" ({len(done)} of {len(categories)})"
        means.append(mean_cell(name, done) + suffix if done else "-")
    lines.append("| **mean** | " + " | ".join(means) + " |")

    lines += ["", "Mean +- sd over seeds (n = seeds done), percent; training s/epoch; OpenVINO f32 latency (first "
              "seed's model, batch 1, timed interleaved within a category):", "",
              "| category | model | n | " + " | ".join(t for _, t in METRICS) + " | train s/epoch | OV f32 ms |",
              "|---|---|---:|" + "---:|" * (len(METRICS) + 2)]
    for category in [*categories, "mean"]:
        for name in names:
            cats = categories if category == "mean" else [category]
            cells, n = [], 0
            for key, _ in METRICS:
                values = category_mean_per_seed(results, name, cats, key)
                n = max(n, len(values))
                cells.append(format_mean_sd(mean_sd(list(values.values())), scale=100, digits=1) if values else "n/a")
            speed = category_mean_per_seed(results, name, cats, "train_s_per_epoch")
            latency = results.get("latency_ms", {}).get(category, {}).get(name) if category != "mean" else None
            speed_cell = f"{statistics.fmean(speed.values()):.1f}" if speed else "n/a"
            latency_cell = f"{latency:.1f}" if latency is not None else "-"
            if n:
                lines.append(f"| {category} | {label(name)} | {n} | " + " | ".join([*cells, speed_cell, latency_cell])
                             + " |")

    for reference in references:
        if reference in names:
            if reference in once:
                lines += ["", f"Differences against {label(reference)}, which ran once (first seed; no training): "
                          "each seed's model - that one run, percent points; mean +- sd over seeds (the sd is the "
                          "model's alone); per-seed values in brackets:", ""]
            else:
                lines += ["", f"Paired per-seed differences against {label(reference)} (model - reference, percent "
                          "points; mean +- sd over seeds; per-seed values in brackets):", ""]
            lines += paired_rows(results, results, [(n, reference) for n in names if n != reference], categories,
                                 once)
    for other_label, other in (against or {}).items():
        lines += ["", f"Paired per-seed differences against the same model in {other_label!r} (teacher "
                  f"{other['settings']['teacher_weights'] or 'ImageNet'}; here - there, percent points):", ""]
        lines += paired_rows(results, other, [(n, n) for n in names], categories)

    s = results["settings"]
    teacher = s["teacher_weights"] or "ImageNet weights from timm's hub"
    lines += ["", f"Settings: backbone {s['backbone']}, teacher {teacher}, {s['image_size']} px, {s['epochs']} epochs, "
              f"batch {s['batch_size']}, AKF-RD paper optimizer Adam lr {s['lr']} betas {tuple(s['betas'])} "
              f"(\"RD's Adam\": lr {RD_ADAM[0]} betas {RD_ADAM[1]}).", "",
              "The paper's figures (quoted, not measured here; MVTec AD mean of its 15 categories, ImageNet "
              "wide_resnet50_2, 256 px, 100 epochs; from docs/RESULTS.md):", ""]
    lines += [f"- paper's {model}: {' / '.join(f'{v:.1f}' for v in values)}" for model, values in PAPER_MEANS.items()]
    lines += ["", "The paper's per-category figures (its Table 2) are not in this repository, so no per-category "
              "paper column is shown."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True,
                        help="folder with one sub-folder per category, each in the MVTec AD layout")
    parser.add_argument("--categories", nargs="+", default=list(MVTEC_CATEGORIES))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["akf_rd", "rd"])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["akf_oce"],
                        help="AKF-RD settings (default: akf_oce, the paper's model)")
    parser.add_argument("--akf-optimizers", nargs="+", choices=AKF_OPTIMIZERS, default=["paper"],
                        help="AKF-RD optimizer(s): paper = Adam(--lr, --betas); rd = RD's Adam(0.005, (0.5, 0.99))")
    parser.add_argument("--out", type=Path, required=True, help="results.json, table.md and the runs go here")
    parser.add_argument("--backbone", default="wide_resnet50_2")
    parser.add_argument("--teacher-weights", type=Path,
                        help="local torchvision/timm state dict for every model's teacher (offline); "
                             "without it the teacher comes from timm's hub")
    parser.add_argument("--random-teacher", action="store_true",
                        help="every model's teacher randomly initialised (the floor a trained teacher must beat)")
    parser.add_argument("--against", nargs="+", default=[], metavar="LABEL=OUT",
                        help="also pair each model with the same model in another results folder OUT (e.g. the "
                             "same protocol with another teacher); the settings must match but for the teacher")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4, help="AKF-RD Adam learning rate (paper: 1e-4)")
    parser.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999], help="AKF-RD Adam betas")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], help="run seed by seed")
    parser.add_argument("--reference", nargs="+", default=[], help="models the others are paired against (run names)")
    parser.add_argument("--once", nargs="+", default=[], metavar="NAME",
                        help="run these models for the first seed only (patchcore: no training)")
    parser.add_argument("--latency", action="store_true",
                        help="export the first seed's models (FP32 IR) and time them with OpenVINO")
    parser.add_argument("--latency-runs", type=int, default=50, help="timed rounds per IR (after 3 warm-up rounds)")
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator (auto, cpu, gpu)")
    args = parser.parse_args(argv)
    if args.teacher_weights is not None and args.random_teacher:
        parser.error("--teacher-weights and --random-teacher exclude each other")
    for item in args.against:
        label_, sep, folder = item.partition("=")
        if not sep or not label_ or not (Path(folder) / "results.json").is_file():
            parser.error(f"--against {item!r}: expected LABEL=OUT with OUT/results.json")
    if args.teacher_weights is not None and not args.teacher_weights.is_file():
        parser.error(f"--teacher-weights {args.teacher_weights}: file not found")
    if args.epochs < 1 or args.image_size < 1 or args.batch_size < 1 or args.latency_runs < 1:
        parser.error("--epochs, --image-size, --batch-size and --latency-runs must be at least 1")
    if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
        parser.error(f"--seeds must be distinct non-negative integers, got {args.seeds}")
    names = run_names(args.models, args.variants, args.akf_optimizers)
    for option in ("reference", "once"):
        unknown = [r for r in getattr(args, option) if r not in names]
        if unknown:
            parser.error(f"--{option} {unknown}: not among this run's models {names}")
    missing = [c for c in args.categories if not (args.root / c).is_dir()]
    if missing and (args.teacher_weights is not None or args.random_teacher):
        parser.error(f"category folders not found under {args.root}: {missing} (offline run: no download)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every (seed, category, model) not yet in ``OUT/results.json``; write results and table after each."""
    args = parse_args(argv)
    from defect_plugins.fileio import atomic_write_json, atomic_write_text

    names = run_names(args.models, args.variants, args.akf_optimizers)
    results_path, table_path = args.out / "results.json", args.out / "table.md"
    try:
        results = load_results(results_path, settings_of(args))
    except ProtocolError as error:
        print(f"akf_rd_mvtec: error: {error}", file=sys.stderr)
        return 2

    against = {}
    for item in args.against:
        other_label, _, folder = item.partition("=")
        other_path = Path(folder) / "results.json"
        other = json.loads(other_path.read_text())
        for key in SETTING_KEYS:
            if key not in ("teacher_weights", "pre_trained") and other["settings"].get(key) != results["settings"][key]:
                print(f"akf_rd_mvtec: error: {other_path}: settings.{key} is {other['settings'].get(key)!r} there but "
                      f"{results['settings'][key]!r} here; --against pairs runs that differ in the teacher only",
                      file=sys.stderr)
                return 2
        against[other_label] = other

    def save() -> None:
        atomic_write_json(results_path, results, indent=2)
        atomic_write_text(table_path, render_table(results, names, args.categories, args.reference, against, args.once))

    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for category in args.categories:
            for name in names:
                key = run_key(name, category, seed)
                if key in results["runs"]:
                    print(f"[mvtec] {key}: done before, kept", flush=True)
                    continue
                if name in args.once and seed != args.seeds[0]:
                    continue
                print(f"[mvtec] {key}: training and testing", flush=True)
                export = args.latency and seed == args.seeds[0]
                results["runs"][key] = run_one(name, category, seed, args, export=export)
                save()
                print(f"[mvtec] {key}: {_cell(results['runs'][key])}", flush=True)
    if args.latency:
        for category in args.categories:
            if set(results["latency_ms"].get(category, {})) != set(names):
                print(f"[mvtec] timing the OpenVINO IRs of {category}", flush=True)
                time_category(results, names, category, args)
    save()
    print(table_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
