"""experiments/arcd/arcd_residual_auroc.py: the residual of a stage-1 checkpoint as a defect score, on tiny
synthetic plates."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from experiments.arcd import arcd_residual_auroc
from tests.fixtures.seg_autouse import _mmseg_scope, _one_thread  # noqa: F401

CONFIG = """model = dict(
    data_preprocessor=dict(type='ARCDDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.]),
    reconstructor=dict(type='ARCDReconstructor', in_channels=3, base_channels=4, num_stages=3, mflm='none',
                       layout='draem'))
"""


def _tool():  # noqa: ANN202
    return arcd_residual_auroc


@pytest.fixture()
def plates(tmp_path: Path) -> Path:
    """Two flat grey 32x32 plates, each with a bright 'scratch' (class 3) square; no inclusion or patch."""
    root = tmp_path / "plates"
    for folder in ("img_dir/test", "ann_dir/test"):
        (root / folder).mkdir(parents=True)
    for i in range(2):
        image = np.full((32, 32, 3), 90, np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        image[8 + i:16 + i, 10:18] = 220
        mask[8 + i:16 + i, 10:18] = 3
        cv2.imwrite(str(root / "img_dir/test" / f"p{i}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
        cv2.imwrite(str(root / "ann_dir/test" / f"p{i}.png"), mask)
    return root


def _stage1(tmp_path: Path) -> tuple[Path, Path]:
    from mmseg.registry import MODELS

    config = tmp_path / "stage1.py"
    config.write_text(CONFIG)
    torch.manual_seed(0)
    net = MODELS.build(dict(type="ARCDReconstructor", in_channels=3, base_channels=4, num_stages=3, mflm="none",
                            layout="draem"))
    checkpoint = tmp_path / "recon.pth"
    torch.save(net.state_dict(), checkpoint)
    return config, checkpoint


def test_figures_per_present_class_with_the_median_reference(plates: Path, tmp_path: Path) -> None:
    config, checkpoint = _stage1(tmp_path)
    out = tmp_path / "residual.json"
    assert _tool().main([str(config), str(checkpoint), "--data-root", str(plates), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 2 and set(result["classes"]) == {"scratches"}  # absent classes are not scored
    scratches = result["classes"]["scratches"]
    assert scratches["pixels"] == 2 * 64
    assert 0.0 <= scratches["pixel_auroc"] <= 1.0
    # the bright square on a flat plate is exactly what |image - median| finds
    assert scratches["median_deviation_auroc"] == pytest.approx(1.0)


def test_missing_images_and_wrong_config_are_named(plates: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    config, checkpoint = _stage1(tmp_path)
    assert _tool().main([str(config), str(checkpoint), "--data-root", str(tmp_path / "none")]) == 2
    assert "no *.jpg in" in capsys.readouterr().err
    plain = tmp_path / "plain.py"
    plain.write_text("model = dict(type='EncoderDecoder')\n")
    with pytest.raises(SystemExit, match="has no model.reconstructor"):
        _tool().main([str(plain), str(checkpoint), "--data-root", str(plates)])
    cv2.imwrite(str(plates / "ann_dir/test" / "p0.png"), np.zeros((16, 16), np.uint8))
    assert _tool().main([str(config), str(checkpoint), "--data-root", str(plates)]) == 2
    assert "expected the same size" in capsys.readouterr().err
