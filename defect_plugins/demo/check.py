"""Check a demo's ``summary.json``: every promised figure present, in range, and its target met.

    python -m defect_plugins.demo.check demo_output/summary.json [--figures-only]

Exit status 0 when all is well, 1 with one line per problem otherwise. ``--figures-only`` checks
presence and range but not the targets (for deliberately short runs). The demo's wall time and its
8-minute target are printed, never checked: a time is a figure of the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .full import TARGETS


def problems(summary: dict[str, Any], *, require_targets: bool = True) -> list[str]:
    """What is wrong with a full demo's summary (empty when nothing)."""
    found = []
    checks = summary.get("targets", {})
    for key in [*TARGETS, "cls.int8_accepted"]:
        family, figure = key.split(".")
        if family not in summary:
            found.append(f"{key}: the summary has no '{family}' section")
            continue
        value = summary[family].get(figure) if figure != "int8_accepted" else summary[family]["int8"].get("accepted")
        if value is None:
            found.append(f"{key}: missing")
        elif not isinstance(value, bool) and not 0.0 <= float(value) <= 1.0:
            found.append(f"{key}: {value} is not in [0, 1]")
        elif require_targets and not checks.get(key, {}).get("met", False):
            found.append(f"{key}: {value} misses its target {checks.get(key, {}).get('target')}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m defect_plugins.demo.check", description=__doc__.split("\n")[0])
    parser.add_argument("summary", type=Path, help="summary.json written by defect-demo")
    parser.add_argument("--figures-only", action="store_true", help="do not require the targets")
    args = parser.parse_args(argv)
    try:
        summary = json.loads(args.summary.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"{args.summary}: not a readable summary.json ({error})", file=sys.stderr)
        return 1
    found = problems(summary, require_targets=not args.figures_only)
    for line in found:
        print(f"{args.summary}: {line}", file=sys.stderr)
    if not found:
        figures = ", ".join(f"{key} {check['value']}" for key, check in summary["targets"].items()
                            if check.get("checked", True))
        time_check = summary["targets"].get("time.seconds", {})
        time_text = (f"{summary.get('seconds')} s (target {time_check['target']:.0f} s "
                     f"{'met' if time_check['met'] else 'missed'}; not checked)" if time_check
                     else f"{summary.get('seconds')} s")
        print(f"{args.summary}: all figures present{'' if args.figures_only else ' and targets met'}: {figures}; "
              f"demo wall time {time_text}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
