"""One line per step on the terminal; everything the toolkits print goes to the fit's log file.

anomalib's export, NNCF's quantization and Lightning print hundreds of lines (progress bars, per-node
INFO lines, deprecation warnings) that say nothing to someone fitting a model. :class:`FitLog` keeps a
handle on the terminal and, inside :meth:`FitLog.quiet`, points the process's standard output and error
(file descriptors 1 and 2, so C extensions and child processes are caught too) at ``fit.log`` in the
work folder. The fit's own lines go to both.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


class FitLog:
    """``log(line)`` prints to the terminal and appends to ``path``; ``quiet()`` sends all other output to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        self._terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)

    def __call__(self, line: str) -> None:
        print(line, file=self._terminal, flush=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Standard output and error into the log file for the duration (restored on any exit)."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with self.path.open("a", encoding="utf-8") as handle:
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    def close(self) -> None:
        self._terminal.close()


def duration(seconds: float) -> str:
    """``45 s``, ``12.4 min`` or ``3.2 h``: a training-time estimate in the unit a person reads at a glance."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
