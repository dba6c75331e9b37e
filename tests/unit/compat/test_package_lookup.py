"""mmengine's ``pkg::`` config bases and package lookups work without pkg_resources."""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config

from defect_plugins.compat import package_lookup
from tests.conftest import run_python

MMSEG_BASE = "_base_ = ['mmseg::_base_/models/fcn_unet_s5-d16.py']\nmodel = dict(decode_head=dict(num_classes=3))\n"
MMPRETRAIN_BASE = "_base_ = ['mmpretrain::_base_/models/resnet18.py']\nmodel = dict(head=dict(num_classes=6))\n"


@pytest.mark.skipif(importlib.util.find_spec("pkg_resources") is not None, reason="pkg_resources present")
def test_upstream_lookup_fails_without_the_fix(tmp_path):
    config = tmp_path / "cfg.py"
    config.write_text(MMSEG_BASE)
    result = run_python(f"from mmengine.config import Config; Config.fromfile({str(config)!r})")
    assert result.returncode != 0
    assert "pkg_resources" in result.stderr


@pytest.mark.parametrize(
    "text, expected_type",
    [(MMSEG_BASE, "EncoderDecoder"), (MMPRETRAIN_BASE, "ImageClassifier")],
    ids=["mmseg", "mmpretrain"],
)
def test_configs_on_toolkit_bases_load(tmp_path, text, expected_type):
    config = tmp_path / "cfg.py"
    config.write_text(text)
    cfg = Config.fromfile(str(config))
    assert cfg.model.type == expected_type
    num_classes = cfg.model.decode_head.num_classes if "decode_head" in cfg.model else cfg.model.head.num_classes
    assert num_classes in (3, 6)


def test_lookups_follow_the_distribution_name():
    import mmseg

    assert package_lookup.is_installed("mmsegmentation")
    assert package_lookup.is_installed("mmseg")
    assert not package_lookup.is_installed("surely-not-an-installed-package")
    assert Path(package_lookup.get_installed_path("mmsegmentation")) == Path(mmseg.__file__).parent
    assert Path(package_lookup.get_installed_path("mmseg")) == Path(mmseg.__file__).parent
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        package_lookup.get_installed_path("surely-not-an-installed-package")
