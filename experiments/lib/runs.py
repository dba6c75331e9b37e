"""How the studies run a step: a child process with its output kept in a log, and a resumable training.

Each study runs its steps as a user would, one process per step (``defect-train`` in its module form,
``defect-test``, ``defect-migrate``), the log kept beside the results; the error names the log when the
exit code is not 0. The command line of a resumable training is the package's own
(:func:`defect_plugins.runners.launcher.resumable_train_command`, which ``defect-teacher`` uses too).
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from defect_plugins.runners.launcher import LauncherError, resumable_train_command
from defect_plugins.runners.process import die_with_parent

__all__ = ["LauncherError", "run_logged", "train_resumable"]


def run_logged(command: Sequence[str], log: str | os.PathLike) -> int:
    """Run ``command`` as a child process, its command line and output appended to ``log``; its exit code.

    The child dies with the study's process (``die_with_parent``), so a killed study leaves no training behind.
    """
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stream:
        stream.write(f"$ {' '.join(map(str, command))}\n")
        stream.flush()
        return subprocess.call(list(command), stdout=stream, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())


def train_resumable(toolkit: str, config: str | os.PathLike, work_dir: str | os.PathLike,
                    cfg_options: Sequence[str] = ()) -> float:
    """Train ``config`` into ``work_dir`` in a child process, as ``defect-train`` would; return the seconds.

    The child's output is appended to ``work_dir/train.log`` (after the command line). A training cut
    off earlier resumes from the checkpoint mmengine recorded in ``work_dir/last_checkpoint``: the
    studies built on this one (``experiments/neu_cls/neu_cls_seeds.py``, ``experiments/arcd/seg_seeds.py``,
    ``experiments/migration/few_label_migration.py``) can be killed and started again. A failure raises
    :class:`~defect_plugins.runners.launcher.LauncherError` naming the log.
    """
    run_dir = Path(work_dir)
    command = resumable_train_command(toolkit, config, run_dir, cfg_options)
    log = run_dir / "train.log"
    start = time.perf_counter()
    code = run_logged(command, log)
    if code != 0:
        raise LauncherError(f"training {config} failed (exit {code}); log {log}")
    return round(time.perf_counter() - start, 1)
