"""The plant's figures from the records every station writes: per line, and the inspections behind them.

Read-only queries over the station's tables (:mod:`..db.schema`), the same on SQLite and PostgreSQL
(plain SQL: ``substr``, ``GROUP BY``, a correlated ``MAX``). Definitions, as the plant page and its CSV
state them:

* **throughput**: inspections per hour between the first and the last of the filtered period (at least
  one minute), and the number in the last hour before the newest record;
* **reject rate**: NG / (OK + NG); ERROR verdicts are counted apart (a part the line did not judge);
* **overrides**: parts the model called NG whose newest operator decision is ``accept``;
  ``false_reject_share`` = overrides / NG parts an operator decided (of the rejects that were reviewed, the
  share the operator found good), and ``false_reject_estimate`` = overrides / (OK + overrides): the share
  of good parts the model rejects, counting the parts it passed as good (what a quality engineer calls
  the false-reject rate, estimated from the overrides);
* **models**: each station's models with their versions, from its newest record;
* **drift**: each station's newest ``drift_changed`` audit entry per model (none: not watched).
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..store import DATE, StoreError, check_text, spreadsheet_safe

NO_LINE = "(no line)"  # records written without --line (uploads of an engineer's bench)
ROW_FIELDS = ["id", "created_at", "line", "station", "part_id", "lot", "verdict", "grade", "class_name", "score",
              "decision", "decided_at", "operator", "final_grade"]
GRADE_TEXT = re.compile(r"^[\w .+-]{1,100}$")


@dataclass(frozen=True)
class PlantFilters:
    """What the plant page filters by: line, local dates (``YYYY-MM-DD``, inclusive), the station's grade."""

    line: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    grade: str | None = None

    @classmethod
    def from_query(cls, query: Any) -> PlantFilters:  # noqa: ANN401  (a mapping of query parameters)
        """From ``?line=&from=&to=&grade=``; a bad value raises :class:`StoreError` naming it."""
        filters = cls(line=query.get("line") or None, date_from=query.get("from") or None,
                      date_to=query.get("to") or None, grade=query.get("grade") or None)
        for value, name in ((filters.date_from, "from"), (filters.date_to, "to")):
            if value and not DATE.match(value):
                raise StoreError(f"date '{name}' must be YYYY-MM-DD, got {value!r}")
        if filters.grade and not GRADE_TEXT.match(filters.grade):
            raise StoreError(f"grade filter must be a grade's name, got {filters.grade!r}")
        if filters.line:
            check_text(filters.line, "line filter", limit=200)
        return filters

    def where(self) -> tuple[str, dict[str, str]]:
        """``(" WHERE ...", parameters)`` over the ``inspections`` table aliased ``i``."""
        clauses, args = [], {}
        if self.line == NO_LINE:
            clauses.append("i.line IS NULL")
        elif self.line:
            clauses.append("i.line = :line")
            args["line"] = self.line
        if self.date_from:
            clauses.append("substr(i.created_at, 1, 10) >= :date_from")
            args["date_from"] = self.date_from
        if self.date_to:
            clauses.append("substr(i.created_at, 1, 10) <= :date_to")
            args["date_to"] = self.date_to
        if self.grade:
            clauses.append("i.grade = :grade")
            args["grade"] = self.grade
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


# the newest decision of each inspection (decision ids grow with time on every engine)
_NEWEST_DECISION = ("LEFT JOIN decisions d ON d.id = (SELECT MAX(d2.id) FROM decisions d2 "
                    "WHERE d2.inspection_id = i.id)")


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def line_figures(conn: Connection, filters: PlantFilters) -> list[dict[str, Any]]:
    """One dict per line (see the module's definitions), busiest first."""
    where, args = filters.where()
    counts = conn.execute(text(
        "SELECT COALESCE(i.line, :no_line) AS line, COUNT(*) AS inspected, "
        "SUM(CASE WHEN i.verdict = 'OK' THEN 1 ELSE 0 END) AS ok, "
        "SUM(CASE WHEN i.verdict = 'NG' THEN 1 ELSE 0 END) AS ng, "
        "SUM(CASE WHEN i.verdict = 'ERROR' THEN 1 ELSE 0 END) AS errors, "
        "SUM(CASE WHEN i.verdict = 'NG' AND d.decision IS NOT NULL THEN 1 ELSE 0 END) AS reviewed_rejects, "
        "SUM(CASE WHEN i.verdict = 'NG' AND d.decision = 'accept' THEN 1 ELSE 0 END) AS overrides, "
        "MIN(i.created_at) AS first_at, MAX(i.created_at) AS last_at "
        f"FROM inspections i {_NEWEST_DECISION}{where} GROUP BY COALESCE(i.line, :no_line) ORDER BY 2 DESC, 1"),
        {**args, "no_line": NO_LINE}).mappings().all()
    stations = _stations(conn, filters)
    drift = _drift(conn)
    lines = []
    for row in counts:
        ok, ng, overrides = int(row["ok"] or 0), int(row["ng"] or 0), int(row["overrides"] or 0)
        reviewed = int(row["reviewed_rejects"] or 0)
        first, last = _parse_time(row["first_at"]), _parse_time(row["last_at"])
        hours = max((last - first).total_seconds() / 3600.0, 1 / 60) if first and last else None
        line_stations = stations.get(row["line"], [])
        for station in line_stations:
            station["drift"] = drift.get(station["station"], {})
        lines.append({
            "line": row["line"], "inspected": int(row["inspected"]), "ok": ok, "ng": ng,
            "errors": int(row["errors"] or 0), "first_at": row["first_at"], "last_at": row["last_at"],
            "throughput_per_h": round(int(row["inspected"]) / hours, 2) if hours else None,
            "last_hour": _last_hour(conn, row["line"], last, filters) if last else 0,
            "reject_rate": round(ng / (ok + ng), 4) if ok + ng else None,
            "overrides": overrides, "reviewed_rejects": reviewed,
            "false_reject_share": round(overrides / reviewed, 4) if reviewed else None,
            "false_reject_estimate": round(overrides / (ok + overrides), 4) if ok + overrides else None,
            "stations": line_stations,
            "drift": _worst([s["drift"] for s in line_stations]),
        })
    return lines


def _last_hour(conn: Connection, line: str, last: datetime, filters: PlantFilters) -> int:
    where, args = filters.where()
    since = last.timestamp() - 3600.0
    rows = conn.execute(text(f"SELECT i.created_at FROM inspections i{where}"
                             f"{' AND' if where else ' WHERE'} COALESCE(i.line, :no_line) = :this_line "
                             "AND i.created_at >= :floor"),
                        {**args, "no_line": NO_LINE, "this_line": line,
                         "floor": datetime.fromtimestamp(since - 86400).isoformat()[:10]}).scalars()
    # local times with their offsets: compared as moments, not as text
    return sum(1 for value in rows if (moment := _parse_time(value)) is not None and moment.timestamp() > since)


def _stations(conn: Connection, filters: PlantFilters) -> dict[str, list[dict[str, Any]]]:
    """Per line, each station's newest record in the filter: its time and its models with versions."""
    where, args = filters.where()
    rows = conn.execute(text(
        "SELECT COALESCE(i.line, :no_line) AS line, COALESCE(i.station, '') AS station, i.created_at, i.models "
        f"FROM inspections i WHERE i.id IN (SELECT MAX(i.id) FROM inspections i{where} "
        "GROUP BY COALESCE(i.line, :no_line), COALESCE(i.station, '')) ORDER BY 1, 2"),
        {**args, "no_line": NO_LINE}).mappings()
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        try:
            models = json.loads(row["models"] or "[]")
        except json.JSONDecodeError:
            models = []
        found.setdefault(row["line"], []).append({
            "station": row["station"], "last_at": row["created_at"],
            "models": [{"name": m.get("name"), "version": m.get("version"),
                        "bundle": (m.get("bundle") or {}).get("name")} for m in models
                       if isinstance(m, dict) and m.get("role", "active") == "active"]})
    return found


DRIFT_LEVELS = ("ok", "collecting", "warn", "drift")


def _drift(conn: Connection) -> dict[str, dict[str, dict[str, Any]]]:
    """``{station: {model: newest drift entry's detail}}`` from the audit trail's ``drift_changed`` entries."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    rows = conn.execute(text("SELECT at, detail FROM audit WHERE action = 'drift_changed' ORDER BY id"))
    for at, detail in rows:
        try:
            entry = json.loads(detail)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("model"):
            found.setdefault(str(entry.get("station") or ""), {})[str(entry["model"])] = {**entry, "at": at}
    return found


def _worst(per_station: Iterable[dict[str, dict[str, Any]]]) -> str | None:
    """The line's drift state: the worst of its stations' models (None: no model watched)."""
    states = [entry.get("state") for models in per_station for entry in models.values()]
    known = [s for s in states if s in DRIFT_LEVELS]
    return max(known, key=DRIFT_LEVELS.index) if known else None


def inspection_rows(conn: Connection, filters: PlantFilters, *, limit: int | None = 500) -> list[dict[str, Any]]:
    """The filtered inspections, newest first, with their newest decision."""
    where, args = filters.where()
    sql = ("SELECT i.id, i.created_at, COALESCE(i.line, :no_line) AS line, i.station, i.part_id, i.lot, i.verdict, "
           "i.grade, i.class_name, i.score, d.decision, d.decided_at, d.operator, d.final_grade "
           f"FROM inspections i {_NEWEST_DECISION}{where} ORDER BY i.id DESC")
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [dict(row) for row in conn.execute(text(sql), {**args, "no_line": NO_LINE}).mappings()]


def rows_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV text of :func:`inspection_rows`; cells a spreadsheet would run as formulas are quoted as text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: spreadsheet_safe(row.get(key)) for key in ROW_FIELDS})
    return buffer.getvalue()
