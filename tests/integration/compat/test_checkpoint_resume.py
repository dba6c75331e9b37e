"""mmengine checkpoints load under torch >= 2.6: a killed mmseg run resumes from its checkpoint.

The loader on its own (foreign objects still refused, upstream's failure without the fix):
tests/unit/compat/test_checkpoint_loading.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

TRAIN = str(REPO_ROOT / "tools" / "mim_train.sh")
CONFIG = str(REPO_ROOT / "tests" / "fixtures" / "tiny_mmseg_unet.py")


def _train(work_dir: Path, data_root: Path, max_iters: int, *extra: str) -> list[str]:
    return [
        TRAIN, "mmseg", CONFIG, "--work-dir", str(work_dir), *extra,
        "--cfg-options", f"train_dataloader.dataset.data_root={data_root}", f"train_cfg.max_iters={max_iters}",
    ]


def test_killed_run_resumes_from_its_checkpoint(tmp_path, tiny_seg_data):
    work_dir = tmp_path / "work"
    # A long run, killed (SIGKILL: no clean-up) as soon as its first checkpoint is on disk.
    run = subprocess.Popen(
        _train(work_dir, tiny_seg_data, 10_000), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 240
    # mmengine writes last_checkpoint with a plain open('w'): wait until it names a file, not only exists
    while not ((work_dir / "last_checkpoint").exists() and (work_dir / "last_checkpoint").read_text().strip()):
        assert run.poll() is None, run.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint file finish before the kill
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()

    saved = Path((work_dir / "last_checkpoint").read_text().strip())
    start_iter = int(saved.stem.split("_")[1])
    resumed = subprocess.run(
        _train(work_dir, tiny_seg_data, start_iter + 2, "--resume"), cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f"resumed epoch: 0, iter: {start_iter}" in log
    assert (work_dir / f"iter_{start_iter + 2}.pth").is_file()
