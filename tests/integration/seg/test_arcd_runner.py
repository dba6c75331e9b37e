"""Both ARCD stages through tools/mim_train.sh (mmseg's tools/train.py) and mmengine's Runner:
two iterations each, resume, mmseg.apis inference and OpenVINO export parity (f32)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures.seg import REPO, cli_options, tiny_config, tiny_options

STAGE1 = "arcd_stage1_recon-mflm_strip"
STAGE2 = "arcd_stage2_unet-calm_mflm_strip"


def _mim_train(config: str, work_dir: Path, options: dict, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHON=sys.executable)
    cmd = [str(REPO / "tools" / "mim_train.sh"), "mmseg", str(REPO / "configs" / "arcd" / f"{config}.py"),
           "--work-dir", str(work_dir), *extra, "--cfg-options", *cli_options(options)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def stage1_dir(strip_data, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("stage1")
    _mim_train(STAGE1, work, tiny_options(strip_data, 1))
    return work


@pytest.fixture(scope="module")
def stage2_dir(strip_data, stage1_dir, tmp_path_factory) -> Path:
    """Stage 2 through the launcher that tools/mim_train.sh execs, in this process (saves the start-up)."""
    from mmengine.registry import DefaultScope

    from defect_plugins.runners.launcher import main

    work = tmp_path_factory.mktemp("stage2")
    options = {**tiny_options(strip_data, 2, neck=True),
               "model.reconstructor_checkpoint": str(stage1_dir / "iter_2.pth")}
    argv = sys.argv
    try:
        with DefaultScope.overwrite_default_scope("mmseg"):
            main(["train", "mmseg", str(REPO / "configs" / "arcd" / f"{STAGE2}.py"), "--work-dir", str(work),
                  "--cfg-options", *cli_options(options)])
    finally:
        sys.argv = argv
    return work


def test_stage1_trains_through_mim_train_and_resumes(stage1_dir, strip_data):
    from mmengine.runner import Runner

    assert (stage1_dir / "iter_2.pth").is_file() and (stage1_dir / "last_checkpoint").is_file()
    ckpt = torch.load(stage1_dir / "iter_2.pth", map_location="cpu", weights_only=False)
    for block in range(5):  # MFLM in place of the second convolution of every encoder block (thesis Table 4.2)
        assert any(k.startswith(f"reconstructor.encoder.{block}.1.masked.gate.") for k in ckpt["state_dict"]), block
    cfg = tiny_config(STAGE1, strip_data, stage1_dir, 1, **{"train_cfg.max_iters": 3, "train_cfg.val_interval": 3})
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3 and (stage1_dir / "iter_3.pth").is_file()


def test_stage2_trains_with_frozen_reconstructor(stage2_dir, stage1_dir):
    s1 = torch.load(stage1_dir / "iter_2.pth", map_location="cpu", weights_only=False)["state_dict"]
    s2 = torch.load(stage2_dir / "iter_2.pth", map_location="cpu", weights_only=False)["state_dict"]
    recon = {k: v for k, v in s1.items() if k.startswith("reconstructor.")}
    assert recon and all(torch.equal(s2[k], v) for k, v in recon.items()), "stage 2 changed the reconstructor"
    assert any(k.startswith("region_head.") for k in s2) and any(k.startswith("neck.blocks") for k in s2)
    log = next(stage2_dir.rglob("*.log")).read_text()
    assert "region/mIoU" in log and "AUROC.fold_mark" in log and "region/AUROC.machine_bed" in log


def test_stage2_inference_with_mmseg_apis(stage2_dir, strip_data):
    from mmseg.apis import inference_model, init_model

    model = init_model(str(stage2_dir / f"{STAGE2}.py"), str(stage2_dir / "iter_2.pth"), device="cpu")
    image = sorted((strip_data / "img_dir" / "val").glob("*.png"))[0]
    result = inference_model(model, str(image))
    assert result.pred_sem_seg.data.shape == (1, 32, 64)  # back at the original (wide) size
    assert result.pred_region.data.shape == (1, 32, 64)
    assert set(result.pred_sem_seg.data.unique().tolist()) <= {0, 1, 2}


def test_openvino_export_parity_f32(stage2_dir, tmp_path):
    """The whole ARCD path (reconstructor + discriminator + region head) as one IR through defect-export."""
    from defect_plugins.deploy.export import export_model, load_model, parity
    from defect_plugins.deploy.runtime import compile_model, latency

    config, ckpt = str(stage2_dir / f"{STAGE2}.py"), str(stage2_dir / "iter_2.pth")
    loaded = load_model("segmentor", config=config, checkpoint=ckpt, input_size=(64, 64))
    xml, metadata = export_model("segmentor", tmp_path / "ov" / "arcd.xml", loaded=loaded)
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert not any(p.name.startswith(".") for p in xml.parent.iterdir())
    assert metadata.outputs == ["seg_probs", "region_probs"] and metadata.region_classes
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    diffs = parity(loaded, xml, image)
    assert set(diffs) == {"seg_probs", "region_probs"}
    assert max(diffs.values()) < 1e-4, diffs
    assert latency(compile_model(xml, "f32"), image, runs=2, warmup=1)["p50_ms"] > 0


def test_stage2_config_without_stage1_checkpoint_fails_clearly(strip_data, tmp_path):
    from mmengine.runner import Runner

    from defect_plugins.seg.models import StageOneCheckpointError

    cfg = tiny_config(STAGE2, strip_data, tmp_path, 2, neck=True, **{"model.reconstructor_checkpoint": None})
    with pytest.raises(StageOneCheckpointError, match="model.reconstructor_checkpoint is not set"):
        Runner.from_cfg(cfg)
    cfg = tiny_config(STAGE2, strip_data, tmp_path, 2, neck=True)  # default: work_dirs/arcd_stage1_recon-mflm_strip
    cfg.model.reconstructor_checkpoint = str(tmp_path / "no_stage1_here")
    with pytest.raises(StageOneCheckpointError, match="no_stage1_here"):
        Runner.from_cfg(cfg)
