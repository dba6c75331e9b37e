"""The operator's line view in numbers: the shift's counters and reject rate, and the last parts as a strip.

Shifts start at the local times given by ``--shifts`` (default ``06:00,14:00,22:00``, three 8-hour
shifts); the current shift runs from the latest start that has passed, yesterday's last one before the
first start of the day. Counters come from the records (not from memory), so a restarted station shows
the same shift figures. The reject rate is NG / (OK + NG): parts whose verdict is ERROR are counted
apart, since they were neither accepted nor rejected by a model.
"""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..store import Store

DEFAULT_SHIFTS = "06:00,14:00,22:00"
STRIP = 20  # parts shown in the operator's strip


def parse_shifts(text: str) -> list[time]:
    """``--shifts``: comma-separated local start times ``HH:MM``, at least one, each once."""
    starts = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", part)
        if not match:
            raise ValueError(f"--shifts {text!r}: {part!r} is not a time HH:MM (00:00 to 23:59)")
        starts.append(time(int(match.group(1)), int(match.group(2))))
    if len(set(starts)) != len(starts):
        raise ValueError(f"--shifts {text!r}: a start time is given twice")
    return sorted(starts)


def shift_start(moment: datetime, starts: list[time]) -> datetime:
    """The start of the shift ``moment`` (timezone-aware, local) falls in."""
    today = [datetime.combine(moment.date(), start, moment.tzinfo) for start in starts]
    passed = [start for start in today if start <= moment]
    if passed:
        return passed[-1]
    return datetime.combine(moment.date() - timedelta(days=1), starts[-1], moment.tzinfo)


def line_summary(store: Store, starts: list[time], *, moment: datetime | None = None) -> dict[str, Any]:
    """The current shift's counters and the last :data:`STRIP` parts (newest first)."""
    moment = moment or datetime.now().astimezone()
    since = shift_start(moment, starts)
    # created_at is ISO 8601 local time with its offset, written by this PC: text order is time order
    # within one offset; the shift start is written the same way
    since_text = since.isoformat(timespec="milliseconds")

    def read(conn: Connection) -> tuple[dict[str, int], list[dict[str, Any]]]:
        counts = {row.verdict: row.n for row in conn.execute(text(
            "SELECT COALESCE(verdict, 'unknown') AS verdict, COUNT(*) AS n FROM inspections "
            "WHERE created_at >= :since GROUP BY 1"), {"since": since_text})}
        recent = [dict(row) for row in conn.execute(text(
            "SELECT id AS inspection_id, created_at, source, part_id, lot, verdict, grade, class_name "
            "FROM inspections ORDER BY id DESC LIMIT :strip"), {"strip": STRIP}).mappings()]
        return counts, recent
    counts, recent = store.read("reading the shift's counters", read)
    ok, ng, errors = counts.get("OK", 0), counts.get("NG", 0), counts.get("ERROR", 0)
    return {"shift": {"start": since_text, "inspected": sum(counts.values()), "ok": ok, "ng": ng, "errors": errors,
                      "reject_rate": ng / (ok + ng) if ok + ng else None},
            "recent": recent}
