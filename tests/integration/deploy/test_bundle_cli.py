"""Bundles through the commands: ``defect-infer`` and ``defect-station --check`` in fresh interpreters."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins.deploy import infer as infer_module
from defect_plugins.deploy.bundle import pack

from tests.unit.deploy.test_bundle import GREY, REPO_ROOT, grey_image, make_bundle, tiny_classifier_ir


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def bundle_and_images(tmp_path) -> tuple[Path, Path]:
    make_bundle(tmp_path / "steel")  # image threshold 0.3: a grey-100 image (score 0.392) is a defect
    for name in ("a.png", "b.png"):
        grey_image(tmp_path / "images" / name)
    return tmp_path / "steel", tmp_path / "images"


def test_defect_infer_runs_a_bundle_with_its_threshold(bundle_and_images, tmp_path):
    bundle, images = bundle_and_images
    proc = _run("-m", "defect_plugins.deploy.infer", "--model", str(bundle), str(images),
                "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    summary = report["summary"]
    assert summary["bundle"]["name"] == "steel" and summary["bundle"]["created"] and summary["weights"] == "FP32"
    assert summary["model_xml"] == str(bundle / "model" / "fp32.xml")
    assert summary["thresholds_applied"] == {"image_threshold": 0.3, "pixel_threshold": 0.5,
                                             "from_bundle": ["image_threshold", "pixel_threshold"]}
    assert summary["rules"] == str(bundle / "rules.yaml")
    assert summary["decisions"] == {"defect": 2}  # the bare IR (threshold 0.5) calls both good
    assert [row["score"] for row in report["results"]] == [pytest.approx(GREY / 255, abs=1e-4)] * 2
    assert "bundle steel (created " in proc.stdout
    assert "\r" not in proc.stderr and "img/s]" not in proc.stderr  # no progress bar into a pipe

    proc = _run("-m", "defect_plugins.deploy.infer", str(bundle), str(images), "--out", str(tmp_path / "mine"),
                "--image-threshold", "0.45", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "mine" / "results.json").read_text())["summary"]
    assert summary["decisions"] == {"good": 2} and summary["thresholds_applied"]["from_bundle"] == ["pixel_threshold"]


def test_defect_infer_takes_an_archive_and_refuses_a_changed_bundle(bundle_and_images, tmp_path):
    bundle, images = bundle_and_images
    archive = pack(bundle, tmp_path / "steel-v1.tar.gz")
    proc = _run("-m", "defect_plugins.deploy.infer", str(archive), str(images), "--out", str(tmp_path / "out"),
                "--quiet", env={"DEFECT_PLUGINS_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["bundle"]["name"] == "steel-v1" and summary["decisions"] == {"defect": 2}

    rules = bundle / "rules.yaml"
    rules.write_text(rules.read_text() + "\n# edited by hand\n")
    proc = _run("-m", "defect_plugins.deploy.infer", str(bundle), str(images), "--out", str(tmp_path / "refused"))
    assert proc.returncode == 1 and f"{rules} does not match its bundle" in proc.stderr
    assert not (tmp_path / "refused").exists()


def test_progress_is_a_line_per_n_images_when_stderr_is_not_a_terminal(bundle_and_images, tmp_path, capsys,
                                                                       monkeypatch):
    bundle, images = bundle_and_images
    monkeypatch.setattr(infer_module, "PROGRESS_EVERY", 1)
    infer_module.run_inference(bundle, [images], tmp_path / "out", save_images=False)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == ["1 images", "2 images"], lines
    assert all(line.startswith("defect-infer (anomaly, f32)") for line in lines)


def test_defect_station_takes_a_bundle_and_says_whose_rules_grade(bundle_and_images, tmp_path):
    bundle, _ = bundle_and_images
    ir = tiny_classifier_ir(tmp_path / "irs" / "cls.xml")
    proc = _run("-m", "defect_plugins.station", "--model", str(ir), "--bundle", str(bundle), "--check",
                "--db", str(tmp_path / "unused.sqlite"))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "model steel: anomaly, FP32 weights at f32" in proc.stdout and "bundle steel of " in proc.stdout
    assert f"rules: {bundle / 'rules.yaml'} (the rules of bundle steel" in proc.stdout
