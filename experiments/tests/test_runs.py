"""experiments/lib/runs.py: a study's step as a logged child process, a training resumed from its last checkpoint."""
from __future__ import annotations

import sys

import pytest

from experiments.lib import runs
from experiments.lib.runs import LauncherError, run_logged, train_resumable


def test_train_resumable_resumes_logs_and_names_the_log_on_failure(monkeypatch, tmp_path):
    """The studies' training step: a child process, resumed from mmengine's last_checkpoint."""
    calls = []

    def fake_call(command, stdout, stderr, preexec_fn=None):
        assert preexec_fn is not None or not sys.platform.startswith("linux")  # the child dies with the study
        calls.append(command)
        stdout.write("child output\n")
        return 0 if len(calls) < 3 else 1

    monkeypatch.setattr(runs.subprocess, "call", fake_call)
    run_dir = tmp_path / "run"
    assert train_resumable("mmpretrain", "neu_cls/x.py", run_dir, ["randomness.seed=2"]) >= 0.0
    assert calls[0][1:] == ["-m", "defect_plugins.runners.launcher", "launch", "train", "mmpretrain", "neu_cls/x.py",
                            "--work-dir", str(run_dir), "--cfg-options", "randomness.seed=2"]
    (run_dir / "last_checkpoint").write_text(str(run_dir / "epoch_3.pth"))
    train_resumable("mmpretrain", "neu_cls/x.py", run_dir)
    assert "--resume" in calls[1] and "--cfg-options" not in calls[1]
    log = (run_dir / "train.log").read_text()
    assert log.count("child output") == 2 and log.startswith("$ ")
    with pytest.raises(LauncherError, match=f"training neu_cls/x.py failed \\(exit 1\\); log {run_dir}/train.log"):
        train_resumable("mmpretrain", "neu_cls/x.py", run_dir)


def test_run_logged_appends_the_command_and_its_output_and_returns_its_code(tmp_path):
    log = tmp_path / "logs" / "step.log"
    assert run_logged([sys.executable, "-c", "print('first')"], log) == 0
    assert run_logged([sys.executable, "-c", "import sys; print('second'); sys.exit(3)"], log) == 3
    lines = log.read_text().splitlines()
    assert lines[0].startswith(f"$ {sys.executable} -c") and lines[1] == "first"
    assert lines[2].startswith("$ ") and lines[3] == "second"
