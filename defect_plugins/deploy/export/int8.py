"""INT8 with NNCF, and the metric that decides whether to keep it: plain PTQ first, accuracy control second.

Every export of this package takes ``uint8`` BGR images with preprocessing inside the graph, so a
calibration item is simply an image read by ``cv2.imread`` and resized to the export size.

:func:`quantize_with_guard` measures the family's metric on a labelled folder for the FP32 model
and for each INT8 candidate, all with OpenVINO at ``INFERENCE_PRECISION_HINT="f32"`` (so the
comparison isolates the INT8 weights/activations, not bf16 arithmetic), and keeps a candidate only
if the metric drops by at most ``tolerance`` (absolute, on a 0-1 scale):

1. ``"ptq"``: ``nncf.quantize`` (NNCF post-training quantization: min-max range estimation over
   the calibration set, then fast bias correction);
2. ``"accuracy_control"``, only when the PTQ model lost more than ``tolerance``:
   ``nncf.quantize_with_accuracy_control`` with ``max_drop=tolerance`` (absolute ``DropType``),
   the same calibration set, the labelled folder as validation set and the family's metric as
   ``validation_fn``. NNCF quantizes again, then reverts the quantizer groups that cost the most
   (ranked by the metric with each group reverted) to float, one group per iteration, until the
   metric is back within ``max_drop`` (NNCF docs, "Quantization with accuracy
   control"; ``nncf/quantization/quantize_model.py``).

If both lose more than ``tolerance``, :class:`QuantizationToleranceError` is raised and nothing is
written, unless ``force`` (then the candidate with the smaller drop is kept and the report says
``forced``). Accuracy control that had to revert every weighted layer has produced the FP32 model
again; it counts as a failure, not as an INT8 model. Both attempts start from the family's ignored
scope (:func:`starting_ignored_scope`: anomaly models keep their scoring head in float). The report
(stored in the exported metadata: rt_info and sidecar) names the ``path`` taken and counts the
weighted layers that stayed in float (:func:`count_float_layers`).

The metric is the family's own (``read_labelled`` and ``measure`` of
:mod:`.families`, the same code that gives the demo's held-out figures and the benchmark's
metric): top-1 accuracy (classifier), mIoU over the classes present (segmentor), image AUROC
(anomaly); the labelled layouts are in those modules' docstrings. The folder is read once and
every candidate is measured on the same inputs.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import IMAGE_SUFFIXES, ImageReadError, list_images, read_bgr
from defect_plugins.imaging.geometry import to_input

from ..metadata import ModelMetadata
from ..runtime import compiled_predict, openvino_predict
from .families import LabelledSet, get_export_family
from .families.base import sample

# Ops with weights: what "a layer" is when the report counts layers left in float.
WEIGHTED_OP_TYPES = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData",
                     "MatMul")
# Ops NNCF puts between an 8-bit weight constant (or a weight FakeQuantize) and the layer.
_WEIGHT_PATH_OP_TYPES = ("Convert", "Subtract", "Multiply", "Reshape", "Transpose", "Unsqueeze", "Squeeze")


class QuantizationToleranceError(RuntimeError):
    """INT8 lost more than the allowed tolerance of the metric; nothing was written."""


# --------------------------------------------------------------------------- quantization


def calibration_items(folder: str | Path, size: tuple[int, int], *, limit: int = 300, seed: int = 0,
                      resize: str = "stretch") -> list[np.ndarray]:
    """uint8 ``(1, H, W, 3)`` BGR inputs from every readable image under ``folder`` (at most ``limit``)."""
    paths = sample([(path,) for path in list_images(folder)], limit, seed)
    items = []
    for (path,) in paths:
        try:
            items.append(to_input(read_bgr(path), size, resize))
        except ImageReadError as error:
            warnings.warn(f"calibration: skipped {error}", stacklevel=2)
    if not items:
        raise FileNotFoundError(f"calibration folder {folder} holds no readable image ({', '.join(IMAGE_SUFFIXES)})")
    return items


def starting_ignored_scope(metadata: ModelMetadata, ov_model: Any) -> Any:
    """The ``nncf.IgnoredScope`` both quantization attempts start from: the family's own (``None``: none).

    Anomaly models keep their scoring head in float (:func:`.families.anomaly.ignored_scope`).
    """
    return get_export_family(metadata.family).ignored_scope(ov_model)


def quantize(ov_model: Any, items: Sequence[np.ndarray], *, fast_bias_correction: bool = True,
             ignored_scope: Any = None) -> Any:
    """``nncf.quantize`` of an FP32 ``ov.Model`` on uint8 calibration inputs (returns a new model)."""
    import nncf

    kwargs = {"ignored_scope": ignored_scope} if ignored_scope is not None else {}
    return nncf.quantize(ov_model.clone(), nncf.Dataset(list(items)), subset_size=len(items),
                         fast_bias_correction=fast_bias_correction, **kwargs)


def quantize_accuracy_control(ov_model: Any, items: Sequence[np.ndarray], metadata: ModelMetadata,
                              data: LabelledSet, *, max_drop: float, ignored_scope: Any = None,
                              fast_bias_correction: bool = True, max_iterations: int | None = None) -> Any:
    """``nncf.quantize_with_accuracy_control`` of an FP32 ``ov.Model`` with the family's metric as ``validation_fn``.

    Follows NNCF's API (``nncf.quantize_with_accuracy_control(model, calibration_dataset,
    validation_dataset, validation_fn, max_drop=..., drop_type=DropType.ABSOLUTE, ...)``):
    ``validation_fn(compiled_model, items)`` gets an ``ov.CompiledModel`` (NNCF compiles it at f32)
    and an iterable of validation items and returns the metric, higher is better. Validation items
    are indices into ``data``, so images are read once.

    Returning only the metric puts NNCF in its metric mode: each quantizer group is ranked by the
    metric of the model with that group reverted, measured on a ranking subset. The subset is the
    whole validation set here (``ranking_subset_size``): AUROC and mIoU are not defined on an
    arbitrary handful of images (one kind of image only). NNCF's other mode, ranking by how much
    the outputs change, reverted the least useful groups first in our check (NNCF 3.4: it pops
    the group with the largest output error after reverting it). ``max_iterations`` bounds how
    many groups may be reverted (NNCF's ``AdvancedAccuracyRestorerParameters.max_num_iterations``;
    ``None``: every group if needed). Returns the model NNCF ends with, whether or not it reached
    ``max_drop``: the caller measures it.
    """
    import nncf

    if max_iterations is not None and max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1 or None, got {max_iterations}")

    measure = get_export_family(metadata.family).measure

    def validation_fn(compiled: Any, indices: Iterable[int]) -> float:
        return measure(compiled_predict(compiled), metadata, data, indices=list(indices)).value

    restorer = nncf.AdvancedAccuracyRestorerParameters(ranking_subset_size=len(data.inputs))
    if max_iterations is not None:
        restorer.max_num_iterations = int(max_iterations)
    kwargs = {"ignored_scope": ignored_scope} if ignored_scope is not None else {}
    return nncf.quantize_with_accuracy_control(
        ov_model.clone(),
        calibration_dataset=nncf.Dataset(list(items)),
        validation_dataset=nncf.Dataset(list(range(len(data.inputs))), lambda index: data.inputs[index]),
        validation_fn=validation_fn,
        max_drop=float(max_drop),
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(items),
        fast_bias_correction=fast_bias_correction,
        advanced_accuracy_restorer_parameters=restorer,
        **kwargs,
    )


def _weight_is_int8(op: Any, port: int) -> bool | None:
    """Whether input ``port`` of ``op`` is an 8-bit weight; ``None`` when it is not a weight (an activation).

    A weight is an input computed from constants only, through the ops NNCF writes on a weight path
    (:data:`_WEIGHT_PATH_OP_TYPES`, ``FakeQuantize``). It is 8-bit when that path holds an
    ``i8``/``u8`` constant (NNCF's compressed weights) or a ``FakeQuantize`` (uncompressed ones).
    """
    frontier, quantized = [op.input_value(port).get_node()], False
    for _ in range(8):  # NNCF's weight paths are a few ops long
        following = []
        for node in frontier:
            kind = node.get_type_name()
            if kind == "Constant":
                quantized |= node.get_output_element_type(0).get_type_name() in ("i8", "u8")
            elif kind == "FakeQuantize":
                quantized = True
                following.append(node.input_value(0).get_node())  # its data input; the rest are its ranges
            elif kind in _WEIGHT_PATH_OP_TYPES:
                following.extend(value.get_node() for value in node.input_values())
            else:
                return None  # reaches a computed tensor: an activation
        if not following:
            return quantized
        frontier = following
    return None


def count_float_layers(ov_model: Any) -> dict[str, Any]:
    """Weighted layers (:data:`WEIGHTED_OP_TYPES` with a constant weight) by precision after quantization.

    A layer is INT8 when its weight comes from an 8-bit constant (NNCF's compressed weights) or a
    ``FakeQuantize``; otherwise it stayed in float (ignored scope, or reverted by accuracy control).
    Returns ``{"int8_layers": n, "float_layers": m, "float_layer_names": [...]}``.
    """
    int8, floating = 0, []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() not in WEIGHTED_OP_TYPES:
            continue
        states = [_weight_is_int8(op, port) for port in range(op.get_input_size())]
        weights = [state for state in states if state is not None]
        if not weights:
            continue  # e.g. a MatMul of two activations: no weight to quantize
        if any(weights):
            int8 += 1
        else:
            floating.append(op.get_friendly_name())
    return {"int8_layers": int8, "float_layers": len(floating), "float_layer_names": floating}


def quantize_with_guard(ov_model: Any, metadata: ModelMetadata, calib_dir: str | Path,
                        eval_dir: str | Path | None = None, *, tolerance: float = 0.01, force: bool = False,
                        subset_size: int = 300, eval_limit: int | None = None,
                        accuracy_control: bool = True, max_iterations: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Quantize (PTQ, then accuracy control if needed), measure the metric at f32, refuse a drop above ``tolerance``.

    Returns the INT8 ``ov.Model`` and a report (stored in the exported metadata): the metric of
    FP32 and of the kept model, the ``path`` taken (``"ptq"`` or ``"accuracy_control"``), every
    attempt with its metric, drop and seconds, and the weighted layers left in float. Raises
    :class:`QuantizationToleranceError` (nothing is returned, so nothing is written) when every
    attempt lost more than ``tolerance`` and not ``force``. ``accuracy_control=False`` stops after
    PTQ; ``max_iterations`` bounds the groups accuracy control may revert.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    items = calibration_items(calib_dir, tuple(metadata.input_size), limit=subset_size, resize=metadata.resize)
    ignored = starting_ignored_scope(metadata, ov_model)
    eval_dir = Path(eval_dir or calib_dir)
    family = get_export_family(metadata.family)
    data = family.read_labelled(metadata, eval_dir, limit=eval_limit, figures=False)
    before = family.measure(openvino_predict(ov_model), metadata, data)

    attempts: list[dict[str, Any]] = []
    models: dict[str, Any] = {}

    def attempt(path: str, make: Callable[[], Any]) -> float:
        started = time.perf_counter()
        model = make()
        seconds = time.perf_counter() - started
        after = family.measure(openvino_predict(model), metadata, data)
        models[path] = model
        attempts.append({"path": path, "int8": after.value, "drop": before.value - after.value,
                         "seconds": seconds, **count_float_layers(model)})
        return before.value - after.value

    drop = attempt("ptq", lambda: quantize(ov_model, items, ignored_scope=ignored))
    if drop > tolerance and accuracy_control:
        attempt("accuracy_control", lambda: quantize_accuracy_control(
            ov_model, items, metadata, data, max_drop=tolerance, ignored_scope=ignored,
            max_iterations=max_iterations))
    # An attempt that kept no weighted layer in INT8 is the FP32 model under another name (accuracy
    # control ends there when every group had to be reverted): it never counts as an INT8 result.
    int8_at_all = [a for a in attempts if a["int8_layers"] > 0] or attempts
    accepted = [a for a in int8_at_all if a["drop"] <= tolerance]
    # The first attempt within tolerance (PTQ keeps the most layers INT8); forced: the smallest drop.
    kept = accepted[0] if accepted else min(int8_at_all, key=lambda a: a["drop"])
    report = {"metric": before.name, "fp32": before.value, "int8": kept["int8"], "drop": kept["drop"],
              "tolerance": tolerance, "forced": not accepted and force, "path": kept["path"],
              "int8_layers": kept["int8_layers"], "float_layers": kept["float_layers"],
              "float_layer_names": kept["float_layer_names"], "attempts": attempts,
              "calibration_images": len(items), "f32_scoring_head": ignored is not None,
              "calibration_dir": str(calib_dir), "eval_dir": str(eval_dir),
              "eval_images": before.num_images, "eval_skipped": before.skipped,
              "measured_with": "OpenVINO CPU, INFERENCE_PRECISION_HINT=f32"}
    if not accepted and not force:
        tried = "; ".join(f"{a['path']}: {a['int8']:.4f} (drop {a['drop']:.4f}, {a['int8_layers']} layers INT8, "
                          f"{a['float_layers']} in float)" for a in attempts)
        raise QuantizationToleranceError(
            f"INT8 {before.name} on {eval_dir}: FP32 {before.value:.4f}; {tried}; no attempt stayed within tolerance "
            f"{tolerance:.4f} with a layer left in INT8. Nothing was written. Use more or more representative "
            f"calibration images, raise --tolerance, or pass --force to keep the smallest drop anyway.")
    return models[kept["path"]], report
