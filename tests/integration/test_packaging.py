"""The wheel works outside the clone: it holds every packaged config (all the README names) and the commands."""
from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys


from defect_plugins.packaged_configs import config_root
from tests.conftest import REPO_ROOT

# every defect-<verb> name is an alias of `defect <verb>` (defect_plugins/cli.py)
COMMANDS = {"defect": "defect_plugins.cli:main",
            **{name: "defect_plugins.cli:alias" for name in ("defect-train", "defect-test", "defect-configs",
                                                             "defect-cls-split", "defect-migrate", "defect-infer",
                                                             "defect-station")}}
PREFIX = "defect_plugins/configs/"


def _readme_config_paths() -> list[str]:
    """``configs/...`` paths (files, globs, folders) named in README.md, relative to the config root."""
    text = (REPO_ROOT / "README.md").read_text()
    found = re.findall(r"(?<![\w./-])(?:defect_plugins/)?configs/[\w.*/-]*", text)
    return sorted({path.split("configs/", 1)[1].rstrip(".") for path in found})


def test_wheel_holds_every_packaged_config(wheel):
    names = set(wheel.namelist())
    on_disk = [p.relative_to(config_root()).as_posix() for p in config_root().rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    missing = [rel for rel in on_disk if PREFIX + rel not in names]
    assert on_disk and not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.startswith(PREFIX) and n.endswith("__init__.py")]  # data, not packages


def test_wheel_holds_every_config_the_readme_names(wheel):
    packaged = [n[len(PREFIX):] for n in wheel.namelist() if n.startswith(PREFIX)]
    for rel in _readme_config_paths():
        if rel == "" or rel.endswith("/"):
            ok = any(name.startswith(rel) for name in packaged)
        elif "*" in rel:
            ok = bool(fnmatch.filter(packaged, rel))
        else:
            ok = rel in packaged
        assert ok, f"README.md names configs/{rel}, which the wheel does not hold"


def test_wheel_holds_every_module_and_the_console_commands(wheel):
    names = set(wheel.namelist())
    package = REPO_ROOT / "defect_plugins"
    modules = [p.relative_to(REPO_ROOT).as_posix() for p in package.rglob("*.py")
               if "__pycache__" not in p.parts and not p.relative_to(package).as_posix().startswith("configs/")]
    assert not [m for m in modules if m not in names]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for command, target in COMMANDS.items():
        assert f"{command} = {target}" in text


def test_wheel_holds_the_default_rule_file_of_the_grading(wheel):
    """DefectInferencer, defect-infer and defect-station grade with it when no rule file is given."""
    names = set(wheel.namelist())
    assert "defect_plugins/deploy/grading/default_rules.yaml" in names
    assert not [n for n in names if n.startswith("defect_plugins/station/") and n.endswith(".yaml")]


def test_unpacked_wheel_finds_and_loads_its_configs_outside_the_clone(wheel, tmp_path):
    """What a wheel user gets: packaged names resolve, ``_base_`` includes load, teacher paths resolve."""
    site = tmp_path / "site"
    wheel.extractall(site)  # a pure-Python wheel unpacked is an installation
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import defect_plugins.packaged_configs as pc, sys\n"
        f"assert pc.__file__.startswith({str(site)!r}), pc.__file__\n"
        # what defect-train does before parsing a config: mmpretrain:: bases need the package_lookup fix
        "from defect_plugins.compat import apply_all; apply_all()\n"
        "from mmengine.config import Config\n"
        "cfg = Config.fromfile(str(pc.resolve_config('mgjr_neu_cls_64.py')))\n"
        "teacher = pc.resolve_config(cfg.model.teacher_config)\n"
        f"assert str(teacher).startswith({str(site)!r}) and Config.fromfile(str(teacher)).model.type\n"
        "print(pc.resolve_config('configs/akf_rd.yaml'))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(site / "defect_plugins" / "configs" / "akf_rd.yaml")
