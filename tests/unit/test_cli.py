"""``defect <verb>``: one command for all, the ``defect-<verb>`` aliases pointing at the same functions."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib

import pytest

from defect_plugins.cli import CLOSED_PIPE_STATUS, COMMANDS, main
from tests.conftest import REPO_ROOT


def test_every_alias_is_a_verb_and_every_verb_resolves():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.pop("defect") == "defect_plugins.cli:main"
    assert scripts == {f"defect-{verb}": "defect_plugins.cli:alias" for verb in COMMANDS}
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


def test_an_alias_runs_its_verb_and_says_it_is_one_on_help(monkeypatch, capsys):
    from defect_plugins.cli import alias

    monkeypatch.setattr(sys, "argv", ["/venv/bin/defect-configs", "list"])
    assert alias() == 0
    assert "akf_rd.yaml" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["defect-configs", "--help"])
    with pytest.raises(SystemExit) as done:
        alias()
    assert done.value.code == 0
    assert "(defect-configs is an alias of 'defect configs', kept for one release)" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["defect-nothing"])
    assert alias() == 2


ALIAS = "import sys; sys.argv[0] = 'defect-configs'; from defect_plugins.cli import alias; sys.exit(alias())"


@pytest.mark.parametrize("command, statuses", [
    (["-m", "defect_plugins.cli", "configs", "list"], {CLOSED_PIPE_STATUS}),
    (["-m", "defect_plugins.cli", "--help"], {CLOSED_PIPE_STATUS}),
    (["-c", ALIAS, "list"], {CLOSED_PIPE_STATUS}),
    # argparse's --help swallows the OSError of its own write and exits 0: quiet too, either status is fine
    (["-m", "defect_plugins.cli", "configs", "--help"], {0, CLOSED_PIPE_STATUS}),
], ids=["verb", "usage", "alias", "verb-help"])
def test_a_reader_that_closes_early_ends_the_command_quietly(command, statuses):
    """``defect configs list | head``: the reader is gone before the first write; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has already closed: every write of the command meets a closed pipe
    try:
        result = subprocess.run([sys.executable, *command], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=120, cwd=REPO_ROOT)
    finally:
        os.close(write_end)
    assert CLOSED_PIPE_STATUS == 141  # 128 + SIGPIPE, as a shell reports a command a closed pipe stopped
    assert result.returncode in statuses and result.stderr == "", (result.returncode, result.stderr)
