"""Running IRs needs no torch or toolkit: imports stay clean, the runtime list matches the package's pins."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

from tests.conftest import REPO_ROOT
from tests.unit.deploy.test_openvino_threads import _images, make_tiny_classifier

FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")

CHILD = r"""
import json, sys
from defect_plugins.deploy import DefectInferencer
from defect_plugins.deploy.infer import main

xml, folder, out = sys.argv[1:4]
result = DefectInferencer(xml).predict(folder + "/000.png")
code = main([xml, folder, "--out", out, "--quiet"])
print(json.dumps({"decision": result.decision, "exit": code, "modules": sorted(sys.modules)}))
"""


def test_inferencer_and_defect_infer_import_no_torch_or_toolkit(tmp_path, anomaly_export):
    """A fresh interpreter imports defect_plugins.deploy, runs DefectInferencer and defect-infer on saved IRs."""
    images = tmp_path / "images"
    _images(images, 2)
    for xml in (make_tiny_classifier(tmp_path / "tiny.xml"), anomaly_export[1]):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(xml), str(images), str(tmp_path / "out" / xml.stem)],
                              capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["exit"] == 0 and report["decision"]
        loaded = sorted({name.split(".")[0] for name in report["modules"]} & set(FORBIDDEN))
        assert loaded == [], f"{xml.name}: the runtime imported {loaded}"


def test_import_defect_plugins_alone_applies_no_compat_fix_and_the_subpackages_do():
    code = ("import sys, defect_plugins, defect_plugins.deploy, defect_plugins.fileio\n"
            "assert 'torch' not in sys.modules and 'defect_plugins.compat' not in sys.modules, sorted(sys.modules)\n"
            "import defect_plugins.seg\n"
            "from defect_plugins import compat\n"
            "assert compat._applied is not None\n"
            "import mmcv.ops\n"
            "assert mmcv.ops.point_sample\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_selfcheck_passes_on_a_tiny_ir(tmp_path):
    """The CI's runtime-only check (here in the full environment: it must not import torch either)."""
    xml = make_tiny_classifier(tmp_path / "tiny.xml")
    proc = subprocess.run([sys.executable, "-m", "defect_plugins.deploy.selfcheck", str(xml), "--json",
                           str(tmp_path / "check.json")], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    row = json.loads((tmp_path / "check.json").read_text())["models"][0]
    assert row["family"] == "classifier" and row["processed"] == 3 and row["failed"] == 1
    assert 0 < row["cold_start_s"] < 60


def _names(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            found[re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower()] = line.replace(" ", "")
    return found


def test_runtime_requirements_are_the_package_pins_of_what_the_runtime_imports():
    runtime = _names((REPO_ROOT / "requirements-runtime.txt").read_text().splitlines())
    package = _names(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert set(runtime) == {"openvino", "numpy", "opencv-python-headless", "simplejpeg", "tqdm", "pyyaml",
                            "starlette", "uvicorn", "asyncua", "cryptography", "paho-mqtt", "sqlalchemy",
                            "alembic"}
    assert all(runtime[name] == package[name] for name in runtime), (runtime, package)
    assert not set(runtime) & set(FORBIDDEN)
