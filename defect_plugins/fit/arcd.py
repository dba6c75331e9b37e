"""``defect-fit segmentor --model arcd``: ARCD's two stages as two mmseg configs for the user's classes.

ARCD (anomaly reconstruction + contrastive discrimination; Zhang Xunfei, Zhejiang University master's thesis,
2023, chapter 3; the card: ``defect_plugins/seg/README.md``) first trains a reconstructor to remove simulated
(Perlin) anomalies from images (stage 1: ``ARCDReconstructionModel``, loss L2 + 1/100 (1 - SSIM); anomalies
after section 3.3.1, eq. 3-1), then segments with the image and its reconstruction stacked as six input
channels and a pixel focal loss weighted by class counts (stage 2: ``ARCDSegmentor``, eq. 3-16). The
package's components (:mod:`defect_plugins.seg`) are used as they are; this module only writes the two
configs, as ``configs/arcd/_base_/neu_stage1.py`` and ``neu_stage2_unet.py`` do for NEU-Seg.

Choices made for a user's folder (stated in the bundle's card):

* Stage 1 learns on **every** training image, defects included, as the NEU-Seg recipe does (NEU-Seg
  has no defect-free image): the reconstructor is taught to remove the *simulated* anomalies; its
  validation is the calibration images with fixed simulated anomalies (``ReconstructionAccuracy``).
* Stage 2's U-Net is the plain fit's (:func:`.segmentor.unet_model`, ``--width``) with six input
  channels and the focal loss, so ``--model unet`` against ``--model arcd`` compares the paper's
  parts on one backbone and one schedule. The reconstructor's width is ``max(8, width // 4)``
  (the package's CPU-sized NEU recipe uses 8).
* Both stages read images scaled to [0, 1] (``ARCDDataPreProcessor``, mean 0, std 255), as the
  reconstructor's loss expects.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .segmentor import (SegmentorOptions, epoch_schedule, masks_loaders, seg_loader, unet_model,
                        write_mmseg_config)

STAGE1_LR = 1e-3  # Adam, as configs/arcd/_base_/neu_stage1.py
STAGE2_LR = 2e-3  # AdamW, as configs/arcd/_base_/neu_stage2_unet.py


def reconstructor_width(options: SegmentorOptions) -> int:
    """The stage-1 reconstructor's base channels for a fit at ``--width``."""
    return max(8, options.width // 4)


def _reconstructor(options: SegmentorOptions) -> dict[str, Any]:
    return dict(type="ARCDReconstructor", in_channels=3, base_channels=reconstructor_width(options), num_stages=4,
                mflm="none", layout="draem")


def _preprocessor(options: SegmentorOptions) -> dict[str, Any]:
    return dict(type="ARCDDataPreProcessor", mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=False,
                pad_val=0, seg_pad_val=255, size=(options.image_size,) * 2)


def check_size(options: SegmentorOptions) -> None:
    """The reconstructor halves the image three times and the U-Net four: the side must divide by 16."""
    if options.image_size % 16:
        raise ValueError(f"--model arcd needs --image-size divisible by 16 (the U-Net and the reconstructor "
                         f"halve it), got {options.image_size}")


def write_stage1_config(path: Path, *, staged: Path, options: SegmentorOptions, epochs: int) -> Path:
    """Stage 1: the reconstructor on the training images with simulated anomalies."""
    flips = dict(type="RandomFlip", prob=[0.25, 0.25], direction=["horizontal", "vertical"])
    train_pipeline = [dict(type="LoadImageFromFile"), flips,
                      dict(type="SimulateAnomaly", threshold_range=(0.5, 0.8), beta_range=(0.0, 0.8)),
                      dict(type="PackARCDInputs")]
    val_pipeline = [dict(type="LoadImageFromFile"), dict(type="SimulateAnomaly", deterministic=True, seed=1),
                    dict(type="PackARCDInputs")]
    images = dict(type="NormalImageDataset", data_prefix=dict(img_path="img_dir/train"))
    held_out = dict(type="NormalImageDataset", data_prefix=dict(img_path="img_dir/calibration"))
    values: dict[str, Any] = {
        "model": dict(type="ARCDReconstructionModel", data_preprocessor=_preprocessor(options),
                      reconstructor=_reconstructor(options), ssim_weight=0.01, self_sup_weight=0.0),
        "train_dataloader": seg_loader(staged, "train", train_pipeline, True, options.batch_size, images),
        "val_dataloader": seg_loader(staged, "calibration", val_pipeline, False, 1, held_out),
        "val_evaluator": dict(type="ReconstructionAccuracy"),
        "optim_wrapper": dict(type="OptimWrapper", optimizer=dict(type="Adam", lr=STAGE1_LR, betas=(0.9, 0.999))),
        "param_scheduler": [dict(type="MultiStepLR", by_epoch=True, milestones=[max(1, int(0.8 * epochs))],
                                 gamma=0.2)],
        **epoch_schedule(epochs, options.seed),
    }
    return write_mmseg_config(path, values, "ARCD stage 1, the reconstructor")


def write_stage2_config(path: Path, *, classes: Sequence[str], staged: Path, options: SegmentorOptions,
                        reconstructor_checkpoint: Path) -> Path:
    """Stage 2: the segmentor on the image and its reconstruction, focal loss by class counts."""
    num_classes = len(classes)
    train_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                      dict(type="RandomFlip", prob=[0.25, 0.25], direction=["horizontal", "vertical"]),
                      dict(type="PackARCDInputs", num_classes=num_classes)]
    test_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                     dict(type="PackARCDInputs", num_classes=num_classes)]
    model = dict(type="ARCDSegmentor", data_preprocessor=_preprocessor(options),
                 reconstructor=_reconstructor(options), reconstructor_checkpoint=str(reconstructor_checkpoint),
                 **unet_model(options, num_classes, in_channels=6,
                              loss=dict(type="PixelFocalLoss", gamma=2.0, alpha="counts")))
    values: dict[str, Any] = {
        "model": model,
        **masks_loaders(staged, classes, train_pipeline, test_pipeline, options.batch_size),
        "optim_wrapper": dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=STAGE2_LR, weight_decay=1e-4)),
        "param_scheduler": [dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=0, end=options.epochs, by_epoch=True,
                                 convert_to_iter_based=True)],
        **epoch_schedule(options.epochs, options.seed),
    }
    return write_mmseg_config(path, values, "ARCD stage 2, the segmentor")
