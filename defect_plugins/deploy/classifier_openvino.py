"""OpenVINO export of a trained mmpretrain classifier, with its preprocessing baked in.

The exported model takes what a factory program has after ``cv2.imread`` + ``cv2.resize``:
a ``uint8`` batch ``(N, H, W, 3)`` in **BGR** order at the training resolution. Inside the graph
it does what mmpretrain's ``ClsDataPreprocessor`` does (BGR->RGB when ``to_rgb``, ``(x - mean) /
std`` on the 0-255 scale), then backbone -> neck -> head -> softmax, and returns class
probabilities ``(N, num_classes)``. The conversion is ``openvino.convert_model`` on that small
``nn.Module`` (no ONNX file in between), saved with ``openvino.save_model``.

OpenVINO runs bf16 by default on CPUs that support it; every parity check here compiles with
``{"INFERENCE_PRECISION_HINT": "f32"}`` and says so. :class:`~defect_plugins.cls.distill.RKDClassifier`
configs export the student only (its checkpoints hold no teacher).

CLI::

    python -m defect_plugins.deploy.classifier_openvino CONFIG CHECKPOINT --out DIR
        [--image-size 64] [--parity-images IMG ...] [--benchmark]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

F32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


class ExportError(RuntimeError):
    """The classifier cannot be exported or checked as asked."""


class PreprocessedClassifier(nn.Module):
    """uint8 BGR ``(N, H, W, 3)`` -> softmax probabilities, using the classifier's own preprocessing."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        preprocessor = classifier.data_preprocessor
        self.backbone = classifier.backbone
        self.neck = classifier.neck if getattr(classifier, "with_neck", False) else None
        self.head = classifier.head
        self.to_rgb = bool(getattr(preprocessor, "to_rgb", False))
        mean = getattr(preprocessor, "mean", None)
        std = getattr(preprocessor, "std", None)
        self.normalize = bool(getattr(preprocessor, "_enable_normalize", mean is not None))
        self.register_buffer("mean", (mean if mean is not None else torch.zeros(3, 1, 1)).detach().float().view(1, -1, 1, 1).clone())
        self.register_buffer("std", (std if std is not None else torch.ones(3, 1, 1)).detach().float().view(1, -1, 1, 1).clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if self.to_rgb:
            x = x.flip(1)
        if self.normalize:
            x = (x - self.mean) / self.std
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(feats).softmax(dim=1)


# Parts of an mmpretrain ImageClassifier config; a distillation config (RKD, MGJR) adds a teacher
# and training-only modules around them, which an exported student does not need.
STUDENT_KEYS = ("backbone", "neck", "head", "data_preprocessor", "train_cfg")
TRAINING_ONLY_PREFIXES = ("teacher.", "projector.")


def student_model_config(model_cfg: dict) -> dict:
    """The plain ``ImageClassifier`` config of a classifier config (a distillation config's student)."""
    cfg = {key: copy.deepcopy(value) for key, value in model_cfg.items() if key in STUDENT_KEYS}
    cfg["type"] = "ImageClassifier"
    return cfg


def load_classifier(config: str | os.PathLike, checkpoint: str | os.PathLike) -> tuple[nn.Module, object]:
    """Build the model of an mmpretrain config and load a checkpoint.

    For distillation configs (those naming a ``teacher_config``: RKD, MGJR) only the student is
    built, so no teacher checkpoint is needed at export time; training-only keys
    (``teacher.*``, ``projector.*``) are dropped and every other key must match.
    """
    import defect_plugins.cls  # noqa: F401  (registers the plugin components)
    from mmengine.config import Config
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmpretrain.registry import MODELS

    if not os.path.isfile(config):
        raise FileNotFoundError(f"config {config} not found")
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint} not found")
    cfg = Config.fromfile(str(config))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get("data_preprocessor") is not None:
        model_cfg.setdefault("data_preprocessor", copy.deepcopy(cfg.data_preprocessor))
    if "teacher_config" in model_cfg:
        model_cfg = student_model_config(model_cfg)
    model = MODELS.build(model_cfg)
    # mmengine's loader (made torch>=2.6-safe by defect_plugins.compat), not a bare torch.load
    state = _load_checkpoint(str(checkpoint), map_location="cpu")
    state = state.get("state_dict", state)
    state = {key: value for key, value in state.items() if not key.startswith(TRAINING_ONLY_PREFIXES)}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f"checkpoint {checkpoint} does not fit the model of {config}: missing "
                       f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    model.eval()
    return model, cfg


def _atomic_save(ov_model, out_xml: Path) -> Path:
    import openvino as ov

    out_xml.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=out_xml.parent, prefix=".export-"))
    try:
        tmp_xml = tmp_dir / out_xml.name
        ov.save_model(ov_model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        os.replace(tmp_xml, out_xml)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_xml


def export_classifier(classifier: nn.Module, out_xml: str | os.PathLike, image_size: int | tuple[int, int],
                      classes: Sequence[str] | None = None) -> Path:
    """Convert ``classifier`` (with preprocessing) to OpenVINO IR at ``out_xml`` (+ .bin, + .json metadata)."""
    import openvino as ov

    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    wrapper = PreprocessedClassifier(classifier).eval()
    example = torch.zeros(1, height, width, 3, dtype=torch.uint8)
    with torch.no_grad():
        ov_model = ov.convert_model(wrapper, example_input=example,
                                    input=[(ov.PartialShape([-1, height, width, 3]), ov.Type.u8)])
    out_xml = Path(out_xml)
    _atomic_save(ov_model, out_xml)
    meta = {"input": f"uint8 (N, {height}, {width}, 3) BGR (as cv2.imread), resized to {height}x{width}",
            "output": "softmax probabilities (N, num_classes)", "to_rgb": wrapper.to_rgb,
            "mean": wrapper.mean.flatten().tolist(), "std": wrapper.std.flatten().tolist(),
            "classes": list(classes) if classes else None}
    out_xml.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_xml


def compile_f32(xml: str | os.PathLike, threads: int | None = None):
    """Compile an IR on CPU at f32 (OpenVINO would use bf16 by default on this CPU)."""
    import openvino as ov

    config = dict(F32_CONFIG)
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(str(xml), "CPU", config)


def torch_probabilities(classifier: nn.Module, images: np.ndarray) -> np.ndarray:
    """Reference: mmpretrain's own path (data_preprocessor + predict) on uint8 BGR ``(N, H, W, 3)``."""
    inputs = [torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))) for img in images]
    with torch.no_grad():
        data = classifier.data_preprocessor({"inputs": inputs}, False)
        scores = classifier(data["inputs"], mode="tensor")
    return scores.softmax(dim=1).numpy()


def parity(classifier: nn.Module, xml: str | os.PathLike, images: np.ndarray) -> float:
    """Max |p_openvino - p_torch| over ``images`` (uint8 BGR NHWC), OpenVINO compiled at f32."""
    compiled = compile_f32(xml)
    ov_probs = compiled(images)[compiled.output(0)]
    return float(np.abs(ov_probs - torch_probabilities(classifier, images)).max())


def benchmark(xml: str | os.PathLike, image_size: int | tuple[int, int], runs: int = 50, warmup: int = 5,
              threads: int | None = None) -> dict:
    """Median / mean single-image latency (ms) of the IR on CPU at f32."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    compiled = compile_f32(xml, threads)
    request = compiled.create_infer_request()
    image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    for _ in range(warmup):
        request.infer([image])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer([image])
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times), "runs": runs,
            "threads": threads, "precision": "f32"}


def _config_classes(cfg) -> list[str] | None:
    """Class names from the test dataset's ``metainfo`` or, failing that, its type's ``METAINFO``."""
    from mmpretrain.registry import DATASETS

    dataset = cfg.get("test_dataloader", {}).get("dataset", {})
    classes = (dataset.get("metainfo") or {}).get("classes")
    if classes is None and isinstance(dataset.get("type"), str):
        dataset_cls = DATASETS.get(dataset["type"])
        classes = getattr(dataset_cls, "METAINFO", {}).get("classes") if dataset_cls is not None else None
    return list(classes) if classes else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True, help="output folder (model.xml/.bin/.json)")
    parser.add_argument("--name", default="model")
    parser.add_argument("--image-size", type=int, default=None, help="default: the config's img_size")
    parser.add_argument("--parity-images", nargs="*", default=[], help="images for the f32 parity check")
    parser.add_argument("--benchmark", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        model, cfg = load_classifier(args.config, args.checkpoint)
        size = args.image_size or int(cfg.get("img_size", 224))
        classes = _config_classes(cfg)
        xml = export_classifier(model, Path(args.out) / f"{args.name}.xml", size, classes)
        report = {"xml": str(xml), "image_size": size, "precision": "f32 (INFERENCE_PRECISION_HINT)"}
        print(f"exported {xml}")
        if args.parity_images:
            import cv2

            images = []
            for path in args.parity_images:
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise ExportError(f"cannot read image {path}")
                images.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR))
            report["parity_max_abs_prob_diff"] = parity(model, xml, np.stack(images))
            report["parity_images"] = len(images)
            print(f"parity (OpenVINO f32 vs PyTorch, {len(images)} images): max |dp| = "
                  f"{report['parity_max_abs_prob_diff']:.3e}")
        if args.benchmark:
            report["latency"] = benchmark(xml, size, threads=args.threads)
            print(f"latency (OpenVINO CPU f32, batch 1): {report['latency']}")
        (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    except (FileNotFoundError, KeyError, ExportError) as error:
        print(f"classifier_openvino: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
