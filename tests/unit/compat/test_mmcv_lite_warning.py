"""mmcv-lite's deformable-attention warning is silenced where the toolkits are loaded, and nothing else is."""
from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import run_python

needs_mmcv_lite = pytest.mark.skipif(
    importlib.util.find_spec("mmcv._ext") is not None, reason="full mmcv installed: the warning is never issued"
)
WARNING = "Fail to import ``MultiScaleDeformableAttention``"


@needs_mmcv_lite
def test_mmcv_lite_prints_the_warning_on_its_own():
    # Documents the upstream noise the filter exists for; if this stops printing it, the filter can go.
    result = run_python("import mmcv.cnn.bricks.transformer")
    assert WARNING in result.stderr


@needs_mmcv_lite
@pytest.mark.parametrize("package", ["defect_plugins.cls", "defect_plugins.seg"])
def test_importing_the_toolkit_plugins_is_quiet(package):
    result = run_python(f"import {package}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert WARNING not in result.stderr and "mmcv-lite" not in result.stderr


@needs_mmcv_lite
def test_the_filter_is_narrow():
    """The same text from another module, and other warnings of mmcv's module, still show."""
    result = run_python(
        "import warnings\n"
        "from defect_plugins.compat import apply_all\n"
        "apply_all()\n"
        f"warnings.warn_explicit('{WARNING} elsewhere', UserWarning, 'x.py', 1, module='elsewhere')\n"
        "warnings.warn_explicit('another mmcv warning', UserWarning, 'transformer.py', 1,\n"
        "                       module='mmcv.cnn.bricks.transformer')\n")
    assert f"{WARNING} elsewhere" in result.stderr and "another mmcv warning" in result.stderr
