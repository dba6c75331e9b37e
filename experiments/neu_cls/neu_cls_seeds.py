"""Train NEU-CLS classifiers over several seeds and report mean +- sd with paired per-seed differences.

Each ``NAME=CONFIG`` is trained once per seed through ``defect-train mmpretrain`` (mmpretrain's own
``tools/train.py``) with ``randomness.seed=SEED`` and the same split, recipe and ``--cfg-options``
for every config, so that the only difference between two rows is the model. The test split is
evaluated after the last epoch by the configs' own evaluator (mmpretrain ``Accuracy`` and
``SingleLabelMetric``); the figures are read back from mmengine's ``scalars.json``.

    python experiments/neu_cls/neu_cls_seeds.py \\
        resnet34=configs/neu_cls/resnet34_neu_cls_64.py seresnet34=configs/neu_cls/seresnet34_neu_cls_64.py \\
        drsn34=configs/neu_cls/drsn34_neu_cls_64.py sarsn34=configs/neu_cls/sarsn34_neu_cls_64.py \\
        --work-dir work_dirs/cls/ablation34 --reference resnet34 \\
        --split work_dirs/cls/neu_cls_split --data ../shared/data/neu_cls --seeds 0 1 2

(the runs first: ``--seeds`` and ``--cfg-options`` take several values).

Runs go in command-line order within a seed, so a run can use an earlier run's checkpoint of the
same seed: ``{seed}`` in an option becomes the run's seed, and ``--run-options NAME:KEY=VALUE`` gives
an option to one run only. Relational knowledge distillation, each student against itself alone:

    python experiments/neu_cls/neu_cls_seeds.py sarsn34=neu_cls/sarsn34_neu_cls_64.py \
        resnet34=neu_cls/resnet34_neu_cls_64.py rkd34=neu_cls/rkd_sarsn34_resnet34_neu_cls_64.py \
        --work-dir W --compare rkd34:resnet34 --split S --data D \
        --run-options rkd34:model.teacher_checkpoint=W/seed{seed}/sarsn34/epoch_30.pth

A training set wrapped in a dataset wrapper (``SameClassMosaicDataset`` around ``NEUCLSDataset``,
possibly twice) gets ``--data`` and ``--split`` on its innermost dataset.

Runs go seed by seed (all configs for seed 0, then seed 1, ...), so an experiment cut short still
holds complete pairs. A finished run (``result.json``) is kept; a cut-off run resumes from its
last checkpoint (``--resume``). ``OUT/results.json`` and the markdown table on stdout hold top-1
and macro F1 (mean +- sd) and the paired differences ``NAME - REFERENCE`` per seed
(:mod:`experiments.lib.stats`). Configs are paths or packaged names (``defect-configs list``).

``--per-class`` also tests each final checkpoint with ``defect-test mmpretrain ... --out-item metrics``
(mmpretrain's ``SingleLabelMetric`` with ``average=None``) and adds the per-class recall, their
geometric mean (G-mean) and the smallest class recall: the figures of an imbalanced benchmark. Runs
finished without it get it added from their checkpoint, without training again.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

from defect_plugins.fileio import atomic_write_json  # noqa: E402
from defect_plugins.runners.launcher import LauncherError, find_config, read_logged_scalars  # noqa: E402
from experiments.lib.runs import run_logged, train_resumable  # noqa: E402
from experiments.lib.seeds import SeedsError, add_run_arguments, parse_run_arguments, seeded_runs  # noqa: E402
from experiments.lib.stats import format_mean_sd, mean_sd, paired_differences  # noqa: E402


def data_options(config: str, data: Path | None, split: Path | None) -> list[str]:
    """``--cfg-options`` pointing ``config`` at the images and the split files.

    The training set may sit inside dataset wrappers (the paper's mosaic and fusion): its keys go
    to the innermost ``dataset``, where the annotation file is read.
    """
    from mmengine.config import Config

    try:
        cfg = Config.fromfile(str(find_config(config)))
    except LauncherError as error:
        raise SeedsError(str(error)) from None
    train_key, node = "train_dataloader.dataset", cfg.train_dataloader.dataset
    while isinstance(node.get("dataset"), dict):
        train_key, node = f"{train_key}.dataset", node["dataset"]
    options = []
    if data is not None:
        options += [f"{key}.data_prefix={data}"
                    for key in (train_key, "val_dataloader.dataset", "test_dataloader.dataset")]
    if split is not None:
        options += [f"{train_key}.ann_file={split}/train.txt", f"val_dataloader.dataset.ann_file={split}/test.txt",
                    f"test_dataloader.dataset.ann_file={split}/test.txt"]
    return options


def train_one(name: str, config: str, seed: int, work: Path, options: list[str]) -> dict:
    """Train ``config`` with ``seed`` under ``work/seedS/NAME`` (kept when finished, resumed when cut off)."""
    run_dir = work / f"seed{seed}" / name
    result_path = run_dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    try:
        seconds = train_resumable("mmpretrain", config, run_dir, [f"randomness.seed={seed}", *options])
        logged = read_logged_scalars(run_dir, "accuracy/top1", extra=("macro/f1-score", ))
    except LauncherError as error:
        raise SeedsError(f"{name} seed {seed}: {error}") from None
    result = {"name": name, "config": config, "seed": seed, "top1": logged["accuracy/top1"] / 100.0,
              "macro_f1": logged["macro/f1-score"] / 100.0, "seconds": seconds}
    atomic_write_json(result_path, result, indent=2)
    return result


def per_class_recall(name: str, config: str, seed: int, work: Path, options: list[str]) -> dict:
    """Per-class recall, G-mean and minimum recall of the run's last checkpoint (``defect-test``)."""
    run_dir = work / f"seed{seed}" / name
    checkpoints = sorted(run_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    if not checkpoints:
        raise SeedsError(f"{name} seed {seed}: no epoch_*.pth under {run_dir} to test")
    # a pickle: the metrics hold the confusion matrix as a tensor, which JSON cannot take
    metrics_path = run_dir / "test_metrics.pkl"
    metrics_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "defect_plugins.runners.launcher", "launch", "test", "mmpretrain", config,
               str(checkpoints[-1]), "--work-dir", str(run_dir / "test"), "--out", str(metrics_path),
               "--out-item", "metrics", "--cfg-options", *options]
    code = run_logged(command, run_dir / "test.log")
    if code != 0 or not metrics_path.is_file():
        raise SeedsError(f"{name} seed {seed}: test failed (exit {code}); log {run_dir / 'test.log'}")
    import mmengine

    metrics = mmengine.load(metrics_path)
    key = "single-label/recall_classwise"
    if key not in metrics:
        raise SeedsError(f"{metrics_path}: no {key!r}; the config's test_evaluator needs "
                         "dict(type='SingleLabelMetric', average=None)")
    recall = [float(r) / 100.0 for r in metrics[key]]
    g_mean = math.prod(recall) ** (1.0 / len(recall)) if recall else float("nan")
    return {"recall": recall, "g_mean": g_mean, "min_recall": min(recall)}


def summarise(runs: list[dict], names: list[str], pairs: list[tuple[str, str]] = ()) -> dict:
    """Top-1 / macro F1 (and G-mean / minimum recall) mean +- sd per run; top-1 paired per ``(NAME, REFERENCE)``."""
    top1 = {n: {r["seed"]: r["top1"] for r in runs if r["name"] == n} for n in names}
    f1 = {n: [r["macro_f1"] for r in runs if r["name"] == n] for n in names}
    report = {"runs": runs, "top1": {n: mean_sd(list(v.values())) for n, v in top1.items() if v},
              "macro_f1": {n: mean_sd(v) for n, v in f1.items() if v}, "paired": {}}
    for figure in ("g_mean", "min_recall"):
        values = {n: [r[figure] for r in runs if r["name"] == n and figure in r] for n in names}
        if any(values.values()):
            report[figure] = {n: mean_sd(v) for n, v in values.items() if v}
    report["paired"] = {f"{n} - {ref}": paired_differences(top1[n], top1[ref])
                        for n, ref in dict.fromkeys(pairs) if top1.get(n) and top1.get(ref)}
    return report


def markdown(report: dict) -> str:
    per_class = "g_mean" in report
    head = "| model | top-1 % (mean +- sd) | macro F1 % |" + (" G-mean % | min class recall % |" if per_class else "")
    lines = [head + " seeds | s per run |", "|---|---|---|" + ("---|---|" if per_class else "") + "---|---|"]
    for name, summary in report["top1"].items():
        seconds = [r["seconds"] for r in report["runs"] if r["name"] == name]
        row = f"| {name} | {format_mean_sd(summary, 100)} | {format_mean_sd(report['macro_f1'][name], 100)} |"
        if per_class:
            row += "".join(f" {format_mean_sd(report[f][name], 100) if name in report[f] else '-'} |"
                           for f in ("g_mean", "min_recall"))
        lines.append(f"{row} {summary['n']} | {sum(seconds) / len(seconds):.0f} |")
    if report["paired"]:
        lines += ["", "| paired difference | per seed (points) | mean +- sd |", "|---|---|---|"]
        for name, pair in report["paired"].items():
            per_seed = ", ".join(f"{d * 100:+.2f}" for d in pair["differences"].values())
            lines.append(f"| {name} | {per_seed} | {format_mean_sd(pair, 100)} |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = add_run_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    p.add_argument("--data", type=Path, help="NEU-CLS class folders (the configs' data_prefix)")
    p.add_argument("--split", type=Path, help="folder with train.txt and test.txt (defect-cls-split)")
    p.add_argument("--per-class", action="store_true",
                   help="also test each final checkpoint for per-class recall, G-mean and minimum recall")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        runs, pairs, run_options = parse_run_arguments(args)
        if args.data is not None and not args.data.is_dir():
            raise SeedsError(f"--data {args.data}: not a folder (expected NEU-CLS class folders)")
        if args.split is not None:
            for part in ("train", "test"):
                if not (args.split / f"{part}.txt").is_file():
                    raise SeedsError(f"--split {args.split}: {part}.txt not found (write it with defect-cls-split)")
        data = args.data.resolve() if args.data is not None else None
        split = args.split.resolve() if args.split is not None else None
        options = {name: [*data_options(config, data, split), *args.cfg_options,
                          *(item for run, item in run_options if run == name)]
                   for name, config in runs.items()}
        work = args.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_json(work / "settings.json", {"runs": runs, "seeds": args.seeds, "options": options}, indent=2)
        results = []
        for seed, name, config, seeded in seeded_runs(runs, options, args.seeds):
            result = train_one(name, config, seed, work, seeded)
            if args.per_class and "g_mean" not in result:
                result.update(per_class_recall(name, config, seed, work, seeded))
                atomic_write_json(work / f"seed{seed}" / name / "result.json", result, indent=2)
            results.append(result)
            print(f"{name} seed {seed}: top-1 {results[-1]['top1']:.4f} ({results[-1]['seconds']} s)", flush=True)
        report = summarise(results, list(runs), pairs)
        atomic_write_json(work / "results.json", report, indent=2)
        print(markdown(report))
    except SeedsError as error:
        print(f"neu_cls_seeds: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
