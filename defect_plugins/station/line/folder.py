"""The watched folder as a line trigger: each new image is a part, its id and lot read from the file name.

``--watch DIR --watch-pattern REGEX``: the pattern is a Python regular expression with a named group
``part_id`` and optionally ``lot``, matched against the whole file name, e.g.
``(?P<lot>[A-Z0-9]+)_(?P<part_id>\\d+)\\.png``. Each image that appears in the folder after the start is
inspected once through :meth:`.parts.PartInspector.inspect_part` (origin ``watch``). A name the pattern
does not match is still a part the camera saw: it gets an ``ERROR`` verdict under the part id
``unmatched:<name>``, so the line hears of it instead of silence.

A file is taken when its size stayed the same over two polls (a camera that writes in place is not read
half-written; one that writes a hidden temporary file and renames it, as most do, is taken at once on
the next poll). Images present at start are taken as already handled: the station cannot know whether
the line still waits for them (give the backlog to the line again by moving the files out and back).
"""
from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from ..watch import WatchFolder
from .parts import PartError, PartInspector

log = logging.getLogger("defect_plugins.station.line")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``--watch-pattern``: a regular expression with a ``part_id`` group (and optionally ``lot``)."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"--watch-pattern {pattern!r}: not a regular expression ({error})") from None
    if "part_id" not in compiled.groupindex:
        raise ValueError(f"--watch-pattern {pattern!r}: needs a named group (?P<part_id>...); lot is optional "
                         f"(?P<lot>...)")
    unknown = set(compiled.groupindex) - {"part_id", "lot"}
    if unknown:
        raise ValueError(f"--watch-pattern {pattern!r}: unknown named groups {sorted(unknown)} (part_id, lot)")
    return compiled


def parse_name(pattern: re.Pattern[str], name: str) -> tuple[str, str | None] | None:
    """``(part_id, lot)`` from a file name, or None when the pattern does not match all of it."""
    match = pattern.fullmatch(name)
    if match is None or not match.group("part_id"):
        return None
    lot = match.groupdict().get("lot")
    return match.group("part_id"), lot or None


class FolderTrigger:
    """Polls ``folder`` every ``interval`` seconds in a thread; every new, settled image is one part."""

    def __init__(self, folder: WatchFolder, pattern: re.Pattern[str], inspector: PartInspector, *,
                 interval: float = 0.2) -> None:
        self.folder, self.pattern, self.inspector, self.interval = folder, pattern, inspector, float(interval)
        self._seen = {path.name for path in folder.files()}
        self._sizes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="defect-station-folder", daemon=True)
        self.handled = 0

    def start(self) -> None:
        log.info("watching %s for parts (%d images there already taken as handled)", self.folder.folder,
                 len(self._seen))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def poll(self) -> list[dict[str, Any]]:
        """One pass: the verdicts of the images that settled since the last pass, oldest first."""
        verdicts = []
        for path in reversed(self.folder.files()):  # oldest first: the order the camera wrote them
            name = path.name
            if name in self._seen:
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue  # gone again
            if self._sizes.get(name) != size:
                self._sizes[name] = size  # not settled yet: look again on the next pass
                continue
            self._sizes.pop(name, None)
            self._seen.add(name)
            verdicts.append(self._inspect(path))
        return verdicts

    def _inspect(self, path: Path) -> dict[str, Any]:
        parsed = parse_name(self.pattern, path.name)
        if parsed is None:
            part_id, lot = f"unmatched:{path.name}"[:200], None
            log.warning("watch: %s does not match --watch-pattern %s", path.name, self.pattern.pattern)
        else:
            part_id, lot = parsed
        try:
            # unmatched: recorded and published as ERROR (the camera saw a part the line cannot name)
            failure = None if parsed else f"{path.name} does not match --watch-pattern {self.pattern.pattern}"
            return self.inspector.inspect_part(part_id, lot, str(path), origin="watch", failure=failure)
        except PartError as error:
            log.error("watch: %s: %s", path.name, error)
            return {"verdict": "ERROR", "part_id": part_id, "error": str(error), "inspection_id": None}
        finally:
            self.handled += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # the watcher must outlive one bad pass (a folder briefly unmounted, ...)
                log.exception("watch: a pass over %s failed; trying again", self.folder.folder)
