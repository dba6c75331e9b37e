"""Training through an OpenMMLab toolkit's own Runner, for ``defect-fit``: progress lines and resumption."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .distributed import DistributedOptions


def _last_loss(run_dir: Path) -> float | None:
    files = sorted(run_dir.glob("*/vis_data/scalars.json"))
    if not files:
        return None
    for line in reversed(files[-1].read_text().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in record:
            return float(record["loss"])
    return None


RANKS = "ranks"  # WORK_DIR/ranks/rank<R>.json, written by each process (:mod:`.rank_hook`)


def rank_records(run_dir: Path) -> list[dict]:
    """What each process of the last training in ``run_dir`` trained on (:mod:`.rank_hook`), by rank."""
    return [json.loads(p.read_text()) for p in sorted((run_dir / RANKS).glob("rank*.json"))]


def train_openmmlab(toolkit: str, config: Path, run_dir: Path, epochs: int,
                    log: Callable[[str], None], dist: DistributedOptions | None = None) -> tuple[Path, float]:
    """``toolkit``'s Runner in a child process (resumed when cut off); one line per epoch; the last checkpoint.

    The child's output goes where this process's goes (the fit's log file, :mod:`.logs`); the terminal gets
    one line per finished epoch (mmengine's ``epoch_N.pth`` appearing, the last logged loss) and, after the
    first, the estimated training time. With ``dist`` over several processes the child is
    ``torch.distributed.run`` (:func:`defect_plugins.runners.launcher.distributed_command`, OpenMMLab's
    ``dist_train.sh``); global rank 0 writes the checkpoints, so on a machine other than 0 the training has
    succeeded when the child exits 0 (its checkpoints are on machine 0, or in a shared ``--work-dir``).
    """
    import os

    from .distributed import DistributedOptions
    from defect_plugins.runners.launcher import resumable_train_command
    from defect_plugins.runners.process import die_with_parent

    from .logs import duration

    dist = dist or DistributedOptions()
    final = run_dir / f"epoch_{epochs}.pth"
    if final.is_file():
        log(f"[fit] training finished earlier ({final})")
        return final, 0.0
    command = resumable_train_command(toolkit, config, run_dir, nproc=dist.nproc)
    env = {**os.environ, **dist.launcher_env(dist.port())} if dist.distributed else None
    if "--resume" in command:
        log(f"[fit] resuming the training in {run_dir}")
    started = time.perf_counter()

    def finished_epochs() -> int:
        return max((int(p.stem.split("_")[1]) for p in run_dir.glob("epoch_*.pth")), default=0)

    estimated = False
    seen, last, runner_started = finished_epochs(), started, False  # a resumed run starts after its last epoch
    for old in (run_dir / RANKS).glob("rank*.json"):  # an earlier, cut-off run's
        old.unlink()
    process = subprocess.Popen(command, env=env, preexec_fn=die_with_parent())  # our own interpreter and module
    while True:
        ended = process.poll() is not None
        if not runner_started and any(run_dir.glob("*/vis_data")):
            # the Runner is built (imports and start-up done): epoch 1 is timed from here, so that the
            # estimate is not inflated by the child's start-up
            last, runner_started = time.perf_counter(), True
        done = finished_epochs()
        if done > seen:
            now = time.perf_counter()
            seconds = (now - last) / (done - seen)
            loss = _last_loss(run_dir)
            line = f"[fit] epoch {done}/{epochs} loss {loss:.4f} ({seconds:.1f} s)" if loss is not None \
                else f"[fit] epoch {done}/{epochs} ({seconds:.1f} s)"
            if not estimated and epochs > 1:
                line += f"; estimated training time {duration(seconds * (epochs - seen))} for {epochs - seen} epochs"
            log(line)
            seen, last, estimated = done, now, True
        if ended:
            break
        time.sleep(0.5)
    if process.wait() != 0 or (dist.writes_bundle and not final.is_file()):
        raise RuntimeError(f"{toolkit} training of {config} failed (exit {process.returncode}); "
                           f"its log is in the fit's log file and under {run_dir}")
    if dist.distributed:
        ranks = ", ".join(f"rank {r['rank']}: {r['images']} images" for r in rank_records(run_dir))
        log(f"[fit] trained on {dist.describe()} ({ranks or 'no rank records'} on this machine)")
    return final, time.perf_counter() - started
