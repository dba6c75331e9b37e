"""Tiny trained-looking models of the three families, made on the fly (no download, no shared data).

Session fixtures shared by the deploy and station tests, unit and integration (a plugin registered in
tests/conftest.py, so that each model is made once per session whichever folders run).

Classifier and segmentor: randomly initialised OpenMMLab models saved as mmengine-style checkpoints
(``state_dict`` + ``meta.dataset_meta``). Anomaly: a one-epoch anomalib run of AKF reverse
distillation on a few 32x32 synthetic images (the checkpoint then has real post-processor
statistics), exported once per session.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY_CLS_CONFIG = """
default_scope = 'mmpretrain'
img_size = 32
data_preprocessor = dict(num_classes=6, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=6, in_channels=64, loss=dict(type='CrossEntropyLoss')))
"""


@dataclass
class TinyModel:
    family: str
    checkpoint: Path
    config: Path | None = None
    data: Path | None = None
    input_size: tuple[int, int] | None = None


def _random_checkpoint(registry, scope: str, model_cfg, classes, checkpoint: Path) -> Path:
    """Build ``model_cfg`` in ``scope`` with seed 0, initialise it and save an mmengine-style checkpoint."""
    import torch
    from mmengine.registry import DefaultScope

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(model_cfg)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": list(classes)}}}, checkpoint)
    return checkpoint


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> TinyModel:
    from mmengine.config import Config
    from mmpretrain.registry import MODELS

    from defect_plugins.data import NEU_CLASSES, make_classification_dataset

    root = tmp_path_factory.mktemp("tiny_cls")
    data = make_classification_dataset(root / "data", per_class=2, image_size=32, seed=0)
    config = root / "tiny_cls.py"
    config.write_text(TINY_CLS_CONFIG)
    cfg = Config.fromfile(str(config))
    checkpoint = _random_checkpoint(MODELS, "mmpretrain", {**cfg.model, "data_preprocessor": cfg.data_preprocessor},
                                    NEU_CLASSES, root / "tiny_cls.pth")
    return TinyModel("classifier", checkpoint, config, data, (32, 32))


@pytest.fixture(scope="session")
def tiny_segmentor(tmp_path_factory) -> TinyModel:
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from defect_plugins.data import SEG_CLASSES, make_segmentation_dataset

    root = tmp_path_factory.mktemp("tiny_seg")
    data = make_segmentation_dataset(root / "data", num_train=2, num_val=2, num_normal=1, image_size=(32, 64), seed=0)
    config = REPO_ROOT / "tests" / "fixtures" / "tiny_mmseg_unet.py"
    cfg = Config.fromfile(str(config))
    checkpoint = _random_checkpoint(MODELS, "mmseg", cfg.model, SEG_CLASSES, root / "tiny_seg.pth")
    return TinyModel("segmentor", checkpoint, config, data, (32, 64))


@pytest.fixture(scope="session")
def tiny_anomaly(tmp_path_factory) -> TinyModel:
    """One epoch of AKF-RD (random-init resnet18 teacher) on 4 synthetic 32x32 images."""
    import torch
    from anomalib.data import MVTecAD
    from anomalib.engine import Engine

    from defect_plugins.anomaly import AkfReverseDistillation
    from defect_plugins.data import make_anomaly_dataset

    root = tmp_path_factory.mktemp("tiny_anomaly")
    make_anomaly_dataset(root / "data" / "steel", num_train=4, num_test_good=2, num_test_defect=1, image_size=32,
                         seed=0, defect_types=("scratch", "patch"))
    torch.manual_seed(0)
    model = AkfReverseDistillation(backbone="resnet18", image_size=(32, 32), pre_trained=False, lr=0.005)
    datamodule = MVTecAD(root=root / "data", category="steel", train_batch_size=4, eval_batch_size=4, num_workers=0)
    engine = Engine(max_epochs=1, accelerator="cpu", devices=1, default_root_dir=root / "results",
                    enable_progress_bar=False, logger=False)
    engine.fit(model=model, datamodule=datamodule)
    checkpoint = sorted((root / "results").rglob("*.ckpt"))[-1]
    return TinyModel("anomaly", checkpoint, None, root / "data" / "steel", (32, 32))


@pytest.fixture(scope="session")
def anomaly_export(tiny_anomaly, tmp_path_factory):
    """The tiny anomaly model loaded and exported once (anomalib's ONNX export is the slow part)."""
    from defect_plugins.deploy.export import export_model, load_model

    loaded = load_model("anomaly", checkpoint=tiny_anomaly.checkpoint)
    xml, metadata = export_model("anomaly", tmp_path_factory.mktemp("anomaly_ir") / "akf.xml", loaded=loaded)
    return loaded, xml, metadata
