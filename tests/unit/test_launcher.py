"""defect-train / defect-test argument handling and the tools/*.sh wrappers (no training here).

End-to-end runs through the launcher are in tests/integration: cls/test_mim_train.py, seg/test_arcd_runner.py
and compat/test_checkpoint_resume.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins.runners import launcher
from defect_plugins.runners.launcher import DistributedSettings, LauncherError, distributed_command, main, train_main
from defect_plugins.runners.launcher import test_main as eval_main  # (a console entry point, not a test)
from defect_plugins.packaged_configs import config_root
from tests.conftest import REPO_ROOT

CONFIG = "neu_cls/sarsn34_neu_cls_64.py"
CONFIG_PATH = str(config_root() / CONFIG)
DIST_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "PORT")


@pytest.fixture(autouse=True)
def _single_node(monkeypatch):
    for key in DIST_ENV:
        monkeypatch.delenv(key, raising=False)


def _exit_message(capsys, call) -> str:
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    ([], "the following arguments are required: toolkit, config"),
    (["mmpretrain"], "the following arguments are required: config"),
    (["mmdet", CONFIG], "invalid choice: 'mmdet'"),
    (["mmpretrain", "neu_cls/no_such.py"], "config neu_cls/no_such.py not found"),
    (["mmpretrain", CONFIG, "0"], "GPUS=0"),
])
def test_train_argument_errors(capsys, argv, expected):
    assert expected in _exit_message(capsys, lambda: train_main(argv))


def test_unknown_config_error_names_close_packaged_configs(capsys):
    message = _exit_message(capsys, lambda: train_main(["mmpretrain", "sarsn34_neu_cls64.py"]))
    assert message.startswith("defect-train: error: config sarsn34_neu_cls64.py not found")
    assert "neu_cls/sarsn34_neu_cls_64.py" in message


def test_test_argument_errors(capsys, tmp_path):
    assert "required: checkpoint" in _exit_message(capsys, lambda: eval_main(["mmpretrain", CONFIG]))
    missing = tmp_path / "nope.pth"
    assert f"checkpoint {missing} not found" in _exit_message(capsys,
                                                              lambda: eval_main(["mmpretrain", CONFIG, str(missing)]))


def test_bad_node_settings_name_the_variable(capsys, monkeypatch):
    monkeypatch.setenv("NNODES", "two")
    assert "NNODES='two'" in _exit_message(capsys, lambda: train_main(["mmpretrain", CONFIG, "2"]))
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("NODE_RANK", "2")
    assert "NODE_RANK=2 with NNODES=2" in _exit_message(capsys, lambda: train_main(["mmpretrain", CONFIG]))


def test_one_process_needs_no_rendezvous():
    assert distributed_command("train", "mmpretrain", CONFIG_PATH, 1, ["--amp"], settings=DistributedSettings()) is None


def test_several_processes_go_through_torch_distributed_run(monkeypatch):
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("PORT", "29611")
    command = distributed_command("train", "mmseg", CONFIG_PATH, 1, ["--work-dir", "w"], python="py")
    assert command == ["py", "-m", "torch.distributed.run", "--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1",
                       "--nproc_per_node=1", "--master_port=29611", "-m", "defect_plugins.runners.launcher", "train",
                       "mmseg", CONFIG_PATH, "--work-dir", "w", "--launcher", "pytorch"]
    with pytest.raises(LauncherError, match="GPUS=0"):
        distributed_command("train", "mmseg", CONFIG_PATH, 0)


def test_gpus_packaged_name_and_checkpoint_reach_the_workers(monkeypatch, tmp_path):
    """``defect-test mmpretrain NAME CKPT 2 args``: resolved config, checkpoint first, ``--launcher pytorch`` last."""
    seen = []
    monkeypatch.setattr(launcher, "_exec", lambda command: seen.append(command) or 0)
    monkeypatch.chdir(tmp_path)  # no configs/ here: the packaged name must resolve
    checkpoint = tmp_path / "epoch_1.pth"
    checkpoint.write_bytes(b"")
    assert eval_main(["mmpretrain", CONFIG, str(checkpoint), "2", "--work-dir", "w"]) == 0
    command = seen[0]
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=2" in command
    tail = command[command.index("defect_plugins.runners.launcher") + 1:]
    assert tail == ["test", "mmpretrain", CONFIG_PATH, str(checkpoint), "--work-dir", "w", "--launcher", "pytorch"]


@pytest.mark.parametrize("named", [["--nproc", "2"], ["--nproc=2"]])
def test_nproc_is_the_named_form_of_gpus(monkeypatch, named):
    """``defect-train mmpretrain NAME --nproc 2``: the workers of GPUS=2; ``--nproc`` never reaches train.py."""
    seen = []
    monkeypatch.setattr(launcher, "_exec", lambda command: seen.append(command) or 0)
    assert train_main(["mmpretrain", CONFIG, "--work-dir", "w", *named]) == 0
    command = seen[0]
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=2" in command
    tail = command[command.index("defect_plugins.runners.launcher") + 1:]
    assert tail == ["train", "mmpretrain", CONFIG_PATH, "--work-dir", "w", "--launcher", "pytorch"]


@pytest.mark.parametrize("argv, expected", [
    (["--nproc", "0"], "--nproc '0': expected the number of processes per node, at least 1"),
    (["--nproc", "x"], "--nproc 'x': expected the number of processes per node, at least 1"),
    (["--nproc"], "--nproc: expected the number of processes per node"),
    (["2", "--nproc", "2"], "GPUS=2 and --nproc 2: give the number of processes once"),
])
def test_bad_nproc_is_refused(capsys, argv, expected):
    assert expected in _exit_message(capsys, lambda: train_main(["mmpretrain", CONFIG, *argv]))


def test_one_process_runs_the_upstream_script_with_its_own_options(monkeypatch, tmp_path, capsys):
    """Options after CONFIG (``--help`` here) reach mmpretrain's tools/train.py untouched."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as exit_info:
        train_main(["mmpretrain", CONFIG, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--work-dir" in out and "--cfg-options" in out and "defect-train" not in out


def test_module_keeps_the_one_process_form_and_offers_launch(capsys):
    assert "invalid choice: 'fit'" in _exit_message(capsys, lambda: main(["fit", "mmseg", CONFIG]))
    assert "config missing.py not found" in _exit_message(capsys, lambda: main(["train", "mmseg", "missing.py"]))
    assert "invalid choice: 'fit'" in _exit_message(capsys, lambda: main(["launch", "fit"]))
    assert "defect-test: error" in _exit_message(capsys, lambda: main(["launch", "test", "mmseg", CONFIG]))


@pytest.mark.parametrize("script, args, expected", [
    ("mim_train.sh", ["badkit", CONFIG], "defect-train: error: argument toolkit: invalid choice: 'badkit'"),
    ("mim_test.sh", ["mmseg", CONFIG, "missing.pth"], "defect-test: error: checkpoint missing.pth not found"),
])
def test_tools_wrappers_exec_the_launcher(tmp_path, script, args, expected):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    result = subprocess.run(["bash", str(REPO_ROOT / "tools" / script), *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]


def test_resumable_train_command_resumes_from_the_checkpoint_mmengine_recorded(tmp_path):
    """``defect-teacher`` (and the studies of a clone) train through this command: cut off, it goes on."""
    run_dir = tmp_path / "run"
    command = launcher.resumable_train_command("mmpretrain", "neu_cls/x.py", run_dir, ["randomness.seed=2"])
    assert command == [sys.executable, "-m", "defect_plugins.runners.launcher", "launch", "train", "mmpretrain",
                       "neu_cls/x.py", "--work-dir", str(run_dir), "--cfg-options", "randomness.seed=2"]
    run_dir.mkdir()
    (run_dir / "last_checkpoint").write_text(str(run_dir / "epoch_3.pth"))
    assert launcher.resumable_train_command("mmpretrain", "neu_cls/x.py", run_dir)[-1] == "--resume"
    two = launcher.resumable_train_command("mmpretrain", "neu_cls/x.py", run_dir, nproc=2)
    assert two[6:9] == ["neu_cls/x.py", "--nproc", "2"] and two[-1] == "--resume"
    with pytest.raises(LauncherError, match="--nproc 0"):
        launcher.resumable_train_command("mmpretrain", "neu_cls/x.py", run_dir, nproc=0)


def _scalars(work_dir: Path, folder: str, *records: dict) -> None:
    vis = work_dir / folder / "vis_data"
    vis.mkdir(parents=True)
    (vis / "scalars.json").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_logged_scalars_come_from_the_newest_run_folder_only(tmp_path: Path) -> None:
    from defect_plugins.runners.launcher import LauncherError, read_logged_scalars

    _scalars(tmp_path, "20261204_100000", {"mIoU": 40.0, "step": 500}, {"loss": 0.1, "step": 600})
    (tmp_path / "test").mkdir()  # other folders (a test run's work dir) are not runs
    assert read_logged_scalars(tmp_path, "mIoU") == {"mIoU": 40.0}
    _scalars(tmp_path, "20261204_110000", {"loss": 0.05, "step": 700}, {"mIoU": 55.0, "mAcc": 80.0, "step": 1000})
    assert read_logged_scalars(tmp_path, "mIoU", extra=("mAcc", "aAcc"))["mAcc"] == 80.0
    assert read_logged_scalars(tmp_path, "mIoU", extra=None) == {"mIoU": 55.0, "mAcc": 80.0, "step": 1000.0}
    # a resume that logged nothing: the older folder's mid-training mIoU must not pass for the final one
    (tmp_path / "20261204_120000").mkdir()
    with pytest.raises(LauncherError,
                       match=r"20261204_120000/vis_data/scalars.json is missing.*ResumedFinalValidation"):
        read_logged_scalars(tmp_path, "mIoU")
    with pytest.raises(LauncherError, match="no mmengine run folder"):
        read_logged_scalars(tmp_path / "test", "mIoU")
