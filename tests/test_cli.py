"""``defect <verb>``: one command for all, the ``defect-<verb>`` aliases pointing at the same functions."""
from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib

import pytest

from defect_plugins.cli import COMMANDS, main
from tests.conftest import REPO_ROOT


def test_every_alias_is_a_verb_and_every_verb_resolves():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.pop("defect") == "defect_plugins.cli:main"
    assert scripts == {f"defect-{verb}": target for verb, (target, _) in COMMANDS.items()}
    for target, _ in COMMANDS.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def test_help_lists_the_verbs_and_an_unknown_verb_is_named(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"  {verb} " in text for verb in COMMANDS) and "aliases" in text
    assert main(["infr"]) == 2
    err = capsys.readouterr().err
    assert "unknown verb 'infr'" in err and "infer" in err
    assert main([]) == 2


def test_a_verb_runs_its_command_with_the_rest_of_the_line(capsys):
    assert main(["configs", "list"]) == 0
    assert "akf_rd.yaml" in capsys.readouterr().out


@pytest.mark.parametrize("verb", ["infer", "station"])
def test_runtime_verbs_import_no_training_stack(verb):
    code = ("import sys; from defect_plugins.cli import main\n"
            f"try:\n    main(['{verb}', '--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'mmengine', 'anomalib', 'lightning'})\n"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert "HEAVY []" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
