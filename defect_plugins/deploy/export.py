"""One export for every model family: mmpretrain / mmseg config + checkpoint, or an anomalib checkpoint.

Writes ``OUT.xml`` / ``OUT.bin`` / ``OUT.meta.json``: an OpenVINO IR that takes ``uint8`` BGR images
``(N, H, W, 3)`` (what ``cv2.imread`` returns) with all preprocessing inside the graph, at a static
(``input_size``, batch free) or dynamic input size, with FP32, FP16 (compressed weights) or INT8
(NNCF post-training quantization, refused when the metric drops more than ``tolerance``) weights.
Metadata (family, class names, input size, thresholds, normalisation, precision, quantization
report) is stored in the IR's rt_info and in the sidecar JSON (:mod:`.metadata`, :func:`.runtime.save_ir`).

What differs between families is in :mod:`.families` (``load`` gives the torch reference, the
metadata and the converter); the input contract is OpenVINO preprocessing (:mod:`.preprocess`):

* classifier: backbone/neck/head + softmax converted with ``openvino.convert_model``,
  mmpretrain's ``ClsDataPreprocessor`` steps as ``PrePostProcessor`` steps;
* segmentor: ``mmseg.apis.init_model``, the whole inference path (ARCD reconstructor included)
  converted likewise, ``SegDataPreProcessor``'s steps as ``PrePostProcessor`` steps;
* anomaly: anomalib's own export (``AnomalibModule.to_openvino``: ONNX -> OpenVINO, pre- and
  post-processor inside), then a ``PrePostProcessor`` step from uint8 BGR NHWC to its RGB float
  ``[0, 1]`` NCHW input.

:func:`parity` compares an IR (at f32) with the torch reference of the same loaded model.

Command line (``defect-export``)::

    python -m defect_plugins.deploy.export classifier --config C.py --checkpoint E.pth --out exp/cls.xml
    python -m defect_plugins.deploy.export segmentor --config C.py --checkpoint E.pth --out exp/seg.xml --input-size 200 200
    python -m defect_plugins.deploy.export anomaly --checkpoint model.ckpt --out exp/akf.xml \\
        --precision INT8 --calib-dir DATA/train/good --eval-dir DATA --tolerance 0.02
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from defect_plugins.compat import apply_all

from .families import ExportError, LoadedModel, get_family
from .families.anomaly import DEFAULT_ANOMALIB_MODEL
from .metadata import FAMILIES, WEIGHT_PRECISIONS, ModelMetadata
from .runtime import save_ir

# Exporting loads mmengine checkpoints and builds toolkit models: the compatibility fixes first.
apply_all()

__all__ = ["DEFAULT_ANOMALIB_MODEL", "ExportError", "LoadedModel", "export_model", "load_model", "main", "parity"]


# --------------------------------------------------------------------------- public API


def load_model(family: str, *, config: str | Path | None = None, checkpoint: str | Path | None = None,
               input_size: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
               anomalib_model: str = DEFAULT_ANOMALIB_MODEL) -> LoadedModel:
    """Load the PyTorch model of any family with the package's uint8 BGR input contract."""
    if family not in FAMILIES:
        raise ExportError(f"family must be one of {FAMILIES}, got {family!r}")
    size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
    return get_family(family).load(config=config, checkpoint=checkpoint, input_size=size, class_names=class_names,
                                   anomalib_model=anomalib_model)


def export_model(family: str, out_xml: str | Path, *, config: str | Path | None = None,
                 checkpoint: str | Path | None = None, precision: str = "FP32",
                 input_size: Sequence[int] | None = None, dynamic: bool = False,
                 class_names: Sequence[str] | None = None, anomalib_model: str = DEFAULT_ANOMALIB_MODEL,
                 calib_dir: str | Path | None = None, eval_dir: str | Path | None = None,
                 tolerance: float = 0.01, force: bool = False, subset_size: int = 300,
                 eval_limit: int | None = None, loaded: LoadedModel | None = None) -> tuple[Path, ModelMetadata]:
    """Export a trained model to ``out_xml`` (+ ``.bin``, ``.meta.json``); return the path and metadata.

    INT8 needs ``calib_dir`` (any images of the deployment domain) and measures the family's
    metric (:func:`.int8.evaluate`) on ``eval_dir`` (default: ``calib_dir``, which must then be
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
    from .int8 import openvino_predict

    ov_outputs = openvino_predict(model_xml, "f32")(np.ascontiguousarray(batch, dtype=np.uint8))
    torch_outputs = loaded.torch_outputs(batch)
    return {name: float(np.abs(o.astype(np.float64) - t.astype(np.float64)).max())
            for name, o, t in zip(loaded.metadata.outputs, ov_outputs, torch_outputs) if t.dtype != bool}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defect-export", description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("--config", help="mmpretrain / mmseg config (not for anomaly)")
    parser.add_argument("--checkpoint", required=True, help=".pth (OpenMMLab) or .ckpt (anomalib)")
    parser.add_argument("--out", required=True, type=Path, help="output model path ending in .xml")
    parser.add_argument("--precision", choices=WEIGHT_PRECISIONS, default="FP32")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--dynamic", action="store_true", help="dynamic height/width (default: static)")
    parser.add_argument("--class-names", nargs="+")
    parser.add_argument("--anomalib-model", default=DEFAULT_ANOMALIB_MODEL, help="class path of the anomalib model")
    parser.add_argument("--calib-dir", type=Path, help="INT8: calibration images")
    parser.add_argument("--eval-dir", type=Path, help="INT8: labelled folder for the metric (default: --calib-dir)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="INT8: largest allowed metric drop (0-1 scale)")
    parser.add_argument("--force", action="store_true", help="INT8: keep the model even if the drop is too large")
    parser.add_argument("--subset-size", type=int, default=300, help="INT8: calibration images used at most")
    parser.add_argument("--eval-limit", type=int, help="INT8: evaluate on at most this many images")
    parser.add_argument("--parity", type=int, default=2, help="check f32 parity with PyTorch on N images (0: off)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .int8 import QuantizationToleranceError
    from .runtime import ImageReadError, list_images, read_bgr, to_input

    args = build_parser().parse_args(argv)
    try:
        loaded = load_model(args.family, config=args.config, checkpoint=args.checkpoint, input_size=args.input_size,
                            class_names=args.class_names, anomalib_model=args.anomalib_model)
        xml, metadata = export_model(
            args.family, args.out, precision=args.precision, dynamic=args.dynamic, calib_dir=args.calib_dir,
            eval_dir=args.eval_dir, tolerance=args.tolerance, force=args.force, subset_size=args.subset_size,
            eval_limit=args.eval_limit, loaded=loaded)
    except (ExportError, QuantizationToleranceError, FileNotFoundError, ValueError) as error:
        print(f"defect-export: error: {error}", file=sys.stderr)
        return 1
    print(f"exported {xml} ({metadata.family}, {metadata.precision}, input {metadata.input_size}, "
          f"{'dynamic' if metadata.dynamic else 'static'})")
    if metadata.quantization:
        q = metadata.quantization
        print(f"INT8 {q['metric']}: FP32 {q['fp32']:.4f} -> INT8 {q['int8']:.4f} (drop {q['drop']:.4f}, "
              f"tolerance {q['tolerance']}{', FORCED' if q['forced'] else ''})")
    if args.parity > 0:
        folder = args.eval_dir or args.calib_dir
        images = []
        for path in (list_images(folder) if folder else [])[: args.parity]:
            try:
                images.append(to_input(read_bgr(path), metadata.input_size, metadata.resize))
            except ImageReadError:
                continue
        if not images:
            rng = np.random.default_rng(0)
            images = [rng.integers(0, 256, (1, *metadata.input_size, 3), dtype=np.uint8) for _ in range(args.parity)]
        diffs = [parity(loaded, xml, image) for image in images]
        worst = {name: max(d[name] for d in diffs) for name in diffs[0]}
        print(f"parity OpenVINO ({metadata.precision} weights, INFERENCE_PRECISION_HINT=f32) vs PyTorch, "
              f"{len(images)} images: max |diff| {worst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
