"""Atomic writes: the target is the old file or the complete new one, and no temporary file is left behind."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from defect_plugins.fileio import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, replace

from tests.conftest import REPO_ROOT


class Boom(RuntimeError):
    pass


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_text_json(tmp_path):
    assert atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    atomic_write_text(tmp_path / "b.txt", "grüße\n")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "grüße\n"
    obj = {"summary": {"processed": 3, "ratio": 0.25, "names": ["a", "ü"]}, "results": [None, True]}
    atomic_write_json(tmp_path / "c.json", obj, indent=2)
    text = (tmp_path / "c.json").read_text(encoding="utf-8")
    assert json.loads(text) == obj and text.endswith("}\n") and "\n  " in text
    assert _names(tmp_path) == ["a.bin", "b.txt", "c.json"]


def test_overwrite_replaces_content(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"run": 1})
    atomic_write_json(target, {"run": 2})
    assert json.loads(target.read_text()) == {"run": 2} and _names(tmp_path) == ["results.json"]


def test_atomic_path_is_a_hidden_sibling_with_the_same_suffix(tmp_path):
    target = tmp_path / "overlay.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".png"
        assert tmp.exists() and not target.exists()  # nothing visible under the final name yet
        tmp.write_bytes(b"png bytes")
    assert target.read_bytes() == b"png bytes" and _names(tmp_path) == ["overlay.png"]


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("error", [Boom("writer failed"), KeyboardInterrupt()])
def test_exception_in_block_keeps_old_file_and_removes_temp(tmp_path, existing, error):
    target = tmp_path / "results.csv"
    if existing:
        target.write_text("old\n")
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new con")
            raise error
    assert _names(tmp_path) == (["results.csv"] if existing else [])
    if existing:
        assert target.read_text() == "old\n"


def test_unserialisable_json_writes_nothing(tmp_path):
    (tmp_path / "r.json").write_text("{}\n")
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "r.json", {"bad": object()})
    assert _names(tmp_path) == ["r.json"] and (tmp_path / "r.json").read_text() == "{}\n"


def test_failing_write_helpers_leave_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "summary.md"
    target.write_text("old")

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new")
    assert _names(tmp_path) == ["summary.md"] and target.read_text() == "old"


def test_permissions_like_a_plain_open_and_kept_on_overwrite(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "atomic.txt") == mode(tmp_path / "plain.txt")
    os.chmod(tmp_path / "atomic.txt", 0o640)
    atomic_write_text(tmp_path / "atomic.txt", "y")
    assert mode(tmp_path / "atomic.txt") == 0o640 and (tmp_path / "atomic.txt").read_text() == "y"


def test_fsync_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert events[:2] == ["fsync", "replace"]  # then (best effort) the folder entry
    events.clear()
    with atomic_path(tmp_path / "y.bin", fsync=False) as tmp:
        tmp.write_bytes(b"data")
    assert events == ["replace"]


def test_replace_moves_a_folder(tmp_path):
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "a.txt").write_text("a")
    replace(tmp_path / "tmp", tmp_path / "out")
    assert _names(tmp_path) == ["out"] and (tmp_path / "out" / "a.txt").read_text() == "a"


def test_module_imports_only_the_standard_library():
    source = str(REPO_ROOT / "defect_plugins" / "fileio.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('fileio', {source!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = {'torch', 'cv2', 'numpy', 'mmengine', 'openvino', 'defect_plugins'}\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
