"""anomalib models, runtime side: adopt ``anomalib export`` IRs, post-process, re-threshold, draw.

Every IR of this family takes anomalib's RGB float ``[0, 1]`` NCHW input behind an OpenVINO
``PrePostProcessor`` step to this package's uint8 BGR NHWC contract (:func:`to_uint8_bgr`, with
:mod:`..preprocess`). The same step adopts an IR written by ``anomalib export --export_type
openvino`` at load time (:func:`adopt_anomalib_ir`), so anomalib users run their existing exports
through :class:`defect_plugins.deploy.DefectInferencer` unchanged; such an IR carries no metadata
of this package, and the defaults anomalib's post-processor implies are used (thresholds 0.5).
Loading checkpoints, conversion and the metric are the export half,
:mod:`defect_plugins.deploy.export.families.anomaly`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.geometry import heat_to_image
from defect_plugins.imaging.quantify import MaskReport, draw_regions, quantify_mask

from ..grading.grade import Measures, graded, measures_of
from ..grading.rules import RuleSet
from ..metadata import MetadataError, ModelMetadata
from ..result import InferenceResult
from .base import PostSettings, draw_caption, plan_caption, region_from_row, region_rows, reserved

NAME = "anomaly"
OPTIONAL_REGIONS = False  # the thresholded map's regions come with the score
CLASS_PRIORITY = 2  # good / defect is named last
RULE_MEASURES = frozenset({"regions", "area", "perimeter", "area_ratio", "k", "score", "defect"})
RULES_PER_CLASS = False  # good / defect only: the rules are the family's default list
OUTPUTS = ["pred_score", "pred_label", "anomaly_map", "pred_mask"]
# anomalib's PreProcessor resizes to 256 x 256 unless the model says otherwise (anomalib/pre_processing)
ANOMALIB_DEFAULT_SIZE = (256, 256)


def to_uint8_bgr(ov_model: Any, size: tuple[int, int] | None) -> Any:
    """anomalib's RGB float ``[0, 1]`` NCHW IR -> this package's uint8 BGR NHWC input.

    ``size``: fix height and width (a static export); ``None`` keeps what the IR has.
    """
    import openvino as ov

    from ..preprocess import uint8_bgr_input

    if size is not None:
        ov_model.reshape({ov_model.input(0): ov.PartialShape([-1, 3, int(size[0]), int(size[1])])})
    return uint8_bgr_input(ov_model, to_rgb=True, divide=255.0)


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


# --------------------------------------------------------------------------- results


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
    """The decision, regions and grade of an anomaly result at other thresholds, from its kept map (no inference).

    :func:`postprocess` ends here, and the station's threshold slider calls it directly, so both
    threshold the same way. Under the image threshold the part is good: no regions, the least
    severe grade; at or above it the map's regions above the pixel threshold are measured and the
    rules grade the image.
    """
    is_defect = result.score >= image_threshold
    report = (quantify_mask(result.anomaly_map >= pixel_threshold, min_area=settings.min_area)
              if is_defect else MaskReport())
    result = dataclasses.replace(result, decision="defect" if is_defect else "good", is_defect=is_defect,
                                 regions=region_rows(report.regions, NAME), image_threshold=float(image_threshold),
                                 pixel_threshold=float(pixel_threshold))
    return graded(result, settings.rules)


def rule_measures(result: InferenceResult, rules: RuleSet) -> list[tuple[str | None, Measures]]:
    """The family's default rules over the totals of the thresholded map's regions, the score and the decision."""
    return [(None, measures_of(result.regions, result.image.shape, rules, score=result.score or 0.0,
                               defect=1.0 if result.is_defect else 0.0))]


def overlay(result: InferenceResult) -> np.ndarray:
    """JET heatmap over the image, the pixel-threshold contour in white, regions boxed and numbered, score below."""
    import cv2

    image, heat = result.image, result.anomaly_map
    colour = cv2.applyColorMap((np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    picture = cv2.addWeighted(image, 0.55, colour, 0.45, 0)
    mask = (heat >= result.pixel_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, contours, -1, (255, 255, 255), 1)
    caption = plan_caption(image.shape, f"{result.decision} {result.score:.2f}/{result.image_threshold:.2f}",
                           bottom=True)
    picture = draw_regions(picture, MaskReport([region_from_row(row) for row in result.regions]),
                           reserved=reserved(caption))
    draw_caption(picture, caption, (0, 0, 255) if result.is_defect else (0, 255, 0))
    return picture


def row_fields(result: InferenceResult) -> dict[str, Any]:
    """The anomaly keys of a result row: the score and the two thresholds it was judged at."""
    return {"score": result.score, "image_threshold": result.image_threshold, "pixel_threshold": result.pixel_threshold}


def rule_classes(metadata: ModelMetadata) -> list[str]:
    """An anomaly model has no classes for a rule file to name (its rules are per family)."""
    return []
