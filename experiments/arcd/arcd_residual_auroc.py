#!/usr/bin/env python
"""How much a stage-1 reconstructor says about real defects: pixel AUROC of its residual on labelled images.

ARCD's discriminator sees ``[image, reconstruction]``; the reconstruction only helps where it differs from the
image on defects more than elsewhere (thesis section 3.3: the network learned to remove anomalies). This tool
reconstructs the images of a labelled split with a stage-1 checkpoint and scores each pixel by the residual
``mean_c |image - reconstruction|``, then reports, per defect class, the one-vs-background pixel AUROC of that
score (torchmetrics' ``binary_auroc``) and the mean residual on the class and on background. An AUROC near 0.5
means the reconstruction carries no cue for that class. For scale, the same figures are given for a score that
needs no network, ``mean_c |image - per-image median|`` (a defect that is darker or brighter than its plate).

    python experiments/arcd/arcd_residual_auroc.py configs/arcd/arcd_stage1_recon_neu-normal64.py \\
        work_dirs/seg/arcd_evidence/stage1/seed0/base \\
        --data-root ../shared/data/neu_seg --split test --json OUT.json

The reconstructor and the input scaling come from the stage-1 config (``model.reconstructor``,
``model.data_preprocessor`` mean / std); the checkpoint is a file or a stage-1 work dir (its ``last_checkpoint``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from torchmetrics.functional.classification import binary_auroc

from defect_plugins.fileio import atomic_write_json

CLASSES = ("background", "inclusion", "patches", "scratches")  # NEU-Seg's labels 0-3


def build_reconstructor(config: str, checkpoint: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The stage-1 network with its weights, and the preprocessor's mean / std (0-255 scale, shape 1x3x1x1)."""
    import defect_plugins.seg  # noqa: F401  (registers ARCDReconstructor; applies the compat fixes)
    from mmseg.registry import MODELS

    from defect_plugins.seg.models.arcd_segmentor import load_reconstructor_state

    cfg = Config.fromfile(config)
    if "reconstructor" not in cfg.model:
        raise SystemExit(f"arcd_residual_auroc: {config} has no model.reconstructor (expected a stage-1 config)")
    net = MODELS.build(cfg.model.reconstructor)
    net.load_state_dict(load_reconstructor_state(checkpoint))
    pre = cfg.model.get("data_preprocessor", {})
    mean = torch.tensor(pre.get("mean", [0.0, 0.0, 0.0]), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pre.get("std", [255.0, 255.0, 255.0]), dtype=torch.float32).view(1, 3, 1, 1)
    return net.eval(), mean, std


def residual(net: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor, image_bgr: np.ndarray) -> torch.Tensor:
    """Per-pixel ``mean_c |image - reconstruction|`` on the 0-1 scale (images as loaded by OpenMMLab, BGR)."""
    x = torch.from_numpy(image_bgr).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        recon = net((x - mean) / std) * std + mean
    return ((x - recon).abs() / 255.0).mean(dim=1)[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="stage-1 config (model.reconstructor, model.data_preprocessor)")
    p.add_argument("checkpoint", help="stage-1 checkpoint file or work dir")
    p.add_argument("--data-root", type=Path, required=True,
                   help="mmseg layout: img_dir/SPLIT/*.jpg, ann_dir/SPLIT/*.png")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="first N images by name (0: all)")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    images = sorted((args.data_root / "img_dir" / args.split).glob("*.jpg"))
    if args.limit:
        images = images[: args.limit]
    if not images:
        print(f"arcd_residual_auroc: no *.jpg in {args.data_root / 'img_dir' / args.split}", file=sys.stderr)
        return 2
    net, mean, std = build_reconstructor(args.config, args.checkpoint)
    scores, plain, labels = [], [], []
    for path in images:
        mask_path = args.data_root / "ann_dir" / args.split / f"{path.stem}.png"
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if mask is None or image is None:
            print(f"arcd_residual_auroc: cannot read {path} or its mask {mask_path}", file=sys.stderr)
            return 2
        if mask.shape != image.shape[:2]:
            print(f"arcd_residual_auroc: {mask_path} is {mask.shape[1]}x{mask.shape[0]}, its image {path} "
                  f"{image.shape[1]}x{image.shape[0]}: expected the same size", file=sys.stderr)
            return 2
        scores.append(residual(net, mean, std, image).flatten())
        pixels = torch.from_numpy(image).float() / 255.0
        plain.append((pixels - pixels.flatten(0, 1).median(dim=0).values).abs().mean(dim=2).flatten())
        labels.append(torch.from_numpy(mask.astype(np.int64)).flatten())
    score, reference, label = torch.cat(scores), torch.cat(plain), torch.cat(labels)
    background = label == 0
    result = {"config": args.config, "checkpoint": args.checkpoint, "split": args.split, "images": len(images),
              "residual_background": round(score[background].mean().item(), 5), "classes": {}}
    for c, name in enumerate(CLASSES[1:], start=1):
        pick = background | (label == c)
        if not (label == c).any():
            continue
        target = (label[pick] == c).long()
        auroc = binary_auroc(score[pick], target).item()
        median_auroc = binary_auroc(reference[pick], target).item()
        result["classes"][name] = {"pixel_auroc": round(auroc, 4),
                                   "residual": round(score[label == c].mean().item(), 5),
                                   "median_deviation_auroc": round(median_auroc, 4), "pixels": int((label == c).sum())}
        print(f"{name:10s} residual AUROC vs background {auroc:.4f}  mean residual {score[label == c].mean():.4f} "
              f"(background {score[background].mean():.4f}); |image - median| AUROC {median_auroc:.4f}")
    if args.json:
        atomic_write_json(args.json, result, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
