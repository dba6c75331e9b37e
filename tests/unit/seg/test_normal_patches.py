"""defect-seg-normal-patches: background-only windows of labelled training images, split by source image."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.data.atomic import DataGenerationError
from defect_plugins.seg.datasets.normal_patches import background_windows, cut_normal_patches, main


def _dataset(root: Path, count: int = 4, size: int = 48) -> Path:
    """mmseg layout; image i has a 6x6 defect (label 1) at (4, 4) in its top-left window."""
    for sub in ("img_dir/train", "ann_dir/train", "img_dir/val", "ann_dir/val"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(60, 200, (size, size), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        mask[4:10, 4:10] = 1
        cv2.imwrite(str(root / "img_dir/train" / f"{i:03d}.jpg"), image)
        cv2.imwrite(str(root / "ann_dir/train" / f"{i:03d}.png"), mask)
    # an evaluation image that must never be read
    cv2.imwrite(str(root / "img_dir/val" / "999.jpg"), np.zeros((size, size), np.uint8))
    cv2.imwrite(str(root / "ann_dir/val" / "999.png"), np.zeros((size, size), np.uint8))
    return root


def test_windows_skip_the_defect_and_its_margin():
    mask = np.zeros((48, 48), np.uint8)
    mask[4:10, 4:10] = 1
    assert background_windows(mask, 16, 16, margin=0) == [(y, x) for y in (0, 16, 32) for x in (0, 16, 32)
                                                          if (y, x) != (0, 0)]
    # grown by 8 px the defect reaches x, y = 17: the windows at 16 next to it are dropped too
    assert (0, 16) not in background_windows(mask, 16, 16, margin=8)
    assert (32, 32) in background_windows(mask, 16, 16, margin=8)


def test_patches_split_by_source_image_and_manifest(tmp_path):
    data = _dataset(tmp_path / "data")
    manifest = cut_normal_patches(data, tmp_path / "out", size=16, margin=0, val_fraction=0.25, seed=0)
    out = tmp_path / "out"
    assert manifest["patches"] == {"train": 24, "val": 8}  # 8 clean windows per image, 1 of 4 images held out
    assert len(list((out / "train").glob("*.png"))) == 24 and len(list((out / "val").glob("*.png"))) == 8
    saved = json.loads((out / "patches.json").read_text())
    sources = {part: {r["source"] for r in saved["records"][part]} for part in ("train", "val")}
    assert not sources["train"] & sources["val"]  # no source image on both sides
    assert all(s.startswith("img_dir/train/") for part in sources.values() for s in part)  # never val/test
    patch = cv2.imread(str(out / saved["records"]["train"][0]["patch"]), cv2.IMREAD_UNCHANGED)
    assert patch.shape[:2] == (16, 16)


def test_bad_input_leaves_nothing(tmp_path):
    data = _dataset(tmp_path / "data")
    (data / "ann_dir/train/002.png").write_bytes(b"not a png")
    with pytest.raises(DataGenerationError, match="002.png: unreadable image"):
        cut_normal_patches(data, tmp_path / "out", size=16)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(DataGenerationError, match="exists and is not empty"):
        cut_normal_patches(data, tmp_path / "full", size=16)
    with pytest.raises(DataGenerationError, match="no 48x48 window"):
        cut_normal_patches(_dataset(tmp_path / "d2"), tmp_path / "o2", size=48)


def test_cli_writes_patches_and_a_preview(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    assert main([str(data), "--out", str(tmp_path / "out"), "--size", "16", "--margin", "0",
                 "--preview", str(tmp_path / "grid.png")]) == 0
    assert "training and" in capsys.readouterr().out
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid is not None and grid.shape[1] == 12 * 16 and grid.shape[0] % 16 == 0


def test_cli_names_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "img_dir/train: not a folder" in capsys.readouterr().err


def test_stage1_config_trains_on_the_patches(tmp_path):
    """configs/arcd/arcd_stage1_recon_neu-normal64.py reads the tool's folders through mmseg's Runner."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from tests.fixtures.seg import CONFIGS

    # 64 px, the config's size: anomalib's Perlin generator needs more than a few pixels
    cut_normal_patches(_dataset(tmp_path / "data", size=128), tmp_path / "patches", size=64, margin=0,
                       val_fraction=0.25)
    cfg = Config.fromfile(str(CONFIGS / "arcd_stage1_recon_neu-normal64.py"))
    assert cfg.patch_root == "work_dirs/seg/neu_normal64"
    cfg.merge_from_dict({"train_dataloader.dataset.data_root": str(tmp_path / "patches"),
                         "val_dataloader.dataset.data_root": str(tmp_path / "patches"),
                         "test_dataloader.dataset.data_root": str(tmp_path / "patches"),
                         "train_dataloader.batch_size": 4, "model.reconstructor.base_channels": 4,
                         "train_cfg.max_iters": 2, "train_cfg.val_interval": 2, "default_hooks.logger.interval": 1})
    cfg.work_dir = str(tmp_path / "work")
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 9 and len(runner.val_dataloader.dataset) == 3
    runner.train()
    assert (tmp_path / "work" / "iter_2.pth").is_file()
