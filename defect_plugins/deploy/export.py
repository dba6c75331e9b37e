"""One export for every model family: mmpretrain / mmseg config + checkpoint, or an anomalib checkpoint.

Writes ``OUT.xml`` / ``OUT.bin`` / ``OUT.meta.json``: an OpenVINO IR that takes ``uint8`` BGR images
``(N, H, W, 3)`` (what ``cv2.imread`` returns) with all preprocessing inside the graph, at a static
(``input_size``, batch free) or dynamic input size, with FP32, FP16 (compressed weights) or INT8
(NNCF post-training quantization, refused when the metric drops more than ``tolerance``) weights.
Metadata (family, class names, input size, thresholds, normalisation, precision, quantization
report) is stored in the IR's rt_info and in the sidecar JSON (:mod:`.metadata`).

The per-family work is done by the family modules and upstream exporters:

* classifier: :func:`.classifier_openvino.load_classifier` and its ``PreprocessedClassifier``
  (mmpretrain ``ClsDataPreProcessor`` steps + backbone/neck/head + softmax), then
  ``openvino.convert_model``;
* segmentor: ``mmseg.apis.init_model`` and :class:`.segmentor_openvino.SegmentorExportWrapper`
  behind a uint8 NHWC adapter, then ``openvino.convert_model``;
* anomaly: anomalib's own export (``AnomalibModule.to_openvino``: ONNX -> OpenVINO, pre- and
  post-processor inside), then an OpenVINO ``PrePostProcessor`` step that makes its RGB float
  ``[0, 1]`` NCHW input accept uint8 BGR NHWC like the other families.

Command line (``defect-export``)::

    python -m defect_plugins.deploy.export classifier --config C.py --checkpoint E.pth --out exp/cls.xml
    python -m defect_plugins.deploy.export segmentor --config C.py --checkpoint E.pth --out exp/seg.xml --input-size 200 200
    python -m defect_plugins.deploy.export anomaly --checkpoint model.ckpt --out exp/akf.xml \\
        --precision INT8 --calib-dir DATA/train/good --eval-dir DATA --tolerance 0.02
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .metadata import FAMILIES, WEIGHT_PRECISIONS, ModelMetadata
from .runtime import save_ir

DEFAULT_ANOMALIB_MODEL = "defect_plugins.anomaly.AkfReverseDistillation"


class ExportError(RuntimeError):
    """The model cannot be exported as asked (bad arguments, missing files)."""


@dataclass
class LoadedModel:
    """A PyTorch module with this package's input contract, ready to convert.

    ``module`` maps a uint8 BGR ``(N, H, W, 3)`` tensor to the outputs named in ``metadata.outputs``
    (a tensor or a tuple); it is also the PyTorch eager reference for parity and benchmarks.
    ``convert`` turns it into an FP32 ``ov.Model`` (static or dynamic).
    """

    module: nn.Module
    metadata: ModelMetadata
    converter: Any = field(repr=False)
    _converted: dict = field(default_factory=dict, repr=False)

    def convert(self, dynamic: bool):
        """The FP32 ``ov.Model`` (converted once per static/dynamic choice, then copied)."""
        if dynamic not in self._converted:
            self._converted[dynamic] = self.converter(dynamic)
        return self._converted[dynamic].clone()

    def torch_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            result = self.module(torch.from_numpy(np.ascontiguousarray(batch)))
        result = result if isinstance(result, (tuple, list)) else (result,)
        return [r.detach().float().numpy() if r.dtype != torch.bool else r.numpy() for r in result]


def _check_file(path: str | Path | None, what: str) -> Path:
    if path is None:
        raise ExportError(f"{what} is required")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{what} {path} not found")
    return path


def _input_shape(size: tuple[int, int], dynamic: bool):
    import openvino as ov

    return ov.PartialShape([-1, -1, -1, 3]) if dynamic else ov.PartialShape([-1, size[0], size[1], 3])


def _convert_uint8(module: nn.Module, size: tuple[int, int], dynamic: bool, names: Sequence[str]):
    import openvino as ov

    example = torch.randint(0, 256, (1, size[0], size[1], 3), dtype=torch.uint8)
    with torch.no_grad():
        ov_model = ov.convert_model(module, example_input=example, input=[(_input_shape(size, dynamic), ov.Type.u8)])
    for output, name in zip(ov_model.outputs, names):
        output.get_tensor().set_names({name})
    ov_model.input(0).get_tensor().set_names({"image"})
    return ov_model


def _checkpoint_classes(checkpoint: Path) -> list[str] | None:
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    meta = state.get("meta", {}) if isinstance(state, dict) else {}
    classes = (meta.get("dataset_meta") or {}).get("classes") or meta.get("CLASSES")
    return [str(c) for c in classes] if classes else None


# --------------------------------------------------------------------------- classifier


def load_classifier_model(config: str | Path, checkpoint: str | Path, input_size: tuple[int, int] | None = None,
                          class_names: Sequence[str] | None = None) -> LoadedModel:
    """mmpretrain config + checkpoint -> :class:`LoadedModel` (uint8 BGR -> ``probs``)."""
    from .classifier_openvino import PreprocessedClassifier, load_classifier

    from mmengine.registry import DefaultScope

    checkpoint = _check_file(checkpoint, "checkpoint")
    config = _check_file(config, "config")
    # the scope must be mmpretrain's even after an mmseg model was built in this process
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        classifier, cfg = load_classifier(str(config), str(checkpoint))
    module = PreprocessedClassifier(classifier).eval()
    if input_size is None:
        size = int(cfg.get("img_size", 224))
        input_size = (size, size)
    names = list(class_names or _checkpoint_classes(checkpoint) or _config_classes(cfg) or [])
    num_classes = int(getattr(classifier.head, "num_classes", len(names) or 0))
    if names and len(names) != num_classes:
        raise ExportError(f"{len(names)} class names given but the head has {num_classes} classes")
    metadata = ModelMetadata(
        family="classifier", precision="FP32", input_size=input_size,
        class_names=names or [f"class_{i}" for i in range(num_classes)], outputs=["probs"],
        thresholds={"min_confidence": 0.0},
        normalisation={"to_rgb": module.to_rgb, "mean": module.mean.flatten().tolist(),
                       "std": module.std.flatten().tolist(), "scale": "0-255"},
        source={"framework": "mmpretrain", "config": str(config), "checkpoint": str(checkpoint),
                "model": type(classifier).__name__})
    return LoadedModel(module, metadata, lambda dynamic: _convert_uint8(module, metadata.input_size, dynamic, ["probs"]))


def _config_classes(cfg) -> list[str] | None:
    try:
        dataset = cfg.train_dataloader.dataset
    except AttributeError:
        return None
    classes = (dataset.get("metainfo") or {}).get("classes")
    if classes:
        return [str(c) for c in classes]
    try:
        from mmpretrain.registry import DATASETS

        dataset_cls = DATASETS.get(dataset.get("type"))
        classes = getattr(dataset_cls, "METAINFO", {}).get("classes")
    except (KeyError, TypeError):
        classes = None
    return [str(c) for c in classes] if classes else None


# --------------------------------------------------------------------------- segmentor


class _Uint8NHWCToBGRFloat(nn.Module):
    """uint8 BGR NHWC -> float BGR NCHW on the 0-255 scale (what SegmentorExportWrapper expects)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images: torch.Tensor):
        return self.inner(images.permute(0, 3, 1, 2).float())


def _segmentor_geometry(cfg) -> tuple[str, int | None]:
    """``("pad_square", scale)`` when the config's test pipeline uses ``PadSquareResize``, else ``("stretch", None)``."""
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return "stretch", None
    for step in pipeline:
        if step.get("type") == "PadSquareResize":
            return "pad_square", int(step["scale"])
    return "stretch", None


def load_segmentor_model(config: str | Path, checkpoint: str | Path, input_size: tuple[int, int] | None = None,
                         class_names: Sequence[str] | None = None) -> LoadedModel:
    """mmseg config + checkpoint -> :class:`LoadedModel` (uint8 BGR -> ``seg_probs`` [, ``region_probs``])."""
    from mmseg.apis import init_model

    import defect_plugins.seg  # noqa: F401  (registers ARCD components)

    from .segmentor_openvino import SegmentorExportWrapper

    from mmengine.registry import DefaultScope

    checkpoint = _check_file(checkpoint, "checkpoint")
    config = _check_file(config, "config")
    with DefaultScope.overwrite_default_scope("mmseg"):
        segmentor = init_model(str(config), str(checkpoint), device="cpu")
    wrapper = SegmentorExportWrapper(segmentor).eval()
    module = _Uint8NHWCToBGRFloat(wrapper).eval()
    resize, scale = _segmentor_geometry(getattr(segmentor, "cfg", None))
    input_size = input_size or ((scale, scale) if scale else None)
    if input_size is None:
        raise ExportError("segmentor export needs --input-size H W (the resolution the model was trained at)")
    outputs = ["seg_probs", "region_probs"] if wrapper.has_region else ["seg_probs"]
    names = list(class_names or (getattr(segmentor, "dataset_meta", None) or {}).get("classes") or [])
    num_classes = int(segmentor.decode_head.num_classes)
    if len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)] if not class_names else names
    if len(names) != num_classes:
        raise ExportError(f"{len(names)} class names given but the decode head has {num_classes} classes")
    metadata = ModelMetadata(
        family="segmentor", precision="FP32", input_size=input_size, class_names=[str(n) for n in names],
        outputs=outputs, thresholds={}, resize=resize, region_classes=["outside", "machine_bed"] if wrapper.has_region else [],
        normalisation={"bgr_to_rgb": wrapper.swap, "mean": wrapper.mean.flatten().tolist(),
                       "std": wrapper.std.flatten().tolist(), "scale": "0-255"},
        source={"framework": "mmsegmentation", "config": str(config), "checkpoint": str(checkpoint),
                "model": type(segmentor).__name__})
    return LoadedModel(module, metadata, lambda dynamic: _convert_uint8(module, metadata.input_size, dynamic, outputs))


# --------------------------------------------------------------------------- anomaly


class _AnomalibUint8(nn.Module):
    """uint8 BGR NHWC -> anomalib module forward on RGB float [0, 1] NCHW (PyTorch reference)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, images: torch.Tensor):
        x = images.flip(-1).permute(0, 3, 1, 2).float() / 255.0
        out = self.module(x)
        return out.pred_score, out.pred_label, out.anomaly_map, out.pred_mask


def _import_class(path: str):
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ExportError(f"anomalib model must be a dotted class path, got {path!r}")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ExportError(f"cannot import anomalib model class {path!r}: {error}") from error


def _anomalib_uint8_bgr(ov_model, size: tuple[int, int], dynamic: bool):
    """Reshape anomalib's IR and prepend uint8 BGR NHWC -> RGB float [0, 1] NCHW (OpenVINO PrePostProcessor)."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    if not dynamic:
        ov_model.reshape({ov_model.input(0): ov.PartialShape([-1, 3, size[0], size[1]])})
    ppp = PrePostProcessor(ov_model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_color(ColorFormat.RGB).convert_element_type(ov.Type.f32).scale(255.0)
    ov_model = ppp.build()
    ov_model.input(0).get_tensor().set_names({"image"})
    return ov_model


def load_anomaly_model(checkpoint: str | Path, model_class: str = DEFAULT_ANOMALIB_MODEL,
                       input_size: tuple[int, int] | None = None) -> LoadedModel:
    """anomalib Lightning checkpoint -> :class:`LoadedModel` (uint8 BGR -> score, label, map, mask).

    The model is rebuilt with ``pre_trained=False`` (nothing is downloaded; the checkpoint holds
    every weight). ``convert`` runs anomalib's own ``to_openvino``.
    """
    checkpoint = _check_file(checkpoint, "checkpoint")
    cls = _import_class(model_class)
    overrides = {k: v for k, v in (("pre_trained", False), ("teacher_weights", None))
                 if k in inspect.signature(cls.__init__).parameters}
    try:
        lightning = cls.load_from_checkpoint(str(checkpoint), map_location="cpu", weights_only=False, **overrides)
    except TypeError:
        lightning = cls.load_from_checkpoint(str(checkpoint), map_location="cpu", **overrides)
    lightning.eval()
    if input_size is None:
        hp_size = lightning.hparams.get("image_size") if hasattr(lightning, "hparams") else None
        input_size = tuple(int(v) for v in hp_size) if hp_size else (256, 256)
    post = getattr(lightning, "post_processor", None)
    raw = {}
    for key in ("image_threshold", "pixel_threshold"):
        value = getattr(post, key, None)
        if value is not None:
            raw[f"raw_{key}"] = float(torch.as_tensor(value).reshape(-1)[0])
    metadata = ModelMetadata(
        family="anomaly", precision="FP32", input_size=input_size, class_names=["good", "defect"],
        outputs=["pred_score", "pred_label", "anomaly_map", "pred_mask"],
        # anomalib's exported post-processor normalises scores and maps so that the learned
        # image/pixel thresholds fall at 0.5.
        thresholds={"image": 0.5, "pixel": 0.5, **raw},
        normalisation={"inside_graph": "anomalib pre-processor (resize + ImageNet mean/std on RGB [0, 1])",
                       "input_adapter": "uint8 BGR NHWC -> RGB float [0, 1] NCHW (OpenVINO PrePostProcessor)"},
        source={"framework": "anomalib", "checkpoint": str(checkpoint), "model": model_class})
    module = _AnomalibUint8(lightning).eval()

    def convert(dynamic: bool):
        import openvino as ov

        with tempfile.TemporaryDirectory(prefix="anomalib-export-") as tmp:
            xml = lightning.to_openvino(export_root=tmp, input_size=None if dynamic else tuple(input_size))
            ov_model = ov.Core().read_model(str(xml))
            ov_model = _anomalib_uint8_bgr(ov_model, tuple(input_size), dynamic)
            # materialise weights before the temporary folder goes away
            return ov_model.clone()

    return LoadedModel(module, metadata, convert)


# --------------------------------------------------------------------------- public API


def load_model(family: str, *, config: str | Path | None = None, checkpoint: str | Path | None = None,
               input_size: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
               anomalib_model: str = DEFAULT_ANOMALIB_MODEL) -> LoadedModel:
    """Load the PyTorch model of any family with the package's uint8 BGR input contract."""
    size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
    if family == "classifier":
        return load_classifier_model(config, checkpoint, size, class_names)
    if family == "segmentor":
        return load_segmentor_model(config, checkpoint, size, class_names)
    if family == "anomaly":
        return load_anomaly_model(checkpoint, anomalib_model, size)
    raise ExportError(f"family must be one of {FAMILIES}, got {family!r}")


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

    ov_outputs = openvino_predict(model_xml, "f32")(batch)
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
                images.append(to_input(read_bgr(path), metadata.input_size))
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
