"""``defect-export``: export a trained model to OpenVINO from the command line (:mod:`.exporter` does the work).

Command line::

    defect-export classifier --config C.py --checkpoint E.pth --out exp/cls.xml
    defect-export segmentor --config C.py --checkpoint E.pth --out exp/seg.xml --input-size 200 200
    defect-export anomaly --checkpoint model.ckpt --out exp/akf.xml \\
        --precision INT8 --calib-dir DATA/train/good --eval-dir DATA --tolerance 0.02

(``python -m defect_plugins.deploy.export ...`` is the same.) After the export, ``--parity N``
compares the IR at f32 with the PyTorch reference on N images of the evaluation (else
calibration) folder, or on random images when there is none.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from defect_plugins.imaging.files import ImageReadError, list_images, read_bgr
from defect_plugins.imaging.geometry import to_input

from ..metadata import FAMILIES, WEIGHT_PRECISIONS
from .exporter import DEFAULT_ANOMALIB_MODEL, ExportError, export_model, load_model, parity
from .int8 import QuantizationToleranceError


def build_parser() -> argparse.ArgumentParser:
    """The ``defect-export`` arguments."""
    parser = argparse.ArgumentParser(prog="defect-export", description="One export for every model family: "
                                     "mmpretrain / mmseg config + checkpoint, or an anomalib checkpoint.")
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
    """``defect-export``: 0 on success, 1 with the reason on stderr when the export failed or was refused."""
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
