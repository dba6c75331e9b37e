"""The README's two commands are the contract: check their pieces."""
from __future__ import annotations

import csv
import json
import re
import tomllib
from pathlib import Path

import pytest

from defect_plugins import demo
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_shows_exactly_the_two_commands_first():
    demo_command, test_command = _bash_blocks(README)[:2]
    assert demo_command == "pip install -e . && defect-demo --out demo_output"
    assert "pytest" in test_command and test_command.startswith("pip install -e")


def test_ci_runs_the_readme_test_command():
    test_command = _bash_blocks(README)[1]
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command.replace("pip install", "python -m pip install", 1) in ci_lines


def test_console_scripts_point_at_real_functions():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    import importlib

    for name, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_demo_refuses_a_non_empty_output_folder(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]


@pytest.mark.slow
def test_demo_end_to_end_on_a_tiny_setting(tmp_path):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--epochs", "1", "--num-train", "8", "--image-size", "64"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["openvino_precision"] == "f32"
    assert 0.0 <= summary["image_auroc_openvino"] <= 1.0
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == summary["test_images"] == 8 + 6 * 3
    assert {row["truth"] for row in rows} == {"good", "scratch", "pit", "patch"}
    heatmaps = sorted(Path(out / "heatmaps").glob("*.png"))
    assert len(heatmaps) == len(rows)


def test_full_demo_refuses_a_non_empty_output_folder(tmp_path, capsys):
    from defect_plugins import demo_all

    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        demo_all.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["old.txt"]
