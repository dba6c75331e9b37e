"""mmpretrain classifiers, export side: load, convert, ignored scope, and the metric (top-1 accuracy).

Loading follows mmpretrain's ``apis/model.py`` (``get_model``: build from the config's ``model``
with its ``data_preprocessor``, then load the checkpoint with mmengine's loader). Distillation
configs (those naming a ``teacher_config``: RKD, MGJR) build only the student, a plain
``ImageClassifier`` from the config's ``backbone`` / ``neck`` / ``head`` / ``data_preprocessor``;
their training-only keys (``teacher.*``, ``projector.*``) are dropped and every other key must match.

Graph: backbone -> neck -> head -> softmax on float NCHW, converted with ``openvino.convert_model``;
what ``ClsDataPreprocessor`` does (BGR -> RGB when ``to_rgb``, ``(x - mean) / std`` on the 0-255
scale) is OpenVINO preprocessing (:mod:`defect_plugins.deploy.preprocess`). The same steps written
in torch (:func:`reference_module`) are the parity reference. Output ``probs`` ``(N, num_classes)``.

Metric (:func:`measure`, the one the INT8 guard, the demo and the benchmark use): on
``DIR/<class name>/*`` (sub-folders matched case-insensitively), top-1 accuracy with mmpretrain's
``Accuracy.calculate`` (float32 inside: ``accuracy`` is the guard's criterion, as every INT8
report so far stored it) and, with figures, the exact fraction ``top1`` with per-class recall and
the confusion matrix from the same predictions. The post-processing (class, confidence, the
paper's regions) is the runtime half, :mod:`defect_plugins.deploy.families.classifier`.
"""
from __future__ import annotations

import copy
import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import list_images

from ...families.classifier import NAME
from ...metadata import ModelMetadata
from ...runtime import Predict
from .base import (Evaluation, ExportError, LabelledSet, LoadedModel, check_file, check_folder, checkpoint_classes,
                   convert_network, read_inputs, sample, selected)

OUTPUTS = ["probs"]

# Parts of an mmpretrain ImageClassifier config; a distillation config (RKD, MGJR) adds a teacher
# and training-only modules around them, which an exported student does not need.
STUDENT_KEYS = ("backbone", "neck", "head", "data_preprocessor", "train_cfg")
TRAINING_ONLY_PREFIXES = ("teacher.", "projector.")


# --------------------------------------------------------------------------- torch side


def student_model_config(model_cfg: dict) -> dict:
    """The plain ``ImageClassifier`` config of a classifier config (a distillation config's student)."""
    cfg = {key: copy.deepcopy(value) for key, value in model_cfg.items() if key in STUDENT_KEYS}
    cfg["type"] = "ImageClassifier"
    return cfg


def load_network(config: str | os.PathLike, checkpoint: str | os.PathLike) -> tuple[Any, Any]:
    """Build the classifier of an mmpretrain config (a distillation config's student) and load a checkpoint.

    Returns ``(model in eval mode, mmengine Config)``.
    """
    import defect_plugins.cls  # noqa: F401  (registers the plugin components, applies the compat fixes)
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpretrain.registry import MODELS

    config = check_file(config, "config")
    checkpoint = check_file(checkpoint, "checkpoint")
    cfg = Config.fromfile(str(config))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get("data_preprocessor") is not None:
        model_cfg.setdefault("data_preprocessor", copy.deepcopy(cfg.data_preprocessor))
    if "teacher_config" in model_cfg:
        model_cfg = student_model_config(model_cfg)
    # the scope must be mmpretrain's even after an mmseg model was built in this process
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        model = MODELS.build(model_cfg)
    # mmengine's loader (made torch>=2.6-safe by defect_plugins.compat), not a bare torch.load
    state = _load_checkpoint(str(checkpoint), map_location="cpu")
    state = state.get("state_dict", state)
    state = {key: value for key, value in state.items() if not key.startswith(TRAINING_ONLY_PREFIXES)}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ExportError(f"checkpoint {checkpoint} does not fit the model of {config}: missing "
                          f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    model.eval()
    return model, cfg


def config_classes(cfg: Any) -> list[str] | None:
    """Class names from the test (else train) dataset's ``metainfo`` or, failing that, its type's ``METAINFO``."""
    for loader in ("test_dataloader", "train_dataloader"):
        dataset = (cfg.get(loader) or {}).get("dataset") or {}
        classes = (dataset.get("metainfo") or {}).get("classes")
        if not classes and isinstance(dataset.get("type"), str):
            from mmpretrain.registry import DATASETS

            dataset_cls = DATASETS.get(dataset["type"])
            classes = getattr(dataset_cls, "METAINFO", {}).get("classes") if dataset_cls is not None else None
        if classes:
            return [str(c) for c in classes]
    return None


def preprocessing(classifier: Any) -> dict[str, Any]:
    """``to_rgb``, ``mean``, ``std`` (0-255 scale, or None when the preprocessor does not normalise)."""
    pre = classifier.data_preprocessor
    mean, std = getattr(pre, "mean", None), getattr(pre, "std", None)
    normalise = bool(getattr(pre, "_enable_normalize", mean is not None))
    return {"to_rgb": bool(getattr(pre, "to_rgb", False)),
            "mean": mean.detach().float().flatten().tolist() if normalise and mean is not None else None,
            "std": std.detach().float().flatten().tolist() if normalise and std is not None else None}


@functools.cache
def _module_classes() -> tuple[type, type]:
    """The two torch modules (defined on first use, so that this file imports without torch)."""
    import torch
    from torch import nn

    class Network(nn.Module):
        """Float NCHW, already normalised -> softmax probabilities (the converted graph)."""

        def __init__(self, classifier: nn.Module) -> None:
            super().__init__()
            self.backbone = classifier.backbone
            self.neck = classifier.neck if getattr(classifier, "with_neck", False) else None
            self.head = classifier.head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feats = self.backbone(x)
            if self.neck is not None:
                feats = self.neck(feats)
            return self.head(feats).softmax(dim=1)

    class Reference(nn.Module):
        """uint8 BGR NHWC -> probabilities with the preprocessing in torch (the parity reference)."""

        def __init__(self, classifier: nn.Module) -> None:
            super().__init__()
            self.network = Network(classifier)
            steps = preprocessing(classifier)
            self.to_rgb = steps["to_rgb"]
            self.normalise = steps["mean"] is not None
            self.register_buffer("mean", torch.tensor(steps["mean"] or [0.0] * 3).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(steps["std"] or [1.0] * 3).view(1, -1, 1, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.permute(0, 3, 1, 2).float()
            if self.to_rgb:
                x = x.flip(1)
            if self.normalise:
                x = (x - self.mean) / self.std
            return self.network(x)

    return Network, Reference


def reference_module(classifier: Any) -> Any:
    """uint8 BGR ``(N, H, W, 3)`` -> softmax probabilities, preprocessing in torch."""
    return _module_classes()[1](classifier).eval()


def convert(classifier: Any, size: tuple[int, int], dynamic: bool) -> Any:
    """The FP32 ``ov.Model``: the network converted on float NCHW, the preprocessing as OpenVINO steps."""
    from ...preprocess import uint8_bgr_input

    network = _module_classes()[0](classifier).eval()
    steps = preprocessing(classifier)
    return uint8_bgr_input(convert_network(network, size, dynamic, OUTPUTS), to_rgb=steps["to_rgb"],
                           mean=steps["mean"], std=steps["std"])


def load(*, config: str | Path | None, checkpoint: str | Path | None, input_size: tuple[int, int] | None = None,
         class_names: Sequence[str] | None = None, **_: Any) -> LoadedModel:
    """mmpretrain config + checkpoint -> :class:`.base.LoadedModel` (uint8 BGR -> ``probs``)."""
    checkpoint = check_file(checkpoint, "checkpoint")
    config = check_file(config, "config")
    classifier, cfg = load_network(config, checkpoint)
    if input_size is None:
        size = int(cfg.get("img_size", 224))
        input_size = (size, size)
    names = list(class_names or checkpoint_classes(checkpoint) or config_classes(cfg) or [])
    num_classes = int(getattr(classifier.head, "num_classes", len(names) or 0))
    if names and len(names) != num_classes:
        raise ExportError(f"{len(names)} class names given but the head of {config} has {num_classes} classes")
    steps = preprocessing(classifier)
    metadata = ModelMetadata(
        family=NAME, precision="FP32", input_size=input_size,
        class_names=names or [f"class_{i}" for i in range(num_classes)], outputs=list(OUTPUTS),
        thresholds={"min_confidence": 0.0},
        normalisation={"to_rgb": steps["to_rgb"], "mean": steps["mean"], "std": steps["std"], "scale": "0-255",
                       "inside_graph": "OpenVINO PrePostProcessor"},
        source={"framework": "mmpretrain", "config": str(config), "checkpoint": str(checkpoint),
                "model": type(classifier).__name__})
    return LoadedModel(reference_module(classifier), metadata,
                       lambda dynamic: convert(classifier, metadata.input_size, dynamic))


def ignored_scope(ov_model: Any) -> None:
    """Classifiers quantize whole (NNCF's defaults keep the softmax in float)."""
    return None


# --------------------------------------------------------------------------- metric


def _items(root: Path, class_names: Sequence[str]) -> list[tuple[Path, int]]:
    folders = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    items = []
    for index, name in enumerate(class_names):
        folder = folders.get(str(name).lower())
        if folder is not None:
            items.extend((path, index) for path in list_images(folder))
    if not items:
        raise FileNotFoundError(f"{root}: expected one sub-folder per class named like {list(class_names)}")
    return items


def read_labelled(metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None, split: str | None = None,
                  figures: bool = True) -> LabelledSet:
    """``folder/<class name>/*`` at the export size, at most ``limit`` images; unreadable images skipped and counted."""
    if split is not None:
        raise ValueError(f"{NAME}: split={split!r} is for the mmseg layout; give the split's folder itself")
    root = check_folder(folder)
    inputs, kept, skipped = read_inputs(root, sample(_items(root, metadata.class_names), limit), metadata)
    return LabelledSet(root, inputs, [index for _, index in kept], skipped, with_figures=figures)


def measure(predict: Predict, metadata: ModelMetadata, data: LabelledSet, *,
            indices: Sequence[int] | None = None) -> Evaluation:
    """Top-1 accuracy of ``predict`` on ``data`` (its ``indices`` only, if given); with figures, recall and confusion.

    ``value`` is mmpretrain's ``Accuracy.calculate`` / 100; ``figures["top1"]`` is hits / images in
    float64 from the same predictions (the two differ below 1e-7: float32 inside mmpretrain).
    """
    import torch
    from mmpretrain.evaluation import Accuracy

    chosen = selected(indices, len(data.inputs))
    outputs = [predict(data.inputs[i]) for i in chosen]
    targets = [data.targets[i] for i in chosen]
    scores = torch.as_tensor(np.stack([np.asarray(out[0])[0] for out in outputs]))
    accuracy = float(Accuracy.calculate(scores, torch.as_tensor(targets), topk=(1,))[0][0]) / 100.0
    figures: dict[str, Any] = {}
    if data.with_figures:
        names = list(metadata.class_names)
        hits = np.zeros(len(names), np.int64)
        counts = np.zeros(len(names), np.int64)
        confusion = np.zeros((len(names), len(names)), np.int64)
        for out, label in zip(outputs, targets):
            guess = int(np.asarray(out[0]).reshape(-1).argmax())
            confusion[label, guess] += 1
            counts[label] += 1
            hits[label] += int(guess == label)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            recall = hits / counts
        figures = {"top1": float(hits.sum() / counts.sum()), "images": int(counts.sum()),
                   "recall": {n: (None if np.isnan(r) else float(r)) for n, r in zip(names, recall)},
                   "confusion": confusion.tolist()}
    return Evaluation("accuracy", accuracy, len(chosen), data.skipped, figures)
