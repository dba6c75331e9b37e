"""``defect fit --nproc 2``: the training on two torch.distributed processes (gloo on the CPU), one bundle.

Each family's fit is the smallest of its one-process test (random weights, 32 px, tiny synthetic sets; one
epoch here, no INT8; a batch of 8 per process, so no process gets a last batch of one image, which
BatchNorm refuses at this size): the two processes cost two interpreter start-ups with the toolkit imported, which is
most of the time. Checked: the bundle loads in ``DefectInferencer``, the terminal and the card say two
processes ran with the global batch, and **each** rank wrote its own record (world size 2, images trained),
so both really trained. Memory-bank models are refused with the reason (anomalib issue #2673) before
anything runs, and a bad ``--nproc`` / ``--node-rank`` stops at the command line.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins.fit.cli import main


def _fit(family: str, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "defect_plugins.cli", "fit", family, str(data), "--out", str(out),
                          "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--no-int8", "--nproc", "2",
                          *extra], capture_output=True, text=True, timeout=600)
    log = out.with_name(out.name + ".log")
    assert run.returncode == 0, run.stdout + run.stderr + (log.read_text() if log.exists() else "")
    return run


def _check_two_processes(out: Path, run: subprocess.CompletedProcess) -> None:
    from defect_plugins.deploy import DefectInferencer
    from defect_plugins.deploy.bundle import load_bundle

    DefectInferencer(out, weights="FP32")
    processes = load_bundle(out).card()["training"]["processes"]
    assert (processes["world_size"], processes["nproc"], processes["backend"]) == (2, 2, "gloo")
    assert processes["global_batch"] == 2 * processes["per_process_batch"] == 16
    assert "rescaled" in processes["lr_rule"] or "scaling" in processes["lr_rule"]
    assert sorted(r["rank"] for r in processes["ranks"]) == [0, 1]
    assert all(r["world_size"] == 2 and r["images"] > 0 for r in processes["ranks"])
    assert "[fit] training on 2 processes (1 machine x 2, gloo): batch 8 per process, global batch 16" in run.stdout
    assert "2 training processes" in (out / "card.md").read_text()


@pytest.mark.slow
def test_classifier_on_two_processes(tmp_path) -> None:
    from defect_plugins.data import make_classification_dataset

    data = make_classification_dataset(tmp_path / "parts", per_class=8, image_size=32, seed=0)
    for extra in ("crazing", "inclusion", "patches"):  # three classes, five training images each
        shutil.rmtree(data / extra)
    (data / "rolled-in_scale").rename(data / "good")
    out = tmp_path / "bundle"
    run = _fit("classifier", data, out, "--ok-class", "good", "--weights", "none", "--max-false-reject", "0.5")
    _check_two_processes(out, run)


@pytest.mark.slow
def test_anomaly_on_two_processes(tmp_path) -> None:
    from tests.integration.fit.test_fit_anomaly import _folders_layout

    data = _folders_layout(tmp_path)
    out = tmp_path / "bundle"
    run = _fit("anomaly", data, out, "--no-pretrained", "--max-false-reject", "0.25")
    _check_two_processes(out, run)
    assert "AkfReverseDistillation: trained on 2 processes" in run.stdout


@pytest.mark.parametrize("extra, named", [
    (["--model", "Patchcore"], "Patchcore is a memory-bank model"),
    (["--model", "auto"], "leave it out of --candidates"),
])
def test_memory_bank_models_are_refused_on_several_processes(tmp_path, capfd, extra, named) -> None:
    out = tmp_path / "bundle"
    assert main(["anomaly", str(tmp_path / "no_data_needed"), "--out", str(out), "--nproc", "2", *extra]) == 2
    message = capfd.readouterr().err
    assert named in message and "anomalib issue #2673" in message and "--nproc 1" in message
    assert not out.exists() and not out.with_name("bundle.work").exists()


@pytest.mark.parametrize("argv, expected", [
    (["--nproc", "0"], "argument --nproc: expected an integer >= 1, got 0"),
    (["--nproc", "two"], "argument --nproc: expected an integer >= 1, got 'two'"),
    (["--nnodes", "0"], "argument --nnodes: expected an integer >= 1, got 0"),
])
def test_bad_process_counts_stop_at_the_command_line(tmp_path, capsys, argv, expected) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["classifier", str(tmp_path), "--out", str(tmp_path / "b"), *argv])
    assert stopped.value.code == 2 and expected in capsys.readouterr().err


def test_node_rank_must_be_below_nnodes(tmp_path, capfd) -> None:
    assert main(["segmentor", str(tmp_path), "--out", str(tmp_path / "b"), "--nnodes", "2", "--node-rank", "2"]) == 2
    assert "--node-rank 2 with --nnodes 2: expected 0 <= rank < nnodes" in capfd.readouterr().err


def test_the_fit_refuses_to_be_a_torchrun_worker(tmp_path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert main(["classifier", str(tmp_path), "--out", str(tmp_path / "b"), "--nproc", "2"]) == 2
    assert "run defect-fit itself with --nproc" in capfd.readouterr().err
