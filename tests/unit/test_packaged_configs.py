"""Packaged configs: found by path or by name from any folder (as from a wheel), listed, located, copied."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from defect_plugins import packaged_configs
from defect_plugins.packaged_configs import ConfigNotFoundError, config_root, list_configs, main, resolve_config
from tests.conftest import REPO_ROOT

ROOT = config_root()


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch) -> Path:
    """Run from a folder with no ``configs/`` in it, as a wheel user would."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_root_is_inside_the_package_and_the_clone_link_points_at_it():
    assert ROOT == Path(packaged_configs.__file__).resolve().parent / "configs" and ROOT.is_dir()
    link = REPO_ROOT / "configs"
    assert link.is_symlink() and link.resolve() == ROOT


def test_list_names_every_config_file_relative_to_the_root():
    names = list_configs()
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert names == on_disk
    assert {"akf_rd.yaml", "neu_cls/sarsn34_neu_cls_64.py", "neu_cls/_base_/runtime.py"} <= set(names)
    runnable = list_configs(include_bases=False)
    assert "neu_cls/sarsn34_neu_cls_64.py" in runnable and not any("_base_" in n for n in runnable)


@pytest.mark.parametrize("name", ["neu_cls/sarsn34_neu_cls_64.py", "configs/neu_cls/sarsn34_neu_cls_64.py",
                                  "defect_plugins/configs/neu_cls/sarsn34_neu_cls_64.py", "sarsn34_neu_cls_64.py"])
def test_packaged_names_resolve_from_any_folder(elsewhere, name):
    assert resolve_config(name) == ROOT / "neu_cls" / "sarsn34_neu_cls_64.py"


def test_an_existing_file_wins_over_the_packaged_config_of_that_name(elsewhere):
    mine = elsewhere / "akf_rd.yaml"
    mine.write_text("model: {}\n")
    assert resolve_config("akf_rd.yaml") == Path("akf_rd.yaml")
    assert resolve_config(mine) == mine
    (elsewhere / "configs").mkdir()
    (elsewhere / "configs" / "akf_rd.yaml").write_text("mine: true\n")
    assert resolve_config("configs/akf_rd.yaml").read_text() == "mine: true\n"


def test_unknown_name_is_a_clear_error_with_close_names(elsewhere):
    with pytest.raises(ConfigNotFoundError) as error:
        resolve_config("neu_cls/sarsn34_neu_cls64.py")
    message = str(error.value)
    assert "neu_cls/sarsn34_neu_cls64.py not found" in message and "neu_cls/sarsn34_neu_cls_64.py" in message
    assert "defect-configs list" in message
    assert isinstance(error.value, FileNotFoundError) and isinstance(error.value, ValueError)
    with pytest.raises(ConfigNotFoundError, match="is a folder"):
        resolve_config(str(ROOT / "neu_cls"))
    with pytest.raises(ConfigNotFoundError, match="empty config name"):
        resolve_config("")


def test_a_bare_name_shared_by_two_configs_is_ambiguous(tmp_path, monkeypatch, elsewhere):
    root = tmp_path / "fake_root"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "same.py").write_text("x = 1\n")
    monkeypatch.setattr(packaged_configs, "config_root", lambda: root)
    with pytest.raises(ConfigNotFoundError, match="ambiguous.*a/same.py, b/same.py"):
        resolve_config("same.py")
    assert resolve_config("b/same.py") == root / "b" / "same.py"


def test_every_config_path_a_config_names_resolves_from_any_folder(elsewhere):
    """``teacher_config = 'configs/...'`` and similar must work from a wheel, where no configs/ is in the cwd."""
    named = 0
    for name in list_configs():
        for line in (ROOT / name).read_text().splitlines():
            code = line.split("#")[0]
            for path in re.findall(r"""['"]((?:defect_plugins/)?configs/[^'"]+)['"]""", code):
                assert resolve_config(path).is_file(), f"{name} names {path}"
                named += 1
            # any spelling, not only configs/
            teacher = re.search(r"""teacher_config\s*[=:]\s*['"]([^'"]+)['"]""", code)
            if teacher:
                assert resolve_config(teacher.group(1)).is_file(), f"{name} names teacher {teacher.group(1)}"
    assert named >= 8  # the six RKD and two MGJR configs name their teachers


def test_defect_configs_path_prints_an_absolute_path(elsewhere, capsys):
    assert main(["path", "akf_rd.yaml"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.is_absolute() and printed == ROOT / "akf_rd.yaml"
    assert main(["path", "nope.yaml"]) == 2
    assert "config nope.yaml not found" in capsys.readouterr().err


def test_defect_configs_as_a_module_from_another_folder(elsewhere):
    """What ``anomalib train --config $(defect-configs path akf_rd.yaml)`` relies on."""
    result = subprocess.run([sys.executable, "-m", "defect_plugins.packaged_configs", "path", "akf_rd.yaml"],
                            cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(result.stdout.strip()) == ROOT / "akf_rd.yaml"


def test_defect_configs_list(capsys):
    assert main(["list"]) == 0
    assert capsys.readouterr().out.split() == list_configs(include_bases=False)


def test_copy_brings_the_bases_along_and_the_copy_loads(elsewhere, capsys):
    from mmengine.config import Config

    assert main(["copy", "mgjr_neu_cls_64.py", "mine"]) == 0
    copied = [Path(line) for line in capsys.readouterr().out.split()]
    assert copied[0] == Path("mine/mgjr/mgjr_neu_cls_64.py")
    assert Path("mine/neu_cls/_base_/runtime.py") in copied and Path("mine/mgjr/_base_/mgjr_student.py") in copied
    packaged = Config.fromfile(str(ROOT / "mgjr" / "mgjr_neu_cls_64.py")).to_dict()
    assert Config.fromfile(str(copied[0])).to_dict() == packaged
    assert main(["copy", "mgjr_neu_cls_64.py", "mine"]) == 0  # same content again: fine
    copied[0].write_text(copied[0].read_text() + "\n# edited\n")
    capsys.readouterr()
    assert main(["copy", "mgjr_neu_cls_64.py", "mine"]) == 2
    assert "differs" in capsys.readouterr().err and copied[0].read_text().endswith("# edited\n")
    assert main(["copy", "mgjr_neu_cls_64.py", "mine", "--force"]) == 0
    assert "# edited" not in copied[0].read_text()


def test_module_imports_only_the_standard_library():
    """A runtime-only install (no torch, no mmengine) imports it too: module-level imports stay stdlib."""
    tree = ast.parse(Path(packaged_configs.__file__).read_text())
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
