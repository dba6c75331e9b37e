"""``defect-teacher``: train a domain teacher backbone for anomalib on labelled defect images.

Teacher-student anomaly detectors (reverse distillation, AKF-RD, STFPM) and feature-bank
methods (PatchCore, PaDiM) need a pretrained backbone; offline factories cannot download the
ImageNet weights timm would fetch (anomalib issues #2439, #2506). What they usually have is a
few hundred labelled images of their own defects. This command trains a torchvision-layout
ResNet classifier on them with **mmpretrain's own Runner** (``tools/train.py`` through
``defect-train``, :mod:`defect_plugins.runners.launcher`), then writes

* ``OUT.pth``: the backbone as a torchvision / timm ``state_dict`` (``conv1``, ``bn1``,
  ``layer1`` .. ``layer4``, ``fc``), checked by loading it into ``torchvision.models.<backbone>``
  with ``strict=True``;
* ``OUT.json``: a card (data, classes, split sizes, epochs, recipe, held-out top-1 as
  mmpretrain's ``Accuracy`` metric computed it, the mmpretrain checkpoint, SHA-256 of the file).

Load the file into any anomalib model with a ``TimmFeatureExtractor`` from the anomalib CLI with
:class:`defect_plugins.anomaly.callbacks.LoadTeacherWeights`, or into AKF-RD with
``--model.teacher_weights OUT.pth``.

Data: one folder per class (``DATA/<class>/*.png``; the NEU-CLS layout of this project is such a
folder), split per class with the project's fixed stratified split
(:func:`defect_plugins.cls.datasets.split.write_split`), or an existing split folder
(``--split-dir``, ``train.txt`` / ``test.txt`` / ``split.json`` as ``defect-cls-split`` writes them).

Recipe defaults: the project's measured from-scratch recipe for NEU-CLS (``docs/RESULTS.md``,
``configs/neu_cls/_base_/schedule_sgd_cosine_30e.py``): SGD lr 0.05, momentum 0.9, weight decay
5e-4, linear warm-up then cosine, horizontal and vertical flips, ImageNet normalisation on RGB
(what anomalib's pre-processor feeds the teacher).

A run cut off (killed, machine stopped) goes on where it stopped when the same command is given
again: mmengine keeps the last epoch's checkpoint and the launcher is called with ``--resume``; a
finished training is only converted again.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from defect_plugins.runners.process import die_with_parent

__all__ = ["BACKBONES", "TeacherError", "convert_checkpoint", "main", "read_accuracy", "train_teacher",
           "write_config"]

# backbone -> mmpretrain ResNet arguments (mmpretrain configs/_base_/models/{resnet18,resnet50,wide-resnet50}.py)
BACKBONES: dict[str, dict[str, Any]] = {
    "resnet18": {"depth": 18, "head_channels": 512},
    "resnet50": {"depth": 50, "head_channels": 2048},
    "wide_resnet50_2": {"depth": 50, "head_channels": 2048, "base_channels": 128, "expansion": 2},
}
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


class TeacherError(ValueError):
    """Input that cannot be used (missing data, bad split file, failed training); the message names it."""


def _class_folders(data: Path) -> list[str]:
    if not data.is_dir():
        raise TeacherError(f"data folder {data} not found")
    classes = sorted(p.name for p in data.iterdir()
                     if p.is_dir() and any(f.suffix.lower() in _IMAGE_EXTENSIONS for f in p.iterdir()))
    if len(classes) < 2:  # noqa: PLR2004
        raise TeacherError(f"{data}: expected one sub-folder of images per class, at least two classes; "
                           f"found {classes or 'none'}")
    return classes


def _read_split(split_dir: Path, classes: Sequence[str] | None) -> tuple[list[str], Path, Path]:
    train, test = split_dir / "train.txt", split_dir / "test.txt"
    for path in (train, test):
        if not path.is_file():
            raise TeacherError(f"split file {path} not found (write the split with defect-cls-split)")
    if classes:
        return list(classes), train, test
    meta = split_dir / "split.json"
    if not meta.is_file():
        raise TeacherError(f"{meta} not found: give the label order with --classes")
    try:
        found = json.loads(meta.read_text())["classes"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise TeacherError(f"{meta}: expected a JSON object with a 'classes' list ({error})") from None
    if not isinstance(found, list) or not all(isinstance(c, str) for c in found):
        raise TeacherError(f"{meta}: 'classes' must be a list of class folder names")
    return found, train, test


def _count_lines(path: Path, num_classes: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(" ", 1)
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) >= num_classes:  # noqa: PLR2004
            raise TeacherError(f"{path}:{number}: expected '<relative path> <label 0..{num_classes - 1}>', "
                               f"got {line!r}")
        counts[int(parts[1])] = counts.get(int(parts[1]), 0) + 1
    if not counts:
        raise TeacherError(f"{path} lists no image")
    return counts


def warmup_cosine(epochs: int) -> list[dict[str, Any]]:
    """mmengine param schedulers: a linear warm-up (up to 2 epochs), then cosine decay to 0 at ``epochs``."""
    warmup = min(2, epochs - 1)
    schedulers: list[dict[str, Any]] = []
    if warmup > 0:
        schedulers.append(dict(type="LinearLR", start_factor=0.01, by_epoch=True, begin=0, end=warmup,
                               convert_to_iter_based=True))
    schedulers.append(dict(type="CosineAnnealingLR", T_max=max(1, epochs - warmup), eta_min=0.0, by_epoch=True,
                           begin=warmup, end=epochs, convert_to_iter_based=True))
    return schedulers


def write_config(path: Path, *, backbone: str, classes: Sequence[str], data: Path, train_ann: Path, test_ann: Path,
                 epochs: int, image_size: int, batch_size: int, lr: float, seed: int) -> Path:
    """Write the mmpretrain config of one teacher run to ``path`` (atomically) and return it."""
    from defect_plugins.fileio import atomic_write_text

    spec = BACKBONES[backbone]
    resnet = dict(type="ResNet", depth=spec["depth"], num_stages=4, out_indices=(3,), style="pytorch")
    if "base_channels" in spec:
        resnet.update(stem_channels=64, base_channels=spec["base_channels"], expansion=spec["expansion"])
    model = dict(type="ImageClassifier", backbone=resnet, neck=dict(type="GlobalAveragePooling"),
                 head=dict(type="LinearClsHead", num_classes=len(classes), in_channels=spec["head_channels"],
                           loss=dict(type="CrossEntropyLoss", loss_weight=1.0), topk=(1,)))
    train_pipeline = [dict(type="CheckedLoadImageFromFile"), dict(type="Resize", scale=(image_size, image_size)),
                      dict(type="RandomFlip", prob=0.5, direction="horizontal"),
                      dict(type="RandomFlip", prob=0.5, direction="vertical"), dict(type="PackInputs")]
    test_pipeline = [dict(type="CheckedLoadImageFromFile"), dict(type="Resize", scale=(image_size, image_size)),
                     dict(type="PackInputs")]

    def loader(ann: Path, pipeline: list, shuffle: bool, size: int) -> dict[str, Any]:
        return dict(batch_size=size, num_workers=0,
                    dataset=dict(type="CustomDataset", data_root="", data_prefix=str(data), ann_file=str(ann),
                                 metainfo=dict(classes=list(classes)), pipeline=pipeline),
                    sampler=dict(type="DefaultSampler", shuffle=shuffle))

    values = {
        "default_scope": "mmpretrain",
        "custom_imports": dict(imports=["defect_plugins.cls"], allow_failed_imports=False),
        "model": model,
        # ImageNet statistics on the 0-255 scale, BGR -> RGB: what anomalib's pre-processor feeds the teacher
        "data_preprocessor": dict(num_classes=len(classes), mean=[123.675, 116.28, 103.53],
                                  std=[58.395, 57.12, 57.375], to_rgb=True),
        "train_dataloader": loader(train_ann, train_pipeline, True, batch_size),
        "val_dataloader": loader(test_ann, test_pipeline, False, batch_size),
        "val_evaluator": dict(type="Accuracy", topk=(1,)),
        "test_dataloader": loader(test_ann, test_pipeline, False, batch_size),
        "test_evaluator": dict(type="Accuracy", topk=(1,)),
        "optim_wrapper": dict(optimizer=dict(type="SGD", lr=lr, momentum=0.9, weight_decay=5e-4)),
        "param_scheduler": warmup_cosine(epochs),
        "train_cfg": dict(by_epoch=True, max_epochs=epochs, val_interval=epochs),
        "val_cfg": {},
        "test_cfg": {},
        "default_hooks": dict(logger=dict(type="LoggerHook", interval=10),
                              # every epoch, so that a run cut off resumes (train_teacher passes --resume)
                              checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=1)),
        "env_cfg": dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                        dist_cfg=dict(backend="nccl")),
        "randomness": dict(seed=seed, deterministic=False),
    }
    lines = ["# Written by defect-teacher (defect_plugins/fit/domain_teacher.py): one run, mmpretrain's Runner.",
             "_base_ = ['mmpretrain::_base_/default_runtime.py']"]
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_accuracy(work_dir: Path) -> float:
    """Last ``accuracy/top1`` (percent -> fraction) mmengine logged under ``work_dir/*/vis_data/scalars.json``."""
    from defect_plugins.runners.launcher import LauncherError, read_logged_scalars

    try:
        return read_logged_scalars(work_dir, "accuracy/top1")["accuracy/top1"] / 100.0
    except LauncherError as error:
        raise TeacherError(str(error)) from None


def convert_checkpoint(checkpoint: Path, backbone: str, num_classes: int) -> dict[str, Any]:
    """mmpretrain ``ImageClassifier`` checkpoint -> torchvision ``state_dict`` (``backbone.*`` + ``head.fc`` as ``fc``).

    The result is loaded into ``torchvision.models.<backbone>(num_classes=...)`` with
    ``strict=True`` before it is returned, so it is exactly torchvision's (and timm's) layout.
    """
    import torch
    import torchvision

    from defect_plugins.anomaly.teacher import _load_file  # torch.load(weights_only) with mmengine's globals

    obj = _load_file(checkpoint)
    state = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise TeacherError(f"{checkpoint}: not an mmengine checkpoint with a state_dict")
    out = {key[len("backbone."):]: value for key, value in state.items() if key.startswith("backbone.")}
    for name in ("weight", "bias"):
        if f"head.fc.{name}" not in state:
            raise TeacherError(f"{checkpoint}: head.fc.{name} missing (not a LinearClsHead classifier?)")
        out[f"fc.{name}"] = state[f"head.fc.{name}"]
    reference = getattr(torchvision.models, backbone)(weights=None, num_classes=num_classes)
    try:
        reference.load_state_dict(out, strict=True)
    except RuntimeError as error:
        raise TeacherError(f"{checkpoint}: backbone does not convert to torchvision {backbone}: {error}") from None
    return {key: value.detach().clone().contiguous() for key, value in out.items() if isinstance(value, torch.Tensor)}


def _launcher_command(config: Path, work_dir: Path) -> list[str]:
    """``defect-train mmpretrain CONFIG --work-dir W [--resume]``: a teacher run cut off goes on from its last epoch."""
    from defect_plugins.runners.launcher import resumable_train_command

    return resumable_train_command("mmpretrain", config, work_dir)


def train_teacher(data: Path, out: Path, *, backbone: str = "resnet18", epochs: int = 30, image_size: int = 128,
                  batch_size: int = 32, lr: float = 0.05, seed: int = 0, train_ratio: float = 0.7,
                  classes: Sequence[str] | None = None, split_dir: Path | None = None,
                  work_dir: Path | None = None) -> dict[str, Any]:
    """Train, convert and write ``out`` (``.pth``) and its card ``out.with_suffix('.json')``; return the card."""
    import torch

    from defect_plugins.cls.datasets.split import SplitError, write_split
    from defect_plugins.fileio import atomic_path, atomic_write_json

    if backbone not in BACKBONES:
        raise TeacherError(f"backbone {backbone!r}: expected one of {sorted(BACKBONES)}")
    for name, value in (("epochs", epochs), ("image_size", image_size), ("batch_size", batch_size)):
        if value < 1:
            raise TeacherError(f"{name} must be at least 1, got {value}")
    if out.suffix != ".pth":
        raise TeacherError(f"--out {out}: expected a .pth file name (the card goes next to it as .json)")
    data = data.expanduser().resolve()
    work_dir = (work_dir or out.with_name(out.stem + "_work")).resolve()
    if split_dir is not None:
        classes, train_ann, test_ann = _read_split(split_dir.resolve(), classes)
        layout = "split files"
    else:
        classes = list(classes) if classes else _class_folders(data)
        try:
            paths = write_split(data, work_dir / "split", classes, train_ratio=train_ratio, seed=seed)
        except SplitError as error:
            raise TeacherError(str(error)) from None
        train_ann, test_ann, layout = paths["train"], paths["test"], "class folders"
    train_counts, test_counts = _count_lines(train_ann, len(classes)), _count_lines(test_ann, len(classes))
    config = write_config(work_dir / "teacher_config.py", backbone=backbone, classes=classes, data=data,
                          train_ann=train_ann, test_ann=test_ann, epochs=epochs, image_size=image_size,
                          batch_size=batch_size, lr=lr, seed=seed)
    train_dir = work_dir / "train"
    checkpoint = train_dir / f"epoch_{epochs}.pth"
    if checkpoint.is_file():  # finished earlier (e.g. cut off while converting): convert, do not train again
        print(f"[defect-teacher] {checkpoint} exists: training already finished", flush=True)
    else:
        command = _launcher_command(config, train_dir)
        print(f"[defect-teacher] {' '.join(command)}", flush=True)
        result = subprocess.run(command, check=False, preexec_fn=die_with_parent())
        if result.returncode != 0:
            raise TeacherError(f"mmpretrain training of {config} failed (exit {result.returncode}); "
                               f"log under {train_dir}")
    if not checkpoint.is_file():
        raise TeacherError(f"{checkpoint} not found after training")
    state = convert_checkpoint(checkpoint, backbone, len(classes))
    accuracy = read_accuracy(train_dir)
    card = {
        "format": f"torchvision/timm {backbone} state_dict (conv1, bn1, layer1-4, fc); "
                  "load into anomalib with defect_plugins.anomaly.callbacks.LoadTeacherWeights",
        "backbone": backbone,
        "classes": list(classes),
        "data": {"root": str(data), "layout": layout, "train_ann": str(train_ann), "test_ann": str(test_ann),
                 "train_per_class": {classes[i]: n for i, n in sorted(train_counts.items())},
                 "test_per_class": {classes[i]: n for i, n in sorted(test_counts.items())}},
        "epochs": epochs,
        "image_size": image_size,
        "recipe": {"optimizer": "SGD", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4, "batch_size": batch_size,
                   "schedule": "linear warm-up then cosine", "augmentation": "horizontal + vertical flips",
                   "normalisation": "ImageNet mean/std, RGB", "seed": seed},
        "accuracy": {"top1": accuracy, "on": f"held-out split ({sum(test_counts.values())} images), "
                                            "mmpretrain Accuracy after the last epoch"},
        "mmpretrain_config": str(config),
        "mmpretrain_checkpoint": str(checkpoint),
        "tensors": len(state),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    card["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    atomic_write_json(out.with_suffix(".json"), card, indent=2)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """Console command ``defect-teacher DATA --out teacher.pth [--backbone ...] [--epochs ...]``."""
    parser = argparse.ArgumentParser(
        prog="defect-teacher",
        description="Train a ResNet teacher on labelled defect images with mmpretrain's Runner (defect-train) and "
                    "write a torchvision/timm state dict plus a JSON card, for anomalib models offline.",
        epilog="Then: anomalib train ... --model.pre_trained false "
               "--trainer.callbacks+=defect_plugins.anomaly.callbacks.LoadTeacherWeights "
               "--trainer.callbacks.weights_path=OUT.pth")
    parser.add_argument("data", type=Path, help="folder with one sub-folder of images per class (NEU-CLS layout)")
    parser.add_argument("--out", type=Path, required=True, help="output .pth (the card goes next to it as .json)")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default="resnet18")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=128, help="training side in pixels (default 128)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-ratio", type=float, default=0.7, help="per-class share for training (default 0.7)")
    parser.add_argument("--classes", nargs="+", help="class folder names in label order (default: sorted folders)")
    parser.add_argument("--split-dir", type=Path,
                        help="use train.txt/test.txt (+ split.json for the classes) from defect-cls-split")
    parser.add_argument("--work-dir", type=Path, help="mmpretrain work folder (default: OUT's name + _work)")
    args = parser.parse_args(argv)
    try:
        card = train_teacher(args.data, args.out, backbone=args.backbone, epochs=args.epochs,
                             image_size=args.image_size, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             train_ratio=args.train_ratio, classes=args.classes, split_dir=args.split_dir,
                             work_dir=args.work_dir)
    except (TeacherError, OSError) as error:
        print(f"defect-teacher: error: {error}", file=sys.stderr)
        return 2
    print(f"[defect-teacher] {args.out} ({card['backbone']}, {len(card['classes'])} classes, "
          f"held-out top-1 {card['accuracy']['top1']:.3f}); card {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
