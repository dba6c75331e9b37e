"""The shadow report: how a candidate model would have judged the parts its slot's active model judged.

Read from the records alone (:meth:`.store.Store.history`), so it covers every inspection since the shadow
started, restarts included, and needs no model loaded: the ``results`` of an inspection hold the active
model of each slot and, tagged ``"role": "shadow"``, the shadow that ran beside it (:mod:`.engine`).

What an engineer weighs before activating: how often the two agree (OK/NG), the parts where they do
not (with a link to each part's view), and each one's false-reject rate against the operators: of the
parts an operator judged good (the final grade is the rule file's least severe), how many the model
called NG. Beside it, each bundle's own held-out false-reject rate, as its fit measured it
(:func:`.versions.held_out_false_reject`), to see whether the line behaves like the held-out set.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from defect_plugins.deploy.bundle import Bundle

from .store import Store
from .versions import held_out_false_reject

BundleOf = Callable[[str, str], Bundle | None]  # (name, version) -> its bundle, when the station knows it


def _slot_entries(text: str | None, slot: int) -> tuple[dict | None, dict | None]:
    """The active and the shadow result of ``slot`` in a record's ``results`` JSON."""
    active = shadow = None
    for entry in json.loads(text or "[]"):
        if entry.get("slot") != slot:
            continue
        if entry.get("role") == "shadow":
            shadow = entry
        elif entry.get("role", "active") == "active":
            active = entry
    return active, shadow


def _versions(text: str | None) -> dict[tuple[str, str], str]:
    """``{(role, name): version}`` of a record's ``models`` JSON."""
    return {(m.get("role", "active"), m["name"]): m.get("version") for m in json.loads(text or "[]")}


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def compare(store: Store, slot: int, *, good_grade: str, bundle_of: BundleOf | None = None,
            shadow: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """The report for ``slot``: the shadow ``shadow`` (a model name; default the last one that ran) against
    the active models beside it.

    ``good_grade``: the grade a good part gets (the rule file's first). ``bundle_of`` finds a model's bundle
    for its held-out rate (``None``: not reported). ``limit``: the newest inspections read (``None``: all).
    """
    rows = store.history(limit=limit)  # newest first
    pairs = []
    for row in rows:
        active, candidate = _slot_entries(row.get("results"), slot)
        if active is None or candidate is None:
            continue
        if shadow is None:
            shadow = candidate["model"]
        if candidate["model"] != shadow:
            continue
        pairs.append((row, active, candidate))
    versions_seen: dict[str, dict[str, set[str]]] = {"active": {}, "shadow": {}}
    differ, agree = [], 0
    good = {"total": 0, "active_ng": 0, "shadow_ng": 0}
    for row, active, candidate in pairs:
        versions = _versions(row.get("models"))
        versions_seen["active"].setdefault(active["model"], set()).add(versions.get(("active", active["model"])))
        versions_seen["shadow"].setdefault(candidate["model"], set()).add(
            versions.get(("shadow", candidate["model"])))
        verdicts = (active.get("model_verdict"), candidate.get("model_verdict"))
        if verdicts[0] == verdicts[1]:
            agree += 1
        else:
            differ.append({"inspection_id": row["id"], "part_id": row.get("part_id"), "created_at": row["created_at"],
                           "active": {"model": active["model"], "verdict": verdicts[0],
                                      "score": active.get("score"), "grade": active.get("grade")},
                           "shadow": {"model": candidate["model"], "verdict": verdicts[1],
                                      "score": candidate.get("score"), "grade": candidate.get("grade")},
                           "operator_grade": row["current_grade"] if row.get("decision") else None,
                           "view": f"/api/part/{row['id']}"})
        if row.get("decision") and row.get("current_grade") == good_grade:  # an operator judged the part good
            good["total"] += 1
            good["active_ng"] += verdicts[0] == "NG"
            good["shadow_ng"] += verdicts[1] == "NG"

    def side(role: str) -> list[dict[str, Any]]:
        out = []
        for name, versions in sorted(versions_seen[role].items()):
            for version in sorted(v for v in versions if v):
                bundle = bundle_of(name, version) if bundle_of else None
                out.append({"name": name, "version": version, "held_out_false_reject": held_out_false_reject(bundle)})
        return out

    return {"slot": slot, "shadow": shadow, "count": len(pairs), "agreement": _rate(agree, len(pairs)),
            "agree": agree, "differ": differ,
            "operator_good": good["total"],
            "false_reject": {"active": _rate(good["active_ng"], good["total"]),
                             "shadow": _rate(good["shadow_ng"], good["total"]),
                             "active_rejected": good["active_ng"], "shadow_rejected": good["shadow_ng"]},
            "models": {"active": side("active"), "shadow": side("shadow")}}


def main(argv: list[str]) -> int:
    """``defect-station models compare --db DB --slot N``: the report as JSON on stdout (the station may run)."""
    import argparse
    import sys
    from pathlib import Path

    from defect_plugins.deploy.grading import load_rules

    from .errors import StationError
    from .versions import BundleShelf

    parser = argparse.ArgumentParser(prog="defect-station models",
                                     description="model versions: the shadow comparison report of a slot")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("compare", help="a slot's shadow model against its active models, from the records")
    command.add_argument("--db", type=Path, required=True, help="the station's SQLite file")
    command.add_argument("--slot", type=int, required=True, help="the slot (0 for the station's first --model)")
    command.add_argument("--shadow", help="the shadow model's name (default: the last one that ran in the slot)")
    command.add_argument("--rules", type=Path, help="the station's rule file: its first grade is a good part's "
                                                    "(default: the packaged rules)")
    command.add_argument("--bundles", type=Path, metavar="DIR",
                         help="the station's folder of bundles: their held-out false-reject rates")
    args = parser.parse_args(argv[1:])
    if not args.db.is_file():
        print(f"defect-station models: error: {args.db}: no such database", file=sys.stderr)
        return 2
    try:
        found, _ = BundleShelf(args.bundles).entries()
    except StationError as error:
        print(f"defect-station models: error: {error.message}", file=sys.stderr)
        return 2
    store = Store(args.db)
    try:
        report = compare(store, args.slot, good_grade=load_rules(args.rules).grades[0],
                         bundle_of=lambda name, version: next((c.bundle for c in found if c.version == version), None),
                         shadow=args.shadow)
    finally:
        store.close()
    print(json.dumps(report, indent=2))
    return 0
