"""Runs x seeds experiments: the command-line pieces the seed tools share, and a metric-generic summary.

``experiments/neu_cls/neu_cls_seeds.py`` (mmpretrain) and ``experiments/arcd/seg_seeds.py`` (mmseg) take runs as
``NAME=CONFIG``, pairs as ``NAME:REFERENCE`` and per-run options as ``NAME:KEY=VALUE``; the parsing
and its errors live here once. :func:`summarise` gives mean +- sd per run and metric and the paired
per-seed differences (:mod:`experiments.lib.stats`), :func:`markdown` the tables of the results document.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.lib.stats import format_mean_sd, mean_sd, paired_differences

__all__ = ["SeedsError", "add_run_arguments", "markdown", "parse_pairs", "parse_run_arguments", "parse_runs",
           "seeded_runs", "summarise"]


class SeedsError(RuntimeError):
    """A bad argument or a failed training; the message names it."""


def parse_runs(items: Sequence[str]) -> dict[str, str]:
    """``NAME=CONFIG`` items as ``{NAME: CONFIG}`` in the order given; names must be unique."""
    runs: dict[str, str] = {}
    for item in items:
        name, sep, config = item.partition("=")
        if not sep or not name or not config:
            raise SeedsError(f"expected NAME=CONFIG, got {item!r}")
        if name in runs:
            raise SeedsError(f"run name {name!r} given twice")
        runs[name] = config
    return runs


def parse_pairs(items: Sequence[str], runs: Mapping[str, str], what: str, rest: str) -> list[tuple[str, str]]:
    """``NAME:REST`` items of option ``what`` as ``(NAME, REST)``; NAME (and REST when ``rest`` is
    ``'REFERENCE'``) must be one of the runs."""
    pairs = []
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not value:
            raise SeedsError(f"{what}: expected NAME:{rest}, got {item!r}")
        for part in (name, value) if rest == "REFERENCE" else (name, ):
            if part not in runs:
                raise SeedsError(f"{what} {item!r}: {part!r} is not one of the runs {list(runs)}")
        pairs.append((name, value))
    return pairs


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments every seed tool takes: runs, work folder, seeds, pairs and per-run options."""
    parser.add_argument("runs", nargs="+", metavar="NAME=CONFIG")
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--reference", help="NAME the paired differences of every other run are taken against")
    parser.add_argument("--compare", nargs="+", default=[], metavar="NAME:REFERENCE",
                        help="paired differences of NAME against REFERENCE only (besides --reference)")
    parser.add_argument("--run-options", nargs="+", default=[], metavar="NAME:KEY=VALUE",
                        help="a --cfg-options item for run NAME only; {seed} becomes the run's seed")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="train and report these runs only (pairs and options of the others are dropped), "
                             "so that several processes can share one experiment, a run each")
    parser.add_argument("--no-train", action="store_true",
                        help="report finished runs only (WORK/seedS/NAME/result.json); fail, naming the others")
    parser.add_argument("--cfg-options", nargs="*", default=[],
                        help="passed to every run (after the tool's own data options, before --run-options)")
    return parser


def parse_run_arguments(args: argparse.Namespace) -> tuple[dict[str, str], list[tuple[str, str]],
                                                           list[tuple[str, str]]]:
    """``(runs, pairs, run_options)`` from :func:`add_run_arguments`' values; :class:`SeedsError` names a bad one.

    ``pairs`` are ``(NAME, REFERENCE)``: every run against ``--reference``, then the ``--compare`` pairs.
    With ``--only``, runs outside it are left out, with their pairs and options; with ``--no-train``, a
    run without ``result.json`` is an error (a tables pass after parallel runs must start no training).
    """
    runs = parse_runs(args.runs)
    if args.reference is not None and args.reference not in runs:
        raise SeedsError(f"--reference {args.reference!r} is not one of the runs {list(runs)}")
    if len(set(args.seeds)) != len(args.seeds):
        raise SeedsError(f"--seeds must be distinct, got {args.seeds}")
    pairs = [(name, args.reference) for name in runs if args.reference is not None and name != args.reference]
    pairs += parse_pairs(args.compare, runs, "--compare", "REFERENCE")
    run_options = parse_pairs(args.run_options, runs, "--run-options", "KEY=VALUE")
    if args.only is not None:
        for name in args.only:
            if name not in runs:
                raise SeedsError(f"--only {name!r} is not one of the runs {list(runs)}")
        # The full command line is checked above, so a call restricted to one run still fails on a typo elsewhere.
        runs = {name: config for name, config in runs.items() if name in args.only}
        pairs = [pair for pair in pairs if set(pair) <= runs.keys()]
        run_options = [item for item in run_options if item[0] in runs]
    if args.no_train:
        work = args.work_dir.resolve()
        missing = [f"{name} seed {seed}" for seed in args.seeds for name in runs
                   if not (work / f"seed{seed}" / name / "result.json").is_file()]
        if missing:
            raise SeedsError(f"--no-train: not finished under {work}: {', '.join(missing)}")
    return runs, pairs, run_options


def seeded_runs(runs: Mapping[str, str], options: Mapping[str, Sequence[str]],
                seeds: Sequence[int]) -> Iterator[tuple[int, str, str, list[str]]]:
    """``(seed, name, config, options)`` seed by seed, runs in the order given, ``{seed}`` in options replaced.

    Seed by seed, so that an experiment cut short still holds complete pairs, and a run may use an
    earlier run's output of the same seed.
    """
    for seed in seeds:
        for name, config in runs.items():
            yield seed, name, config, [item.replace("{seed}", str(seed)) for item in options[name]]


def summarise(results: Sequence[Mapping[str, Any]], names: Sequence[str], metrics: Sequence[str],
              pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``{"mean_sd": {metric: {name: ...}}, "paired": {metric: {"A - B": ...}}}`` over the results.

    Each result is ``{"name", "seed", "metrics": {metric: value}}``; a metric a run lacks is skipped
    for that run.
    """
    per_seed = {m: {n: {r["seed"]: r["metrics"][m] for r in results if r["name"] == n and m in r["metrics"]}
                    for n in names} for m in metrics}
    report: dict[str, Any] = {"mean_sd": {}, "paired": {}}
    for metric, by_name in per_seed.items():
        report["mean_sd"][metric] = {n: mean_sd(list(v.values())) for n, v in by_name.items() if v}
        report["paired"][metric] = {f"{a} - {b}": paired_differences(by_name[a], by_name[b])
                                    for a, b in dict.fromkeys(pairs)
                                    if set(by_name.get(a, {})) & set(by_name.get(b, {}))}
    return report


def markdown(report: Mapping[str, Any], metrics: Sequence[str], *, scale: float = 1.0, digits: int = 2) -> str:
    """One table of mean +- sd (runs x metrics, with n) and one of paired differences (per seed, then mean +- sd)."""
    names = list(dict.fromkeys(n for m in metrics for n in report["mean_sd"].get(m, {})))
    lines = ["| run | n | " + " | ".join(metrics) + " |", "|---|---:|" + "---|" * len(metrics)]
    for name in names:
        cells = [report["mean_sd"][m].get(name) for m in metrics]
        n = max((c["n"] for c in cells if c), default=0)
        lines.append(f"| {name} | {n} | " + " | ".join(format_mean_sd(c, scale, digits) if c else "-" for c in cells)
                     + " |")
    pair_names = list(dict.fromkeys(p for m in metrics for p in report["paired"].get(m, {})))
    if pair_names:
        lines += ["", "| paired difference (per seed; mean +- sd) | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for pair in pair_names:
            cells = []
            for metric in metrics:
                diff = report["paired"].get(metric, {}).get(pair)
                if diff is None:
                    cells.append("-")
                    continue
                each = ", ".join(f"{d * scale:+.{digits}f}" for d in diff["differences"].values())
                sign = "+" if diff["mean"] >= 0 else ""
                cells.append(f"{sign}{format_mean_sd(diff, scale, digits)} ({each})")
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
