"""A new line with few labels: does CycleGAN migration of a labelled line help its first classifier?

The RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023, section 2.1) translates labelled
defect images of one line to the look of another with CycleGAN (Zhu et al., ICCV 2017) and trains
the new line's classifier on them. This tool measures that for a factory's situation:

* domain A, the labelled line: the project's synthetic steel set (``defect-synth cls``, NEU classes);
* domain B, the new line: real NEU-CLS, split as every NEU config here (stratified 70/30, seed 0:
  210 train / 90 test images per class), with only ``--labels-per-class`` labelled training images;
* the CycleGAN sees A and B's *unlabelled training* images only (never B's test split).

The same classifier (mmpretrain ResNet18, 64 px, the project's strong recipe: SGD 0.05, momentum
0.9, wd 5e-4, linear warm-up then cosine, batch 32, flips) is trained for the same number of
iterations on (a) B's few labels alone, (b) B's few + raw A, (c) B's few + A translated to B,
(d) all of B's training split (the ceiling), and tested on B's test split. Seed ``s`` draws the few
labels and initialises the classifier, so per-seed differences between conditions are paired.

Every step is kept when finished, so a killed run continues where it stopped (a classifier
run that was cut off resumes from its last checkpoint; the CycleGAN training too)::

    python experiments/migration/few_label_migration.py --neu ../shared/data/neu_cls --work-dir work_dirs/few_label \\
        --seeds 0 1 2 --gan-iters 1200 --gan-batch 4 --gan-channels 32 --cls-iters 800

Writes ``WORK/results.json`` (per run: top-1, macro F1, seconds; per condition mean +- sd; the
paired differences (c)-(b), (c)-(a), (b)-(a), (d)-(c)) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

from defect_plugins.cls.datasets.split import write_split  # noqa: E402
from defect_plugins.compat import apply_all  # noqa: E402
from defect_plugins.data import NEU_CLASSES  # noqa: E402
from defect_plugins.data.atomic import atomic_output_dir  # noqa: E402
from defect_plugins.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from defect_plugins.packaged_configs import resolve_config  # noqa: E402
from experiments.lib.stats import format_mean_sd, mean_sd, paired_differences  # noqa: E402

CONDITIONS = {
    "a": "B few labels only",
    "b": "B few + raw synthetic A",
    "c": "B few + A translated to B (CycleGAN)",
    "d": "all of B's training split (ceiling)",
}
PAIRS = (("c", "b"), ("c", "a"), ("b", "a"), ("d", "c"))
CLASSIFIER_CONFIG = "neu_cls/resnet18_neu_cls_64.py"

apply_all()  # the classifier config's mmpretrain:: base needs the package-lookup fix before it is parsed


class ExperimentError(RuntimeError):
    """An input or a step of the experiment that cannot be used as it is."""


def _run(command: list[str], log: Path) -> None:
    """Run one step as its own process (as a user would), its output appended to ``log``."""
    from experiments.lib.runs import run_logged

    code = run_logged(command, log)
    if code != 0:
        raise ExperimentError(f"step failed with exit status {code}: {' '.join(command)} (log: {log})")


# -- data ------------------------------------------------------------------------------------
def prepare_split(neu: Path, work: Path) -> Path:
    """B's fixed split (``train.txt`` / ``test.txt``), written once."""
    split = work / "split"
    if not (split / "test.txt").is_file():
        write_split(neu, split, classes=NEU_CLASSES, train_ratio=0.7, seed=0)
    return split


def read_split(path: Path) -> list[tuple[str, int]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise ExperimentError(f"{path}:{number}: expected '<class>/<file> <label>', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    return rows


def unlabelled_target(neu: Path, split: Path, work: Path) -> Path:
    """Copies of B's training images in one flat folder (the CycleGAN's domain B: no labels, no test images)."""
    out = work / "target_b_unlabelled"
    if out.is_dir():
        return out
    with atomic_output_dir(out) as tmp:
        for rel, _ in read_split(split / "train.txt"):
            shutil.copyfile(neu / rel, tmp / rel.replace("/", "__"))
    return out


def synthetic_source(work: Path, per_class: int, size: int) -> Path:
    """Domain A: the project's synthetic steel classes (``defect-synth cls``)."""
    out = work / "source_a"
    if not out.is_dir():
        _run([sys.executable, "-m", "defect_plugins.data.cli", "cls", str(out), "--per-class", str(per_class),
              "--size", str(size), "--seed", "0"], work / "logs" / "source_a.log")
    return out


def few_labels(split: Path, work: Path, seed: int, per_class: int) -> Path:
    """``per_class`` labelled images per class drawn from B's training split with ``seed``."""
    path = work / f"seed{seed}" / "few_labels.txt"
    if path.is_file():
        return path
    by_class: dict[int, list[str]] = {}
    for rel, label in read_split(split / "train.txt"):
        by_class.setdefault(label, []).append(rel)
    rng = random.Random(seed)
    lines = []
    for label in sorted(by_class):
        if len(by_class[label]) < per_class:
            raise ExperimentError(f"class {NEU_CLASSES[label]} has {len(by_class[label])} training images, "
                                  f"fewer than --labels-per-class {per_class}")
        lines += [f"{rel} {label}\n" for rel in sorted(rng.sample(by_class[label], per_class))]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(lines))
    return path


# -- CycleGAN --------------------------------------------------------------------------------
def last_checkpoint(work_dir: Path) -> Path | None:
    marker = work_dir / "last_checkpoint"
    if not marker.is_file():
        return None
    path = Path(marker.read_text().strip())
    return path if path.is_file() else None


def train_cyclegan(source: Path, target: Path, work: Path, args: argparse.Namespace) -> Path:
    """``defect-migrate train`` A <-> B; resumes a cut-off training; returns the final checkpoint."""
    gan_dir = work / "cyclegan"
    final = gan_dir / f"iter_{args.gan_iters}.pth"
    if final.is_file():
        return final
    command = [sys.executable, "-m", "defect_plugins.gan.cli", "train", "--source", str(source),
               "--target", str(target), "--work-dir", str(gan_dir), "--iters", str(args.gan_iters),
               "--batch-size", str(args.gan_batch), "--gen-channels", str(args.gan_channels),
               "--disc-channels", str(args.gan_channels), "--img-size", str(args.size),
               "--checkpoint-interval", str(max(1, args.gan_iters // 4)),
               "--sample-interval", str(max(1, args.gan_iters // 4)), "--log-interval", "50",
               "--seed", "0", "--allow-mixed-sizes"]
    if last_checkpoint(gan_dir) is not None:
        command.append("--resume")
    _run(command, work / "logs" / "cyclegan.log")
    if not final.is_file():
        raise ExperimentError(f"CycleGAN training ended without {final}")
    return final


def translate_source(checkpoint: Path, source: Path, work: Path) -> Path:
    """A translated to B's look, class folders kept (``defect-migrate translate``)."""
    out = work / "source_a_to_b"
    if not out.is_dir():
        _run([sys.executable, "-m", "defect_plugins.gan.cli", "translate", "--checkpoint", str(checkpoint),
              "--input", str(source), "--out", str(out), "--direction", "a2b"], work / "logs" / "translate.log")
    return out


# -- classifier runs -------------------------------------------------------------------------
def _dataset(prefix: Path, ann_file: Path | None, pipeline: list) -> dict:
    return dict(type="NEUCLSDataset", data_root="", data_prefix=str(prefix),
                ann_file=str(ann_file) if ann_file else "", pipeline=pipeline)


def classifier_config(condition: str, seed: int, neu: Path, split: Path, few: Path, source: Path | None,
                      iters: int, warmup: int) -> str:
    """One run's config: the packaged strong recipe, its training data replaced, iteration-based."""
    from mmengine.config import Config

    base = str(resolve_config(CLASSIFIER_CONFIG))
    pipeline = Config.fromfile(base).to_dict()["train_pipeline"]  # the recipe's augmentation, for every source
    if condition == "a":
        parts = [_dataset(neu, few, pipeline)]
    elif condition in ("b", "c"):
        parts = [_dataset(neu, few, pipeline), _dataset(source, None, pipeline)]
    elif condition == "d":
        parts = [_dataset(neu, split / "train.txt", pipeline)]
    else:
        raise ExperimentError(f"unknown condition {condition!r}: expected one of {sorted(CONDITIONS)}")
    train_set = parts[0] if len(parts) == 1 else dict(type="ConcatDataset", datasets=parts)
    test_set = dict(type="NEUCLSDataset", data_root="", data_prefix=str(neu), ann_file=str(split / "test.txt"))
    values = {
        "train_dataloader": dict(dataset=dict(_delete_=True, **train_set),
                                 sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True)),
        "val_dataloader": dict(dataset=test_set),
        "test_dataloader": dict(dataset=test_set),
        # same budget for every condition: iterations, not epochs (20 labels per class are 4 batches)
        "train_cfg": dict(_delete_=True, type="IterBasedTrainLoop", max_iters=iters, val_interval=iters),
        "param_scheduler": [
            dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=warmup),
            dict(type="CosineAnnealingLR", T_max=iters - warmup, eta_min=0.0, by_epoch=False,
                 begin=warmup, end=iters),
        ],
        "default_hooks": dict(logger=dict(interval=50),
                              checkpoint=dict(by_epoch=False, interval=max(1, iters // 4), max_keep_ckpts=1)),
        "log_processor": dict(by_epoch=False),
        "randomness": dict(seed=seed, deterministic=False),
    }
    lines = [f"# Written by experiments/migration/few_label_migration.py: condition ({condition}) "
             f"{CONDITIONS[condition]}, seed {seed}.", f"_base_ = [{base!r}]"]
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def read_metrics(run_dir: Path) -> dict[str, float]:
    """Top-1 and macro F1 (fractions) of the final validation mmengine logged in ``run_dir``."""
    from defect_plugins.runners.launcher import LauncherError, read_logged_scalars

    try:
        logged = read_logged_scalars(run_dir, "accuracy/top1", extra=("macro/f1-score", ))
    except LauncherError as error:
        raise ExperimentError(f"{error} (the test runs at the last iteration)") from None
    return {"top1": logged["accuracy/top1"] / 100.0, "macro_f1": logged["macro/f1-score"] / 100.0}


def train_classifier(condition: str, seed: int, config_text: str, work: Path) -> dict:
    from experiments.lib.runs import LauncherError, train_resumable

    run_dir = work / f"seed{seed}" / condition
    result_path = run_dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.py"
    atomic_write_text(config, config_text)
    try:
        seconds = train_resumable("mmpretrain", config, run_dir)
    except LauncherError as error:
        raise ExperimentError(str(error)) from None
    result = {"condition": condition, "seed": seed, **read_metrics(run_dir), "seconds": seconds}
    atomic_write_json(result_path, result, indent=2)
    return result


# -- report ----------------------------------------------------------------------------------
def summarise(runs: list[dict]) -> dict:
    top1 = {c: {r["seed"]: r["top1"] for r in runs if r["condition"] == c} for c in CONDITIONS}
    summary = {c: mean_sd(list(v.values())) for c, v in top1.items() if v}
    pairs = {f"{a}-{b}": paired_differences(top1[a], top1[b]) for a, b in PAIRS if top1[a] and top1[b]}
    return {"runs": runs, "top1": summary, "paired": pairs}


def markdown(report: dict) -> str:
    lines = ["| condition | top-1 % (mean +- sd) | seeds |", "|---|---|---|"]
    for c, s in report["top1"].items():
        lines.append(f"| ({c}) {CONDITIONS[c]} | {format_mean_sd(s, 100)} | {s['n']} |")
    lines += ["", "| paired difference | per seed (points) | mean +- sd |", "|---|---|---|"]
    for name, p in report["paired"].items():
        per_seed = ", ".join(f"{d * 100:+.2f}" for d in p["differences"].values())
        lines.append(f"| ({name[0]}) - ({name[2]}) | {per_seed} | {format_mean_sd(p, 100)} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    neu, work = Path(args.neu).resolve(), Path(args.work_dir).resolve()
    missing = [c for c in NEU_CLASSES if not (neu / c).is_dir()]
    if missing:
        raise ExperimentError(f"--neu {neu}: class folder(s) {missing} not found (expected NEU-CLS class folders)")
    if args.cls_iters <= args.warmup:
        raise ExperimentError(f"--cls-iters {args.cls_iters} must exceed --warmup {args.warmup}")
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / "settings.json", {k: v for k, v in vars(args).items()}, indent=2)
    split = prepare_split(neu, work)
    source = synthetic_source(work, args.synthetic_per_class, args.size)
    migrated = None
    if "c" in args.conditions:
        checkpoint = train_cyclegan(source, unlabelled_target(neu, split, work), work, args)
        migrated = translate_source(checkpoint, source, work)
    runs = []
    for seed in args.seeds:  # seed by seed, so that a cut-short experiment still has complete pairs
        few = few_labels(split, work, seed, args.labels_per_class)
        for condition in args.conditions:
            extra = {"b": source, "c": migrated}.get(condition)
            text = classifier_config(condition, seed, neu, split, few, extra, args.cls_iters, args.warmup)
            runs.append(train_classifier(condition, seed, text, work))
            print(f"({condition}) seed {seed}: top-1 {runs[-1]['top1']:.4f} in {runs[-1]['seconds']} s", flush=True)
    report = summarise(runs)
    atomic_write_json(work / "results.json", report, indent=2)
    return report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neu", default="../shared/data/neu_cls", help="NEU-CLS class folders (domain B)")
    p.add_argument("--work-dir", default="work_dirs/few_label")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--labels-per-class", type=int, default=20)
    p.add_argument("--synthetic-per-class", type=int, default=100, help="domain A images per class")
    p.add_argument("--size", type=int, default=64, help="image side for A, the CycleGAN and the classifier")
    p.add_argument("--gan-iters", type=int, default=1200)
    p.add_argument("--gan-batch", type=int, default=4)
    p.add_argument("--gan-channels", type=int, default=32, help="generator and discriminator base filters (paper: 64)")
    p.add_argument("--cls-iters", type=int, default=800, help="classifier iterations (batch 32), every condition")
    p.add_argument("--warmup", type=int, default=50, help="linear warm-up iterations")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = run(args)
    except ExperimentError as error:
        print(f"few_label_migration: error: {error}", file=sys.stderr)
        return 2
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
