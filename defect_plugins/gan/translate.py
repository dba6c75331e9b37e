"""Translate a labelled image folder with a trained CycleGAN generator (RKD-SARSN section 2.1).

The migrated set keeps the input's layout (class sub-folders, file names and suffixes), so it
can be read by mmpretrain's ``CustomDataset`` like the original. Each image is resized to the
size the CycleGAN was trained at, translated, and written atomically (:mod:`defect_plugins.fileio`);
a file that does not decode is reported and skipped, and the others are still translated.
``OUT/migration.json`` records the checkpoint, the direction and the skipped files.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from mmengine.config import Config

from defect_plugins.fileio import atomic_path, atomic_write_json
from defect_plugins.gan.datasets.unpaired import ImageFolderError, list_images, read_image
from defect_plugins.gan.models import DIRECTIONS, CycleGAN, to_uint8, to_unit_range

META_NAME = "migration.json"


class TranslationError(RuntimeError):
    """A translation request that cannot be carried out; the message names the path."""


@dataclass
class TranslationReport:
    """What :func:`translate_folder` did."""

    out_dir: Path
    translated: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)


def load_cyclegan(checkpoint: str | Path, config: str | Path | None = None) -> tuple[CycleGAN, int]:
    """The CycleGAN of an mmengine checkpoint and its training image size.

    The config is the one the Runner stored in the checkpoint (``meta['cfg']``) unless ``config`` is given.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpretrain.registry import MODELS

    import defect_plugins.gan  # noqa: F401  (registers the model; applies the checkpoint-loading fix)

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise TranslationError(f"checkpoint {checkpoint} not found")
    try:
        state = _load_checkpoint(str(checkpoint), map_location="cpu")
    except Exception as error:  # a truncated or foreign file: say which one
        raise TranslationError(f"cannot load checkpoint {checkpoint}: {error}") from error
    if not isinstance(state, dict) or "state_dict" not in state:
        raise TranslationError(f"{checkpoint} is not an mmengine training checkpoint (no state_dict)")
    if config is not None:
        cfg = Config.fromfile(str(config))
    elif state.get("meta", {}).get("cfg"):
        cfg = Config.fromstring(state["meta"]["cfg"], file_format=".py")
    else:
        raise TranslationError(f"{checkpoint} holds no training config: pass --config")
    if cfg.model.get("type") not in ("CycleGAN", "mmpretrain.CycleGAN"):
        raise TranslationError(f"{checkpoint}: model type {cfg.model.get('type')!r} is not a CycleGAN")
    model = MODELS.build(cfg.model)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as error:
        raise TranslationError(f"{checkpoint} does not fit its config's CycleGAN: {error}") from error
    return model.eval(), int(cfg.train_dataloader.dataset.get("img_size", 64))


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir``; refuse one that exists and is not empty (nothing is ever overwritten)."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TranslationError(f"output folder {out} exists and is not empty: choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    return out


@torch.no_grad()
def translate_folder(model: CycleGAN, img_size: int, input_dir: str | Path, out_dir: str | Path, *,
                     direction: str = "a2b", keep_input_size: bool = False, checkpoint: str | Path | None = None,
                     warn: Callable[[str], None] | None = None) -> TranslationReport:
    """Translate every image under ``input_dir`` into the same relative path under ``out_dir``.

    Images are translated at ``img_size`` (the training size) and written at that size, or at their
    own size with ``keep_input_size``. ``warn`` receives one line per unreadable file (default: stderr).
    """
    if direction not in DIRECTIONS:
        raise TranslationError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    input_dir = Path(input_dir)
    try:
        files = list_images(input_dir)
    except ImageFolderError as error:
        raise TranslationError(str(error)) from None
    out = prepare_out_dir(out_dir)
    report = TranslationReport(out_dir=out)
    generator = model.generators[direction]
    for path in files:
        image = read_image(path)
        if image is None:
            report.unreadable.append(path)
            warn(f"cannot read {path} as an image: skipped")
            continue
        small = cv2.resize(image, (img_size, img_size), interpolation=cv2.INTER_AREA)
        batch = to_unit_range(torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None])
        result = to_uint8(generator(batch))[0].permute(1, 2, 0).numpy()
        if keep_input_size and result.shape[:2] != image.shape[:2]:
            result = cv2.resize(result, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_CUBIC)
        target = out / path.relative_to(input_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            if not cv2.imwrite(str(tmp), result):
                raise OSError(f"cv2.imwrite could not write {target}")
        report.translated.append(target)
    atomic_write_json(out / META_NAME, {
        "checkpoint": str(checkpoint) if checkpoint else None, "direction": direction, "img_size": img_size,
        "keep_input_size": keep_input_size, "input": str(input_dir), "translated": len(report.translated),
        "unreadable": [str(p) for p in report.unreadable],
    }, indent=2)
    return report
