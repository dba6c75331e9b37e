"""Fixtures for the ARCD (mmseg) tests: tiny synthetic strips and tiny configs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import defect_plugins.seg  # noqa: F401  (registers the components)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "arcd"
SCALE = 64


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Build nested configs (data preprocessors, heads) in mmseg's scope, as configs do; afterwards
    restore the previous default scope (also dropping the ones Runners created) so that other
    toolkits' tests are not left in mmseg's scope."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def strip_data(tmp_path_factory) -> Path:
    from defect_plugins.data import make_segmentation_dataset

    return make_segmentation_dataset(tmp_path_factory.mktemp("strip") / "data", num_train=4, num_val=2, num_normal=4,
                                     image_size=(32, 64), seed=0)


def tiny_options(data_root: Path, stage: int, neck: bool = False) -> dict:
    """--cfg-options for a 2-iteration run on the tiny strips at SCALE px with narrow networks."""
    opts = {
        "train_cfg.max_iters": 2, "train_cfg.val_interval": 2, "train_dataloader.batch_size": 2,
        "default_hooks.logger.interval": 1, "default_hooks.checkpoint.interval": 1,
        "model.reconstructor.base_channels": 4,
    }
    for split in ("train", "val", "test"):
        opts[f"{split}_dataloader.dataset.data_root"] = str(data_root)
    if stage == 1:
        opts["train_dataloader.dataset.pipeline.1.scale"] = SCALE
        opts["val_dataloader.dataset.pipeline.1.scale"] = SCALE
        opts["test_dataloader.dataset.pipeline.1.scale"] = SCALE
    else:
        opts["train_dataloader.dataset.pipeline.3.scale"] = SCALE
        opts["val_dataloader.dataset.pipeline.1.scale"] = SCALE
        opts["test_dataloader.dataset.pipeline.1.scale"] = SCALE
        opts["model.backbone.base_channels"] = 4
        opts["model.decode_head.in_channels"] = 4
        opts["model.decode_head.channels"] = 4
        opts["model.region_head.in_channels"] = 4
        opts["model.region_head.channels"] = 4
        if neck:
            opts["model.neck.in_channels"] = [64, 32, 16, 8, 4]
    return opts


def tiny_config(name: str, data_root: Path, work_dir: Path, stage: int, neck: bool = False, **extra):
    """Load ``configs/arcd/<name>.py`` with :func:`tiny_options` (+ ``extra``) applied."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / f"{name}.py"))
    cfg.merge_from_dict({**tiny_options(data_root, stage, neck), **extra})
    cfg.work_dir = str(work_dir)
    return cfg


def cli_options(options: dict) -> list[str]:
    return [f"{k}={v}".replace(" ", "") for k, v in options.items()]
