#!/usr/bin/env python
"""Train mmseg configs (ARCD stages, plain baselines) over several seeds; mean +- sd and paired differences.

Each ``NAME=CONFIG`` is trained once per seed through ``defect-train mmseg`` (mmseg's own
``tools/train.py``) with ``randomness.seed=SEED`` and the training sampler's seed set to the same
value, so that paired runs of one seed see the training images in the same order; the rest of the
recipe comes from the configs and ``--cfg-options`` (the same for every run). The figures are the
last validation record in mmengine's ``scalars.json``: for stage 2, ``ClassIoUMetric``'s ``mIoU``,
``mAcc`` (the MPA) and ``IoU.<class>``, ``PixelAUROC``'s ``mAUROC`` / ``AUROC.<class>``; for stage 1,
``ReconstructionAccuracy``'s ``recon_loss`` (L2 + (1/100)(1 - SSIM)), ``L2``, ``SSIM`` and ``RA``.

    python experiments/arcd/seg_seeds.py \\
        unet=configs/arcd/unet_plain_neu.py arcd=configs/arcd/arcd_stage2_unet_neu.py \\
        --work-dir work_dirs/seg/unet_vs_arcd --reference unet --seeds 0 1 2 \\
        --run-options "arcd:model.reconstructor_checkpoint=work_dirs/seg/stage1/seed{seed}/base" \\
        --cfg-options train_cfg.max_iters=3200

Runs go seed by seed in command-line order, so a run can use an earlier run's checkpoint of the
same seed (``{seed}`` in an option becomes the run's seed; ``--run-options NAME:KEY=VALUE`` gives an
option to one run only). A finished run (``result.json``) is kept, a cut-off one resumes from its
last checkpoint; ``--only`` and ``--no-train`` restrict a call to some runs or to reporting
(:mod:`experiments.lib.seeds`). ``WORK/results.json`` and ``WORK/table.md`` hold mean +- sd per run
and metric and the paired per-seed differences ``NAME - REFERENCE`` (:mod:`experiments.lib.seeds`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.lib` importable
    sys.path.insert(0, str(REPO_ROOT))

from defect_plugins.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from defect_plugins.runners.launcher import LauncherError, read_logged_scalars  # noqa: E402
from experiments.lib.runs import train_resumable  # noqa: E402
from experiments.lib.seeds import (SeedsError, add_run_arguments, markdown, parse_run_arguments,  # noqa: E402
                                  seeded_runs, summarise)

STAGE2_METRICS = ("mIoU", "mAcc", "mAUROC")  # then IoU.<class> of every class found


def train_one(name: str, config: str, seed: int, work: Path, options: list[str], key: str) -> dict:
    """Train ``config`` with ``seed`` under ``work/seedS/NAME`` (kept when finished, resumed when cut off)."""
    run_dir = work / f"seed{seed}" / name
    result_path = run_dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    seeded = [f"randomness.seed={seed}", f"train_dataloader.sampler.seed={seed}", *options]
    try:
        seconds = train_resumable("mmseg", config, run_dir, seeded)
        metrics = read_logged_scalars(run_dir, key, extra=None)
    except LauncherError as error:
        raise SeedsError(f"{name} seed {seed}: {error}") from None
    metrics = {k: v for k, v in metrics.items() if k not in ("step", "iter", "epoch")}
    result = {"name": name, "config": config, "seed": seed, "metrics": metrics, "seconds": round(seconds, 1)}
    atomic_write_json(result_path, result, indent=2)
    return result


def table_metrics(results: list[dict], key: str, asked: list[str] | None) -> list[str]:
    """The columns: ``asked``; else mIoU / mAcc / mAUROC / IoU.<class> for stage 2, every figure otherwise."""
    if asked:
        return asked
    found = list(dict.fromkeys(k for r in results for k in r["metrics"]))
    if key == "mIoU":
        return [*(m for m in STAGE2_METRICS if m in found), *(k for k in found if k.startswith("IoU."))]
    return found


def _parser() -> argparse.ArgumentParser:
    p = add_run_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    p.add_argument("--key", default="mIoU",
                   help="figure that marks the final validation record (stage 1: recon_loss)")
    p.add_argument("--metrics", nargs="+", help="table columns (default: see the description)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        runs, pairs, run_options = parse_run_arguments(args)
        options = {name: [*args.cfg_options, *(item for run, item in run_options if run == name)] for name in runs}
        work = args.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_json(work / "settings.json", {"runs": runs, "seeds": args.seeds, "options": options,
                                                   "key": args.key}, indent=2)
        results = []
        for seed, name, config, seeded in seeded_runs(runs, options, args.seeds):
            results.append(train_one(name, config, seed, work, seeded, args.key))
            print(f"{name} seed {seed}: {args.key} {results[-1]['metrics'][args.key]:.4g} "
                  f"({results[-1]['seconds']} s)", flush=True)
        metrics = table_metrics(results, args.key, args.metrics)
        report = {"runs": results, **summarise(results, list(runs), metrics, pairs)}
        atomic_write_json(work / "results.json", report, indent=2)
        table = markdown(report, metrics, digits=2 if args.key == "mIoU" else 5)
        atomic_write_text(work / "table.md", table + "\n")
        print(table)
    except SeedsError as error:
        print(f"seg_seeds: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
