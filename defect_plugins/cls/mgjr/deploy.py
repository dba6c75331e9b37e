"""OpenVINO export of the MGJR student (the teacher and projector exist only for training).

Reuses :mod:`defect_plugins.deploy.classifier_openvino` (preprocessing baked into the graph,
``openvino.convert_model``, f32 parity, latency). What is MGJR-specific is only the loading:
an MGJR checkpoint (or any checkpoint of the student) is loaded into a plain mmpretrain
``ImageClassifier`` built from the config's ``backbone`` / ``neck`` / ``head`` /
``data_preprocessor``, so no teacher checkpoint is needed at export time. The training-only
keys (``projector.*``, ``teacher.*``) are dropped; everything else must match exactly.

CLI::

    python -m defect_plugins.cls.mgjr.deploy CONFIG CHECKPOINT --out DIR [--image-size 64]
        [--parity-images IMG ...] [--benchmark] [--threads N]

Parity and latency are measured with OpenVINO compiled at f32 (``INFERENCE_PRECISION_HINT``).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np

TRAINING_ONLY_PREFIXES = ("projector.", "teacher.")
STUDENT_KEYS = ("backbone", "neck", "head", "data_preprocessor", "train_cfg")


def student_model_config(model_cfg: dict) -> dict:
    """The ``ImageClassifier`` config of an MGJR (or plain) classifier config's student."""
    cfg = {k: copy.deepcopy(v) for k, v in model_cfg.items() if k in STUDENT_KEYS}
    cfg["type"] = "ImageClassifier"
    return cfg


def load_student(config: str | os.PathLike, checkpoint: str | os.PathLike):
    """Build the student of ``config`` and load ``checkpoint`` into it (training-only keys dropped)."""
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
    model = MODELS.build(student_model_config(model_cfg))
    # mmengine's loader (made torch>=2.6-safe by defect_plugins.compat), not a bare unpickling torch.load
    state = _load_checkpoint(str(checkpoint), map_location="cpu")
    state = state.get("state_dict", state)
    state = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(f"checkpoint {checkpoint} does not fit the student of {config}: missing "
                       f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    model.eval()
    return model, cfg


def main(argv: list[str] | None = None) -> int:
    from defect_plugins.deploy.classifier_openvino import ExportError, benchmark, export_classifier, parity

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True, help="output folder (<name>.xml/.bin/.json, report.json)")
    parser.add_argument("--name", default="mgjr_student")
    parser.add_argument("--image-size", type=int, default=None, help="default: the config's img_size")
    parser.add_argument("--parity-images", nargs="*", default=[], help="images for the f32 parity check")
    parser.add_argument("--benchmark", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        model, cfg = load_student(args.config, args.checkpoint)
        size = args.image_size or int(cfg.get("img_size", 224))
        from defect_plugins.data import NEU_CLASSES

        xml = export_classifier(model, Path(args.out) / f"{args.name}.xml", size, list(NEU_CLASSES))
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
        print(f"mgjr deploy: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
