"""One export for every model family: mmpretrain / mmseg config + checkpoint, or an anomalib checkpoint.

Writes ``OUT.xml`` / ``OUT.bin`` / ``OUT.meta.json``: an OpenVINO IR that takes ``uint8`` BGR images
``(N, H, W, 3)`` (what ``cv2.imread`` returns) with all preprocessing inside the graph, at a static
(``input_size``, batch free) or dynamic input size, with FP32, FP16 (compressed weights) or INT8
(NNCF post-training quantization, refused when the metric drops more than ``tolerance``) weights.
Metadata (family, class names, input size, thresholds, normalisation, precision, quantization
report) is stored in the IR's rt_info and in the sidecar JSON (:mod:`defect_plugins.deploy.metadata`,
:func:`defect_plugins.deploy.runtime.save_ir`).

What differs between families is in :mod:`.families` (``load`` gives the torch reference, the
metadata and the converter); the input contract is OpenVINO preprocessing
(:mod:`defect_plugins.deploy.preprocess`):

* classifier: backbone/neck/head + softmax converted with ``openvino.convert_model``,
  mmpretrain's ``ClsDataPreprocessor`` steps as ``PrePostProcessor`` steps;
* segmentor: ``mmseg.apis.init_model``, the whole inference path (ARCD reconstructor included)
  converted likewise, ``SegDataPreProcessor``'s steps as ``PrePostProcessor`` steps;
* anomaly: anomalib's own export (``AnomalibModule.to_openvino``: ONNX -> OpenVINO, pre- and
  post-processor inside), then a ``PrePostProcessor`` step from uint8 BGR NHWC to its RGB float
  ``[0, 1]`` NCHW input.

:func:`parity` compares an IR (at f32) with the torch reference of the same loaded model. The
command line over these is :mod:`.cli` (``defect-export``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from defect_plugins.compat import apply_all

from ..metadata import FAMILIES, WEIGHT_PRECISIONS, ModelMetadata
from ..runtime import openvino_predict, save_ir
from .families import ExportError, LoadedModel, get_export_family
from .families.anomaly import DEFAULT_ANOMALIB_MODEL

# Exporting loads mmengine checkpoints and builds toolkit models: the compatibility fixes first.
apply_all()

__all__ = ["DEFAULT_ANOMALIB_MODEL", "ExportError", "LoadedModel", "export_model", "load_model", "parity"]


# --------------------------------------------------------------------------- public API


def load_model(family: str, *, config: str | Path | None = None, checkpoint: str | Path | None = None,
               input_size: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
               anomalib_model: str = DEFAULT_ANOMALIB_MODEL) -> LoadedModel:
    """Load the PyTorch model of any family with the package's uint8 BGR input contract."""
    if family not in FAMILIES:
        raise ExportError(f"family must be one of {FAMILIES}, got {family!r}")
    size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
    return get_export_family(family).load(config=config, checkpoint=checkpoint, input_size=size,
                                          class_names=class_names, anomalib_model=anomalib_model)


def export_model(family: str, out_xml: str | Path, *, config: str | Path | None = None,
                 checkpoint: str | Path | None = None, precision: str = "FP32",
                 input_size: Sequence[int] | None = None, dynamic: bool = False,
                 class_names: Sequence[str] | None = None, anomalib_model: str = DEFAULT_ANOMALIB_MODEL,
                 calib_dir: str | Path | None = None, eval_dir: str | Path | None = None,
                 tolerance: float = 0.01, force: bool = False, subset_size: int = 300,
                 eval_limit: int | None = None, loaded: LoadedModel | None = None) -> tuple[Path, ModelMetadata]:
    """Export a trained model to ``out_xml`` (+ ``.bin``, ``.meta.json``); return the path and metadata.

    INT8 needs ``calib_dir`` (any images of the deployment domain) and measures the family's
    metric (the family's ``measure``, :mod:`.evaluation`) on ``eval_dir`` (default: ``calib_dir``, which must then be
    labelled) for FP32 and INT8; a drop above ``tolerance`` raises
    :class:`.int8.QuantizationToleranceError` and writes nothing, unless ``force``.
    ``loaded`` reuses an already loaded model (the benchmark exports FP32 and INT8 from one load).
    """
    from .int8 import quantize_with_guard

    if precision not in WEIGHT_PRECISIONS:
        raise ExportError(f"precision must be one of {WEIGHT_PRECISIONS}, got {precision!r}")
    if precision == "INT8" and calib_dir is None:
        raise ExportError("INT8 export needs a calibration folder (--calib-dir)")
    if calib_dir is not None and not Path(calib_dir).is_dir():
        raise ExportError(f"calibration folder {calib_dir} not found")
    out_xml = Path(out_xml)
    if out_xml.suffix != ".xml":
        raise ExportError(f"--out must be a path ending in .xml, got {out_xml}")
    loaded = loaded or load_model(family, config=config, checkpoint=checkpoint, input_size=input_size,
                                  class_names=class_names, anomalib_model=anomalib_model)
    metadata = ModelMetadata.from_dict({**loaded.metadata.to_dict(), "precision": precision, "dynamic": bool(dynamic)})
    ov_model = loaded.convert(bool(dynamic))
    if precision == "INT8":
        ov_model, report = quantize_with_guard(ov_model, metadata, calib_dir, eval_dir, tolerance=tolerance,
                                               force=force, subset_size=subset_size, eval_limit=eval_limit)
        metadata.quantization = report
    save_ir(ov_model, out_xml, metadata, compress_to_fp16=precision == "FP16")
    return out_xml, metadata


def parity(loaded: LoadedModel, model_xml: str | Path, batch: np.ndarray) -> dict[str, float]:
    """Max |OpenVINO - PyTorch| per float output on ``batch`` (uint8 BGR NHWC), OpenVINO at f32."""
    ov_outputs = openvino_predict(model_xml, "f32")(np.ascontiguousarray(batch, dtype=np.uint8))
    torch_outputs = loaded.torch_outputs(batch)
    return {name: float(np.abs(o.astype(np.float64) - t.astype(np.float64)).max())
            for name, o, t in zip(loaded.metadata.outputs, ov_outputs, torch_outputs) if t.dtype != bool}
