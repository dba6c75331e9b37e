"""Runs x seeds experiments: the command-line pieces the seed tools share, and a metric-generic summary.

``tools/neu_cls_seeds.py`` (mmpretrain) and ``tools/seg_seeds.py`` (mmseg) take runs as
``NAME=CONFIG``, pairs as ``NAME:REFERENCE`` and per-run options as ``NAME:KEY=VALUE``; the parsing
and its errors live here once. :func:`summarise` gives mean +- sd per run and metric and the paired
per-seed differences (:mod:`defect_plugins.stats`), :func:`markdown` the tables of the results document.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from defect_plugins.stats import format_mean_sd, mean_sd, paired_differences

__all__ = ["SeedsError", "markdown", "parse_pairs", "parse_runs", "summarise"]


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
