"""Noise curves over several seeds: mean +- sd per level and paired per-seed differences.

``experiments/mgjr/noise_robustness.py`` evaluates one seed's checkpoints; this tool reads one of its JSON files
per seed and summarises them the way ``experiments/neu_cls/neu_cls_seeds.py`` summarises clean accuracy:

    python experiments/mgjr/noise_robustness_seeds.py \\
        0=W/seed0/noise/noise_robustness.json 1=W/seed1/noise/noise_robustness.json \\
        2=W/seed2/noise/noise_robustness.json \\
        --compare mgjr:student mgjr:agts_ce --out W/noise_seeds

Per model and seed two summary figures are formed from the curves, each the mean top-1 over the
corrupted levels (the clean level excluded) of the kinds in the group:

* ``training_kinds`` - the corruptions AGTS trains on (Gaussian, salt-and-pepper, blur);
* ``held_out`` - corruptions no model saw in training (speckle, JPEG, motion blur, contrast).

For each group and for ``clean`` the paired differences ``A - B`` per seed, with mean and sd
(:mod:`experiments.lib.stats`), answer "does A beat B under corruptions it never saw". Every seed's
file must hold the same kinds and levels (one protocol), else the tool stops and names the file.

Writes ``OUT/noise_robustness_seeds.json`` and ``.md`` (atomically) and prints the tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file from a clone: `experiments.*` importable
    sys.path.insert(0, str(REPO_ROOT))

from defect_plugins.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from experiments.lib.stats import format_mean_sd, mean_sd, paired_differences  # noqa: E402
from experiments.mgjr.noise_robustness import is_identity  # noqa: E402


class NoiseSeedsError(RuntimeError):
    """A bad argument or an inconsistent input file; the message names it."""


def load_runs(items: list[str]) -> dict[int, dict]:
    """``SEED=PATH`` items -> ``{seed: noise_robustness.json content}``, all with one protocol."""
    runs: dict[int, dict] = {}
    reference: tuple[str, dict] | None = None
    for item in items:
        seed_text, sep, path_text = item.partition("=")
        if not sep or not seed_text.strip().isdigit() or not path_text:
            raise NoiseSeedsError(f"expected SEED=PATH (an integer seed), got {item!r}")
        seed, path = int(seed_text), Path(path_text)
        if seed in runs:
            raise NoiseSeedsError(f"seed {seed} given twice")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NoiseSeedsError(f"{path}: not found (seed {seed})") from None
        except json.JSONDecodeError as error:
            raise NoiseSeedsError(f"{path}: not JSON ({error})") from None
        if not isinstance(data.get("levels"), dict) or not isinstance(data.get("models"), dict):
            raise NoiseSeedsError(f"{path}: expected the 'levels' and 'models' of experiments/mgjr/noise_robustness.py")
        if reference is None:
            reference = (str(path), data["levels"])
        elif data["levels"] != reference[1]:
            raise NoiseSeedsError(f"{path}: levels {data['levels']} differ from {reference[0]}'s {reference[1]}")
        runs[seed] = data
    if not runs:
        raise NoiseSeedsError("no SEED=PATH given")
    return runs


def group_means(entry: dict, levels: dict[str, list], held_out: list[str]) -> dict[str, float]:
    """Mean top-1 over the corrupted levels of the training kinds and of the held-out kinds."""
    groups: dict[str, list[float]] = {"training_kinds": [], "held_out": []}
    for kind, kind_levels in levels.items():
        accs = entry[kind]
        corrupted = [acc for level, acc in zip(kind_levels, accs) if not is_identity(kind, level)]
        groups["held_out" if kind in held_out else "training_kinds"].extend(corrupted)
    return {name: sum(values) / len(values) for name, values in groups.items() if values}


def summarise(runs: dict[int, dict], compare: list[tuple[str, str]]) -> dict:
    seeds = sorted(runs)
    first = runs[seeds[0]]
    levels, held_out = first["levels"], first.get("held_out", [])
    models = [name for name in first["models"] if all(name in runs[s]["models"] for s in seeds)]
    if not models:
        raise NoiseSeedsError(f"no model is in every seed's file (seed {seeds[0]} has {list(first['models'])})")
    for a, b in compare:
        for name in (a, b):
            if name not in models:
                raise NoiseSeedsError(f"--compare {a}:{b}: {name!r} is not in every seed's file (models {models})")
    per_seed = {name: {seed: {"clean": runs[seed]["models"][name]["clean"],
                              **group_means(runs[seed]["models"][name], levels, held_out)} for seed in seeds}
                for name in models}
    # every seed has the same levels (load_runs), so every model and seed has the same groups
    figures = [fig for fig in ("clean", "training_kinds", "held_out") if fig in per_seed[models[0]][seeds[0]]]
    curves = {name: {kind: [mean_sd([runs[s]["models"][name][kind][i] for s in seeds])
                            for i in range(len(kind_levels))]
                     for kind, kind_levels in levels.items()} for name in models}
    summary = {name: {fig: mean_sd([per_seed[name][s][fig] for s in seeds]) for fig in figures} for name in models}
    differences = {f"{a} - {b}": {fig: paired_differences({s: per_seed[a][s][fig] for s in seeds},
                                                          {s: per_seed[b][s][fig] for s in seeds})
                                  for fig in figures} for a, b in compare}
    return {"seeds": seeds, "levels": levels, "held_out": held_out, "figures": figures, "per_seed": per_seed,
            "summary": summary, "curves": curves, "paired_differences": differences}


def markdown(report: dict) -> str:
    figures, seeds = report["figures"], report["seeds"]
    names = {"clean": "clean", "training_kinds": "training-noise kinds (mean over levels)",
             "held_out": "held-out corruptions (mean over levels)"}
    lines = [f"top-1 % over seeds {seeds} (mean +- sd)", "",
             "| model | " + " | ".join(names[f] for f in figures) + " |", "|---" * (len(figures) + 1) + "|"]
    for name, entry in report["summary"].items():
        lines.append(f"| {name} | " + " | ".join(format_mean_sd(entry[f]) for f in figures) + " |")
    if report["paired_differences"]:
        lines += ["", "| paired difference (points) | " + " | ".join(names[f] for f in figures) + " |",
                  "|---" * (len(figures) + 1) + "|"]
        for pair, entry in report["paired_differences"].items():
            cells = []
            for f in figures:
                per = ", ".join(f"{entry[f]['differences'][s]:+.2f}" for s in entry[f]["seeds"])
                cells.append(f"{per} -> **{format_mean_sd(entry[f])}**")
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    for kind, kind_levels in report["levels"].items():
        held = " (held out)" if kind in report["held_out"] else ""
        lines += ["", f"| {kind}{held} | " + " | ".join(f"{v:g}" for v in kind_levels) + " |",
                  "|---" * (len(kind_levels) + 1) + "|"]
        for name, curves in report["curves"].items():
            lines.append(f"| {name} | " + " | ".join(format_mean_sd(c, digits=1) for c in curves[kind]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="SEED=PATH", help="one noise_robustness.json per seed")
    parser.add_argument("--compare", nargs="*", default=[], metavar="A:B", help="paired differences A - B")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        compare = []
        for item in args.compare:
            a, sep, b = item.partition(":")
            if not sep or not a or not b:
                raise NoiseSeedsError(f"--compare: expected A:B, got {item!r}")
            compare.append((a, b))
        report = summarise(load_runs(args.runs), compare)
    except NoiseSeedsError as error:
        print(f"noise_robustness_seeds: error: {error}", file=sys.stderr)
        return 2
    text = markdown(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "noise_robustness_seeds.json", report, indent=2)
    atomic_write_text(args.out / "noise_robustness_seeds.md", text)
    print(f"wrote {args.out}/noise_robustness_seeds.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
