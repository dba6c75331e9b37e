"""anomalib models: load, convert, adopt ``anomalib export`` IRs, evaluate, post-process, draw.

Loading is ``AnomalibModule.load_from_checkpoint`` with ``pre_trained=False`` (nothing is
downloaded; the checkpoint holds every weight). Conversion is anomalib's own exporter
(``AnomalibModule.to_openvino`` in ``anomalib/models/components/base/export_mixin``: ONNX ->
OpenVINO, the model's pre-processor (resize + ImageNet normalisation) and post-processor (score
and map normalisation so that the learned thresholds fall at 0.5) inside). Its input is RGB float
``[0, 1]`` NCHW, what anomalib's ``OpenVINOInferencer.pre_process`` feeds; an OpenVINO
``PrePostProcessor`` step (:mod:`..preprocess`) puts this package's uint8 BGR NHWC contract in front.

The same step adopts an IR written by ``anomalib export --export_type openvino`` at load time
(:func:`adopt_anomalib_ir`), so anomalib users run their existing exports through
:class:`defect_plugins.deploy.DefectInferencer` unchanged; such an IR carries no metadata of this
package, and the defaults anomalib's post-processor implies are used (thresholds 0.5).

INT8 keeps the scoring head in float (:func:`ignored_scope`): ``1 - cos`` of 8-bit features is
mostly quantization noise, and quantizing the whole graph gave every image the score 0 (image
AUROC 0.5) for AKF-RD and anomalib's ReverseDistillation here.
"""
from __future__ import annotations

import dataclasses

import functools
import importlib
import inspect
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry import heat_to_image
from ..metadata import MetadataError, ModelMetadata
from ..quantify import MaskReport, draw_regions, quantify_mask
from ..result import InferenceResult
from .base import ExportError, LoadedModel, PostSettings, check_file, put_text, region_from_row, region_rows

NAME = "anomaly"
DEFAULT_ANOMALIB_MODEL = "defect_plugins.anomaly.AkfReverseDistillation"
OUTPUTS = ["pred_score", "pred_label", "anomaly_map", "pred_mask"]
# anomalib's PreProcessor resizes to 256 x 256 unless the model says otherwise (anomalib/pre_processing)
ANOMALIB_DEFAULT_SIZE = (256, 256)

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


def to_uint8_bgr(ov_model: Any, size: tuple[int, int] | None) -> Any:
    """anomalib's RGB float ``[0, 1]`` NCHW IR -> this package's uint8 BGR NHWC input.

    ``size``: fix height and width (a static export); ``None`` keeps what the IR has.
    """
    import openvino as ov

    from ..preprocess import uint8_bgr_input

    if size is not None:
        ov_model.reshape({ov_model.input(0): ov.PartialShape([-1, 3, int(size[0]), int(size[1])])})
    return uint8_bgr_input(ov_model, to_rgb=True, divide=255.0)


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


# --------------------------------------------------------------------------- anomalib's own exports


def is_anomalib_ir(ov_model: Any) -> bool:
    """An ``anomalib export`` IR: one float ``(N, 3, H, W)`` input, outputs ``pred_score`` and ``anomaly_map``."""
    import openvino as ov

    if len(ov_model.inputs) != 1:
        return False
    port = ov_model.input(0)
    shape = port.get_partial_shape()
    names = {name for output in ov_model.outputs for name in output.get_names()}
    return (port.get_element_type() == ov.Type.f32 and shape.rank.is_static and shape.rank.get_length() == 4
            and shape[1].is_static and shape[1].get_length() == 3 and {"pred_score", "anomaly_map"} <= names)


def _weight_precision(ov_model: Any) -> str:
    import openvino as ov

    types = {op.get_type_name() for op in ov_model.get_ordered_ops()}
    if "FakeQuantize" in types or "FakeConvert" in types:
        return "INT8"
    constants = (op for op in ov_model.get_ordered_ops() if op.get_type_name() == "Constant")
    return "FP16" if any(op.get_output_element_type(0) == ov.Type.f16 for op in constants) else "FP32"


def _resize_target(ov_model: Any) -> tuple[int, int] | None:
    """The output size of the first ``Interpolate`` on three channels: anomalib's pre-processor resize."""
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "Interpolate":
            continue
        shape = op.get_output_partial_shape(0)
        if (shape.rank.is_static and shape.rank.get_length() == 4 and shape[1].is_static
                and shape[1].get_length() == 3 and shape[2].is_static and shape[3].is_static):
            return shape[2].get_length(), shape[3].get_length()
    return None


def adopt_anomalib_ir(ov_model: Any, path: str | Path) -> tuple[Any, ModelMetadata]:
    """An ``anomalib export --export_type openvino`` IR -> (uint8 BGR NHWC model, metadata).

    Input size: the IR's static height/width, else the size its pre-processor resizes to
    (``dynamic`` then: frames are fed at their own size and anomalib's graph resizes them).
    """
    if not is_anomalib_ir(ov_model):
        raise MetadataError(f"{path}: neither defect_plugins metadata nor an anomalib export "
                            f"(expected one float (N, 3, H, W) input and outputs pred_score, anomaly_map)")
    shape = ov_model.input(0).get_partial_shape()
    dynamic = shape[2].is_dynamic or shape[3].is_dynamic
    size = _resize_target(ov_model) if dynamic else (shape[2].get_length(), shape[3].get_length())
    outputs = [output.get_any_name() for output in ov_model.outputs]
    metadata = ModelMetadata(
        family=NAME, precision=_weight_precision(ov_model), input_size=size or ANOMALIB_DEFAULT_SIZE,
        dynamic=dynamic, class_names=["good", "defect"], outputs=outputs, thresholds={"image": 0.5, "pixel": 0.5},
        normalisation={"inside_graph": "anomalib pre-processor (as exported)",
                       "input_adapter": "uint8 BGR NHWC -> RGB float [0, 1] NCHW (OpenVINO PrePostProcessor, "
                                        "added at load time)"},
        source={"framework": "anomalib", "export": str(path), "format": "anomalib export --export_type openvino"})
    return to_uint8_bgr(ov_model, None), metadata


# --------------------------------------------------------------------------- runtime side


def evaluate(predict: Any, metadata: ModelMetadata, folder: str | Path, *, limit: int | None = None) -> Any:
    """Image AUROC on an MVTec AD layout folder (torchmetrics, as anomalib; see :func:`..int8.evaluate`)."""
    from ..int8 import evaluate as family_metric

    return family_metric(predict, metadata, folder, limit=limit)


def ignored_scope(ov_model: Any) -> Any:
    """NNCF ignored scope that keeps the scoring head in f32: its op types and the Gaussian-blur convolution.

    The blur is the only single-channel convolution (weights ``(1, 1, k, k)``) of the graph.
    """
    import nncf

    blur = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() == "Convolution" and op.input(1).get_partial_shape().is_static
            and list(op.input(1).get_partial_shape().to_shape())[:2] == [1, 1]]
    return nncf.IgnoredScope(names=blur, types=list(F32_OP_TYPES), validate=False)


def postprocess(image: np.ndarray, outputs: Sequence[np.ndarray], metadata: ModelMetadata, settings: PostSettings,
                source: str) -> InferenceResult:
    """Score against the image threshold; the map at the image's size, thresholded regions quantified."""
    names = metadata.outputs
    score = float(np.asarray(outputs[names.index("pred_score")]).reshape(-1)[0])
    anomaly_map = np.asarray(outputs[names.index("anomaly_map")], dtype=np.float32).squeeze()
    heat = heat_to_image(anomaly_map, image.shape[:2], metadata.resize)
    image_threshold = float(settings.image_threshold if settings.image_threshold is not None
                            else metadata.thresholds.get("image", 0.5))
    pixel_threshold = float(settings.pixel_threshold if settings.pixel_threshold is not None
                            else metadata.thresholds.get("pixel", 0.5))
    result = InferenceResult(source=source, family=NAME, decision="good", score=score, anomaly_map=heat, image=image)
    return rethreshold(result, image_threshold, pixel_threshold, settings)


def rethreshold(result: InferenceResult, image_threshold: float, pixel_threshold: float,
                settings: PostSettings) -> InferenceResult:
    """The decision and regions of an anomaly result at other thresholds, from its kept map (no inference).

    :func:`postprocess` ends here, and the station's threshold slider calls it directly, so both
    threshold the same way.
    """
    is_defect = result.score >= image_threshold
    report = (quantify_mask(result.anomaly_map >= pixel_threshold, min_area=settings.min_area, rule=settings.rule)
              if is_defect else MaskReport())
    return dataclasses.replace(result, decision="defect" if is_defect else "good",
                               regions=region_rows(report.regions, NAME), grade=report.worst_grade,
                               image_threshold=float(image_threshold), pixel_threshold=float(pixel_threshold))


def overlay(result: InferenceResult) -> np.ndarray:
    """JET heatmap over the image, the pixel-threshold contour in white, regions boxed, score at the bottom."""
    import cv2

    image, heat = result.image, result.anomaly_map
    colour = cv2.applyColorMap((np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    picture = cv2.addWeighted(image, 0.55, colour, 0.45, 0)
    mask = (heat >= result.pixel_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, contours, -1, (255, 255, 255), 1)
    picture = draw_regions(picture, MaskReport([region_from_row(row) for row in result.regions]))
    put_text(picture, f"{result.decision} {result.score:.2f}/{result.image_threshold:.2f}", (3, image.shape[0] - 4),
             (0, 0, 255) if result.is_defect else (0, 255, 0))
    return picture
