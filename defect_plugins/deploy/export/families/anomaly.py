"""anomalib models, export side: load, convert, ignored scope, and the metric (image AUROC).

Loading is ``AnomalibModule.load_from_checkpoint`` with ``pre_trained=False`` (nothing is
downloaded; the checkpoint holds every weight). Conversion is anomalib's own exporter
(``AnomalibModule.to_openvino`` in ``anomalib/models/components/base/export_mixin``: ONNX ->
OpenVINO, the model's pre-processor (resize + ImageNet normalisation) and post-processor (score
and map normalisation so that the learned thresholds fall at 0.5) inside). Its input is RGB float
``[0, 1]`` NCHW, what anomalib's ``OpenVINOInferencer.pre_process`` feeds; an OpenVINO
``PrePostProcessor`` step puts this package's uint8 BGR NHWC contract in front
(:func:`defect_plugins.deploy.families.anomaly.to_uint8_bgr`, which also adopts ``anomalib export``
IRs at load time: the runtime half).

INT8 keeps the scoring head in float (:func:`ignored_scope`): ``1 - cos`` of 8-bit features is
mostly quantization noise, and quantizing the whole graph gave every image the score 0 (image
AUROC 0.5) for AKF-RD and anomalib's ReverseDistillation here.

Metric (:func:`measure`, the one the INT8 guard, the demo and the benchmark use), on the MVTec AD
layout ``DIR/test/good`` (normal) and ``DIR/test/<defect>`` (or the same without ``test/``): image
AUROC of ``pred_score`` (torchmetrics' ``binary_auroc``, the metric anomalib's ``AUROC`` wraps),
the guard's criterion. With figures: the decisions at the model's image threshold and, when
``DIR/ground_truth`` exists, the pixel AUROC of ``anomaly_map`` against
``ground_truth/<defect>/<stem>_mask.png`` at the model's resolution.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import list_images

from ...families.anomaly import ANOMALIB_DEFAULT_SIZE, NAME, OUTPUTS, to_uint8_bgr
from ...metadata import ModelMetadata
from ...runtime import Predict
from .base import (Evaluation, ExportError, LabelledSet, LoadedModel, check_file, check_folder, read_inputs, sample,
                   selected)

DEFAULT_ANOMALIB_MODEL = "defect_plugins.anomaly.AkfReverseDistillation"

# Op types of the scoring head / post-processing that stay in f32 under INT8.
F32_OP_TYPES = ("Multiply", "Divide", "ReduceL2", "ReduceSum", "ReduceMax", "Interpolate", "Subtract", "Clamp",
                "Maximum", "Minimum", "Sqrt", "Power", "Softmax")


# --------------------------------------------------------------------------- torch side


def _import_class(path: str) -> type:
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ExportError(f"anomalib model must be a dotted class path, got {path!r}")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ExportError(f"cannot import anomalib model class {path!r}: {error}") from error


@functools.cache
def _reference_class() -> type:
    """The torch reference (defined on first use, so that this file imports without torch)."""
    import torch
    from torch import nn

    class Reference(nn.Module):
        """uint8 BGR NHWC -> anomalib module forward on RGB float [0, 1] NCHW."""

        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

        def forward(self, images: torch.Tensor):
            out = self.module(images.flip(-1).permute(0, 3, 1, 2).float() / 255.0)
            return out.pred_score, out.pred_label, out.anomaly_map, out.pred_mask

    return Reference


def reference_module(lightning: Any) -> Any:
    """uint8 BGR ``(N, H, W, 3)`` -> score, label, map, mask with the input conversion in torch."""
    return _reference_class()(lightning).eval()


def load(*, checkpoint: str | Path | None, input_size: tuple[int, int] | None = None,
         anomalib_model: str = DEFAULT_ANOMALIB_MODEL, **_: Any) -> LoadedModel:
    """anomalib Lightning checkpoint -> :class:`.base.LoadedModel` (uint8 BGR -> score, label, map, mask)."""
    checkpoint = check_file(checkpoint, "checkpoint")
    cls = _import_class(anomalib_model)
    overrides = {k: v for k, v in (("pre_trained", False), ("teacher_weights", None))
                 if k in inspect.signature(cls.__init__).parameters}
    try:
        lightning = cls.load_from_checkpoint(str(checkpoint), map_location="cpu", weights_only=False, **overrides)
    except TypeError:
        lightning = cls.load_from_checkpoint(str(checkpoint), map_location="cpu", **overrides)
    return from_module(lightning, input_size=input_size,
                       source={"framework": "anomalib", "checkpoint": str(checkpoint), "model": anomalib_model})


def from_module(lightning: Any, *, input_size: tuple[int, int] | None = None,  # noqa: ANN401
                source: dict[str, str] | None = None) -> LoadedModel:
    """A trained anomalib module in memory -> :class:`.base.LoadedModel` (what :func:`load` gives from a file).

    For tools that export right after ``Engine.fit`` without a checkpoint round trip.
    """
    import torch

    lightning.eval()
    if input_size is None:
        hp_size = lightning.hparams.get("image_size") if hasattr(lightning, "hparams") else None
        input_size = tuple(int(v) for v in hp_size) if hp_size else ANOMALIB_DEFAULT_SIZE
    post = getattr(lightning, "post_processor", None)
    raw = {}
    for key in ("image_threshold", "pixel_threshold"):
        value = getattr(post, key, None)
        if value is not None:
            raw[f"raw_{key}"] = float(torch.as_tensor(value).reshape(-1)[0])
    metadata = ModelMetadata(
        family=NAME, precision="FP32", input_size=input_size, class_names=["good", "defect"], outputs=list(OUTPUTS),
        # anomalib's exported post-processor normalises scores and maps so that the learned
        # image/pixel thresholds fall at 0.5.
        thresholds={"image": 0.5, "pixel": 0.5, **raw},
        normalisation={"inside_graph": "anomalib pre-processor (resize + ImageNet mean/std on RGB [0, 1])",
                       "input_adapter": "uint8 BGR NHWC -> RGB float [0, 1] NCHW (OpenVINO PrePostProcessor)"},
        source=source or {"framework": "anomalib", "model": f"{type(lightning).__module__}.{type(lightning).__name__}"})

    def convert(dynamic: bool):
        import openvino as ov

        with tempfile.TemporaryDirectory(prefix="anomalib-export-") as tmp:
            # opset 18 is what torch's dynamo exporter writes: anomalib's default 14 makes it down-convert,
            # which fails on Resize/Reduce axes and prints a traceback before falling back to 18 anyway
            xml = lightning.to_openvino(export_root=tmp, input_size=None if dynamic else tuple(input_size),
                                        onnx_kwargs={"opset_version": 18})
            ov_model = to_uint8_bgr(ov.Core().read_model(str(xml)), None if dynamic else tuple(input_size))
            return ov_model.clone()  # materialise the weights before the temporary folder goes away

    return LoadedModel(reference_module(lightning), metadata, convert)


def ignored_scope(ov_model: Any) -> Any:
    """NNCF ignored scope that keeps the scoring head in f32: its op types and the Gaussian-blur convolution.

    The blur is the only single-channel convolution (weights ``(1, 1, k, k)``) of the graph.
    """
    import nncf

    blur = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() == "Convolution" and op.input(1).get_partial_shape().is_static
            and list(op.input(1).get_partial_shape().to_shape())[:2] == [1, 1]]
    return nncf.IgnoredScope(names=blur, types=list(F32_OP_TYPES), validate=False)


# --------------------------------------------------------------------------- metric


def _items(root: Path) -> list[tuple[Path, int]]:
    test = root / "test" if (root / "test").is_dir() else root
    if not (test / "good").is_dir():
        raise FileNotFoundError(f"{root}: expected test/good/ and test/<defect>/ (MVTec AD layout)")
    items = [(path, 0) for path in list_images(test / "good")]
    for folder in sorted(p for p in test.iterdir() if p.is_dir() and p.name != "good"):
        items.extend((path, 1) for path in list_images(folder))
    if len({label for _, label in items}) < 2:
        raise FileNotFoundError(f"{test}: need both good and defect images for AUROC")
    return items


def _mask(root: Path, image: Path) -> np.ndarray:
    """The MVTec AD mask of a defect image, ``ground_truth/<defect>/<stem>_mask.png``, as stored (grey)."""
    import cv2

    path = root / "ground_truth" / image.parent.name / f"{image.stem}_mask.png"
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise FileNotFoundError(f"{path}: mask of {image} missing or unreadable")
    return mask


def read_labelled(metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None, split: str | None = None,
                  figures: bool = True) -> LabelledSet:
    """The MVTec AD layout under ``folder`` at the export size; targets 0 (good) / 1 (defect).

    With figures and a ``ground_truth`` folder, every defect image's mask is read too (a missing
    one raises ``FileNotFoundError`` naming it); good images have none. Unreadable images are
    skipped and counted.
    """
    if split is not None:
        raise ValueError(f"{NAME}: split={split!r} is for the mmseg layout; give the category folder itself")
    root = check_folder(folder)
    inputs, kept, skipped = read_inputs(root, sample(_items(root), limit), metadata)
    masks = figures and (root / "ground_truth").is_dir()
    references = [_mask(root, path) if label else None for path, label in kept] if masks else []
    return LabelledSet(root, inputs, [label for _, label in kept], skipped, references, with_figures=figures)


def measure(predict: Predict, metadata: ModelMetadata, data: LabelledSet, *,
            indices: Sequence[int] | None = None) -> Evaluation:
    """Image AUROC of ``predict`` on ``data`` (its ``indices`` only, if given); with figures, decisions and pixel AUROC.

    An image AUROC over images of one kind only is undefined: ``nan`` (NNCF probes
    ``validation_fn`` on a single image to learn what it returns).
    """
    import torch
    from torchmetrics.functional.classification import binary_auroc

    chosen = selected(indices, len(data.inputs))
    names = metadata.outputs
    index = names.index("pred_score") if "pred_score" in names else 0
    outputs = [predict(data.inputs[i]) for i in chosen]
    labels = [int(data.targets[i]) for i in chosen]
    scores = [float(np.asarray(out[index]).reshape(-1)[0]) for out in outputs]
    auroc = (float(binary_auroc(torch.as_tensor(scores), torch.as_tensor(labels))) if len(set(labels)) > 1
             else math.nan)
    figures: dict[str, Any] = {}
    if data.with_figures:
        decisions = np.asarray(scores) >= float(metadata.thresholds.get("image", 0.5))
        truth = np.asarray(labels, dtype=bool)
        figures = {"image_auroc": auroc}
        if data.references:
            figures["pixel_auroc"] = _pixel_auroc(outputs, [data.references[i] for i in chosen],
                                                  names.index("anomaly_map"))
        figures.update({"images": len(labels), "good_images": int((~truth).sum()), "defect_images": int(truth.sum()),
                        "good_called_defect": int((decisions & ~truth).sum()),
                        "defect_called_good": int((~decisions & truth).sum()),
                        "resolution": list(metadata.input_size)})
    return Evaluation("image_auroc", auroc, len(chosen), data.skipped, figures)


def _pixel_auroc(outputs: Sequence[Sequence[np.ndarray]], masks: Sequence[np.ndarray | None], index: int) -> float:
    """AUROC of every map pixel against its mask (resized nearest to the map; > 127 is defect; no mask: all good)."""
    import cv2
    import torch
    from torchmetrics.functional.classification import binary_auroc

    pixel_scores, pixel_labels = [], []
    for out, raw in zip(outputs, masks):
        amap = np.asarray(out[index], dtype=np.float32).squeeze()
        mask = (np.zeros(amap.shape, np.uint8) if raw is None
                else cv2.resize(raw, (amap.shape[1], amap.shape[0]), interpolation=cv2.INTER_NEAREST))
        pixel_scores.append(amap.reshape(-1))
        pixel_labels.append((mask.reshape(-1) > 127).astype(np.int64))
    return float(binary_auroc(torch.from_numpy(np.concatenate(pixel_scores)),
                              torch.from_numpy(np.concatenate(pixel_labels))))
