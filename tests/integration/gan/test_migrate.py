"""``defect-migrate``: training through the launcher (mmengine Runner), kill -9 + resume, sample grids,
translation of a labelled folder (class folders kept, a corrupt file reported), bad inputs."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch

from defect_plugins.gan.cli import main
from tests.conftest import REPO_ROOT

TINY = ["--img-size", "32", "--gen-channels", "4", "--gen-blocks", "1", "--disc-channels", "4",
        "--checkpoint-interval", "2", "--sample-interval", "2", "--log-interval", "1"]


def _command(a: Path, b: Path, work: Path, iters: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "defect_plugins.gan.cli", "train", "--source", str(a), "--target", str(b),
            "--work-dir", str(work), "--iters", str(iters), *TINY, *extra]


@pytest.fixture(scope="module")
def killed_and_resumed(domain_a, domain_b, tmp_path_factory):
    """A long training killed with SIGKILL after its first checkpoint, then resumed for two more iterations."""
    work = tmp_path_factory.mktemp("migrate") / "work"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.Popen(_command(domain_a, domain_b, work, 10_000), cwd=REPO_ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    # mmengine writes last_checkpoint after the checkpoint file, with a plain open('w'): wait for a name
    while not ((work / "last_checkpoint").exists() and (work / "last_checkpoint").read_text().strip()):
        assert run.poll() is None, run.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.2)
    time.sleep(0.3)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    saved = Path((work / "last_checkpoint").read_text().strip())
    start = int(saved.stem.split("_")[1])
    resumed = subprocess.run(_command(domain_a, domain_b, work, start + 2, "--resume"), cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return work, start, resumed.stdout + resumed.stderr


def test_killed_training_resumes_from_its_iteration(killed_and_resumed):
    work, start, log = killed_and_resumed
    assert re.search(rf"resumed epoch: \d+, iter: {start}\b", log), log[-3000:]
    assert f"Iter(train) [{start + 2}/{start + 2}]" in log and "loss_g" in log and "loss_d" in log
    ckpt = torch.load(work / f"iter_{start + 2}.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["iter"] == start + 2
    assert set(ckpt["optimizer"]) == {"generators", "discriminators"}  # both Adam states saved
    # one generated image per iteration (batch 1, pool of 50): the history survived the kill and the resume
    assert int(ckpt["state_dict"]["pools.a.num_stored"]) == start + 2
    assert (work / "cyclegan_config.py").is_file()


def test_sample_grids_show_both_cycles(killed_and_resumed):
    work, start, _ = killed_and_resumed
    grid = cv2.imread(str(work / "samples" / f"iter_{start + 2:06d}.png"))
    # 6 rows (A, A->B, A->B->A, B, B->A, B->A->B) x 6 columns of 32 px cells with 2 px gaps
    assert grid.shape == (6 * 34 + 2, 6 * 34 + 2, 3)
    assert len(list((work / "samples").glob("iter_*.png"))) >= 2


def test_translate_keeps_class_folders_and_reports_a_corrupt_file(killed_and_resumed, domain_a, tmp_path, capsys):
    work, start, _ = killed_and_resumed
    labelled = tmp_path / "labelled"
    shutil.copytree(domain_a, labelled)
    (labelled / "inclusion" / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "migrated"
    assert main(["translate", "--checkpoint", str(work / f"iter_{start + 2}.pth"), "--input", str(labelled),
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"cannot read {labelled / 'inclusion' / 'damaged.png'}" in captured.err
    assert "translated 12 image(s) a2b" in captured.out and "1 unreadable" in captured.out
    originals = sorted(p.relative_to(domain_a) for p in domain_a.rglob("*.png"))
    assert sorted(p.relative_to(out) for p in out.rglob("*.png")) == originals  # same classes, names, count
    assert all(cv2.imread(str(out / rel)).shape == (32, 32, 3) for rel in originals)
    assert not list(out.rglob(".*tmp-*"))  # atomic writes leave no temporary files
    meta = json.loads((out / "migration.json").read_text())
    assert meta["translated"] == 12 and meta["unreadable"] == [str(labelled / "inclusion" / "damaged.png")]

    with pytest.raises(SystemExit) as exit_info:  # never writes into a non-empty folder
        main(["translate", "--checkpoint", str(work / f"iter_{start + 2}.pth"), "--input", str(labelled),
              "--out", str(out)])
    assert exit_info.value.code == 2 and f"output folder {out} exists and is not empty" in capsys.readouterr().err


def test_bad_inputs_name_the_path(domain_a, domain_b, tmp_path, capsys):
    def error(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    work = tmp_path / "w"
    assert f"--source: image folder {empty} holds no images" in error(
        "train", "--source", str(empty), "--target", str(domain_b), "--work-dir", str(work))
    assert f"--target: image folder {tmp_path / 'nope'} does not exist" in error(
        "train", "--source", str(domain_a), "--target", str(tmp_path / "nope"), "--work-dir", str(work))
    assert f"--resume: {work} holds no checkpoint" in error(
        "train", "--source", str(domain_a), "--target", str(domain_b), "--work-dir", str(work), "--resume")
    work.mkdir()
    (work / "last_checkpoint").write_text(str(work / "iter_2.pth"))
    assert "already holds a training" in error(
        "train", "--source", str(domain_a), "--target", str(domain_b), "--work-dir", str(work))
    assert f"checkpoint {tmp_path / 'x.pth'} not found" in error(
        "translate", "--checkpoint", str(tmp_path / "x.pth"), "--input", str(domain_a), "--out", str(tmp_path / "o"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert f"cannot load checkpoint {tmp_path / 'junk.pth'}" in error(
        "translate", "--checkpoint", str(tmp_path / "junk.pth"), "--input", str(domain_a), "--out", str(tmp_path / "o"))
