"""Run the demo's steps: one line per step with elapsed time, live training progress, full logs.

Trainings run as the commands a user would type (``anomalib train``, ``defect-train``), as
subprocesses. Their whole output goes to ``OUT/logs/<step>.log``; the lines that say how a
training is going (mmengine's ``Epoch(train)`` / ``Iter(train)`` / ``Epoch(val)`` / ``Iter(val)``
lines, and the ``[progress]`` lines of :class:`defect_plugins.anomaly.callbacks.EpochProgress`)
are also echoed, shortened, to the terminal while the step runs.

Independent families run side by side in *lanes* (:meth:`StepRunner.lanes`): on a small CPU two
one-thread trainings get more done than one two-thread training (PyTorch's small convolutions
scale poorly past one core), so each training is started with ``OMP_NUM_THREADS`` = the CPU
budget divided by the lanes still running at that moment. In-process steps (ONNX export,
OpenVINO scoring) take turns through :meth:`StepRunner.in_process`: ``torch.onnx.export`` keeps
global state and must not run twice at once in one interpreter.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from defect_plugins.runners.process import die_with_parent

# "12/01 21:10:40 - mmengine - INFO - Epoch(train)  [2][14/14]  lr: 5.0e-02  eta: ...  loss: 1.9474"
_MMENGINE = re.compile(r"(Epoch|Iter)\((train|val)\)\s*(\[[^\]]*\](?:\[[^\]]*\])?)(.*)")
# the figures worth a terminal line; everything else stays in the log
_KEEP = re.compile(r"\b(loss|accuracy/top1|mIoU|region/mIoU|RA|mAUROC): ([-0-9.e]+)")


class DemoError(RuntimeError):
    """A demo step failed; the message names the step, its log and the log's last lines.

    ``cancelled``: the step was stopped (or never started) because a step of another lane failed.
    """

    def __init__(self, message: str, *, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


def progress_line(line: str) -> str | None:
    """The short terminal form of a training log line, or None when the line is not progress."""
    if "[progress]" in line:
        return line.split("[progress]", 1)[1].strip()
    match = _MMENGINE.search(line)
    if match is None:
        return None
    kind, phase, where, rest = match.groups()
    figures = " ".join(f"{key} {value}" for key, value in _KEEP.findall(rest))
    return f"{kind.lower()} {where} {phase}" + (f": {figures}" if figures else "")


class StepRunner:
    """Times the demo's steps and runs their commands with logs and live progress."""

    def __init__(self, log_dir: Path, *, cwd: Path, echo: bool = True, threads: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cwd = Path(cwd)
        self.echo = echo
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        # the CPU budget shared by the lanes: OMP_NUM_THREADS when set (CI sets it), else every CPU
        self.threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
        self._active_lanes = 1
        self._lock = threading.Lock()  # printing, lane count, live processes
        self._in_process = threading.Lock()
        self._processes: set[subprocess.Popen] = set()
        self._cancelled = False

    def say(self, text: str) -> None:
        if self.echo:
            with self._lock:
                print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)

    def training_threads(self) -> int:
        """``OMP_NUM_THREADS`` for a training started now: the budget over the lanes still running."""
        with self._lock:
            return max(1, self.threads // max(1, self._active_lanes))

    @contextlib.contextmanager
    def in_process(self) -> Iterator[None]:
        """One in-process step at a time (export, scoring), whichever lane asks."""
        with self._in_process:
            yield

    def lanes(self, *work: Callable[[], object]) -> list[object]:
        """Run each callable in its own lane (thread); return their results in order.

        The first failure cancels the others (their running trainings are killed) and is raised
        once every lane has stopped, so no step is left running behind the error.
        """
        if len(work) <= 1:
            return [job() for job in work]
        results: list[object] = [None] * len(work)
        errors: list[BaseException] = []

        def lane(index: int, job: Callable[[], object]) -> None:
            try:
                results[index] = job()
            except BaseException as error:  # noqa: BLE001 - handed to the caller below
                with self._lock:
                    errors.append(error)
                self.cancel()
            finally:
                with self._lock:
                    self._active_lanes -= 1

        with self._lock:
            self._active_lanes = len(work)
        threads = [threading.Thread(target=lane, args=(i, job), name=f"demo-lane-{i}", daemon=True)
                   for i, job in enumerate(work)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)  # a timed join keeps Ctrl-C deliverable to the main thread
        except BaseException:
            self.cancel()
            for thread in threads:
                thread.join()
            raise
        finally:
            with self._lock:
                self._active_lanes = 1
        if errors:
            # the first real failure, not the "cancelled" of the lanes it stopped
            first = next((e for e in errors if not (isinstance(e, DemoError) and e.cancelled)), errors[0])
            raise first
        return results

    def cancel(self) -> None:
        """Stop every running training and refuse new ones (another lane failed)."""
        with self._lock:
            self._cancelled = True
            processes = list(self._processes)
        for process in processes:
            with contextlib.suppress(OSError):
                process.kill()

    @contextlib.contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        """Announce a step, time it, and record its duration under ``name``."""
        self.say(f"{name}: {what}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        self.say(f"{name}: done in {self.seconds[name]:.1f} s")

    def run(self, name: str, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Run ``command``; stream progress lines; raise :class:`DemoError` on a non-zero exit."""
        log = self.log_dir / f"{name}.log"
        threads = str(self.training_threads())
        self.say(f"{name}: $ OMP_NUM_THREADS={threads} {shlex.join(command)}")
        self.say(f"{name}: log {log}")
        # MKL too: an MKL_NUM_THREADS inherited from the caller (2 here) on top of the lanes' OMP budget
        # oversubscribed the cores and made every demo step 3-5x slower (measured on a 2-core CPU)
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
                    **(env or {})}
        with log.open("w") as handle:
            with self._lock:
                if self._cancelled:
                    raise DemoError(f"step '{name}' not started: another step failed", cancelled=True)
                process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           cwd=self.cwd, env=full_env, text=True, errors="replace", bufsize=1,
                                           preexec_fn=die_with_parent())  # no orphan if the demo is killed
                self._processes.add(process)
            assert process.stdout is not None
            try:
                for line in process.stdout:
                    handle.write(line)
                    short = progress_line(line)
                    if short is not None:
                        self.say(f"{name} | {short}")
            except BaseException:
                process.kill()
                raise
            finally:
                code = process.wait()
                with self._lock:
                    self._processes.discard(process)
                    cancelled = self._cancelled
        if code != 0 and cancelled:
            raise DemoError(f"step '{name}' stopped: another step failed", cancelled=True)
        if code != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-25:])
            raise DemoError(f"step '{name}' failed (exit {code}); log {log}:\n{tail}")


def latest(root: Path, pattern: str) -> Path:
    """The newest file under ``root`` matching ``pattern`` (the checkpoint a training left last)."""
    matches = sorted(Path(root).rglob(pattern), key=lambda p: p.stat().st_mtime)
    if not matches:
        raise DemoError(f"no {pattern} under {root}")
    return matches[-1]


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter (console scripts may not be on PATH)."""
    return [sys.executable, "-m", module, *args]


def console_command(script: str, module: Sequence[str]) -> list[str]:
    """A console script of *this* environment (next to its python), else ``python -m module...``.

    ``module`` is the module form's argv (``["defect_plugins.runners.launcher", "launch", "train"]`` for
    ``defect-train``). Looking next to ``sys.executable`` rather than on PATH keeps another
    environment's script of the same name out, which matters when the venv was not activated.
    """
    path = Path(sys.executable).parent / script
    return [str(path)] if path.is_file() and os.access(path, os.X_OK) else python_module(*module)
