"""mmpretrain classifiers: load, convert, evaluate, post-process, draw.

Loading follows mmpretrain's ``apis/model.py`` (``get_model``: build from the config's ``model``
with its ``data_preprocessor``, then load the checkpoint with mmengine's loader). Distillation
configs (those naming a ``teacher_config``: RKD, MGJR) build only the student, a plain
``ImageClassifier`` from the config's ``backbone`` / ``neck`` / ``head`` / ``data_preprocessor``;
their training-only keys (``teacher.*``, ``projector.*``) are dropped and every other key must match.

Graph: backbone -> neck -> head -> softmax on float NCHW, converted with ``openvino.convert_model``;
what ``ClsDataPreprocessor`` does (BGR -> RGB when ``to_rgb``, ``(x - mean) / std`` on the 0-255
scale) is OpenVINO preprocessing (:mod:`..preprocess`). The same steps written in torch
(:func:`reference_module`) are the parity reference. Output ``probs`` ``(N, num_classes)``.

Post-processing grades the class as the RKD-SARSN paper's grade-evaluation system does (Huang et al.,
Algorithms 16(11):516, 2023, section 3.2, Fig. 20): the network names the class, then the paper's
segmentation chain (:mod:`..paper_segmentation`: bilateral filter, grey-histogram stretch, Otsu,
opening + closing) finds the defect inside the image at the image's own resolution, and each region
and the image as a whole are measured (:mod:`..quantify`: area, perimeter, centroid, area ratio, K).
"""
from __future__ import annotations

import copy
import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..paper_segmentation import PaperSegmentation, segment_defects
from ..quantify import MaskReport, draw_regions, quantify_mask
from ..result import InferenceResult
from .base import ExportError, LoadedModel, PostSettings, caption_height, check_file, checkpoint_classes, \
    convert_network, put_text, region_from_row, region_rows

NAME = "classifier"
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
    from ..preprocess import uint8_bgr_input

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


# --------------------------------------------------------------------------- runtime side


def evaluate(predict: Any, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None) -> Any:
    """Top-1 accuracy on ``folder/<class name>/*`` (mmpretrain's ``Accuracy``; see :func:`..int8.evaluate`)."""
    from ..int8 import evaluate as family_metric

    return family_metric(predict, metadata, folder, limit=limit)


def ignored_scope(ov_model: Any) -> None:
    """Classifiers quantize whole (NNCF's defaults keep the softmax in float)."""
    return None


# The paper's chain with the project's defaults (those of the neu_cls paper-augmentation config).
SEGMENTATION = PaperSegmentation()


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """``probs`` -> top class, confidence, the decision against ``min_confidence``; the paper's regions of the class.

    The regions (labelled with the top class, graded by ``settings.rule``) are those of the paper's
    cleaned Otsu mask, measured at the image's resolution; ``extra["otsu_threshold"]`` is the grey
    level Otsu chose on the stretched image.
    """
    probs = np.asarray(outputs[0]).reshape(-1)
    index = int(probs.argmax())
    confidence = float(probs[index])
    names = metadata.class_names
    name = names[index] if index < len(names) else str(index)
    accepted = confidence >= float(metadata.thresholds.get("min_confidence", 0.0))
    result = InferenceResult(source=source, family=NAME, decision=name if accepted else "uncertain", label=name,
                             confidence=confidence, probabilities={n: float(p) for n, p in zip(names, probs)},
                             class_names=list(names), image=image)
    if settings.quantify:
        views = segment_defects(image, SEGMENTATION)
        report = quantify_mask(views.mask, min_area=settings.min_area, rule=settings.rule)
        result.defect_mask, result.regions, result.grade = views.mask, region_rows(report.regions, name), report.worst_grade
        result.extra["otsu_threshold"] = views.threshold
    return result


def overlay(result: InferenceResult) -> np.ndarray:
    """The image with the paper's defect regions in red boxes (Fig. 20), class and confidence on top.

    The caption is green when the class is accepted, orange when uncertain. Otsu regions are many
    and small, so they carry no text of their own (the geometry is in ``regions``).
    """
    picture = draw_regions(result.image, MaskReport([region_from_row(row) for row in result.regions]), labels=False)
    colour = (0, 165, 255) if result.decision == "uncertain" else (0, 255, 0)
    put_text(picture, f"{result.label} {result.confidence:.2f}", (3, caption_height(picture)), colour)
    return picture
