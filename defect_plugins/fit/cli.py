"""``defect fit`` (alias ``defect-fit``): one command from a folder of images to a calibrated model bundle.

::

    defect fit anomaly DATA --out BUNDLE [--model AkfReverseDistillation|Patchcore|...|auto]
        [--teacher-weights FILE] [--image-size 256] [--resize letterbox|stretch] [--epochs N]
        [--max-false-reject 0.01] [--seed 0] [--device auto] [--precision 32-true]

    defect fit classifier DATA --out BUNDLE [--ok-class good] [--backbone resnet18] [--weights imagenet|FILE|none]
        [--image-size 224] [--resize letterbox|stretch] [--epochs 30] [--max-false-reject 0.01]

    defect fit segmentor DATA --out BUNDLE [--classes background scratch ...] [--width 32] [--epochs 30]
        [--model unet|arcd]

Every family takes ``--nproc N`` (training processes on this machine, torch.distributed: gloo on a CPU, NCCL
with CUDA) and, across machines, ``--nnodes M --node-rank R --master-addr HOST [--master-port P]`` given the
same on every machine but for ``--node-rank``; machine 0 writes the bundle (:mod:`.distributed`).

Then ``defect-infer --model BUNDLE IMAGES`` or ``defect-station --model BUNDLE``: both use the bundle's
threshold and rules. The same command given again after an interruption goes on where it stopped
(``BUNDLE.work`` keeps the split, the staged images and the last epoch).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum`` (``--nproc 0`` is refused before anything runs)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _distributed(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "several processes (torch.distributed)",
        "the training runs on NPROC processes per machine (gloo on a CPU, NCCL with CUDA); each takes "
        "--batch-size images per step, so the global batch is NPROC x NNODES x --batch-size, and the learning "
        "rate is not rescaled. Machine 0 (--node-rank 0) exports, calibrates and writes the bundle.")
    group.add_argument("--nproc", type=_at_least(1), default=1, help="training processes on this machine (default 1)")
    group.add_argument("--nnodes", type=_at_least(1), default=1, help="machines taking part (default 1)")
    group.add_argument("--node-rank", type=_at_least(0), default=0, help="this machine's number, 0 to NNODES-1")
    group.add_argument("--master-addr", default="127.0.0.1", help="address of machine 0, reachable from all")
    group.add_argument("--master-port", type=_at_least(1), help="rendezvous port on machine 0 (default: a free port "
                                                                "on one machine, 29500 across machines)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="the folder of images (layouts: see --help of the family)")
    parser.add_argument("--out", type=Path, required=True, help="the bundle folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--image-size", type=int, default=256, help="model input side in pixels (default: anomaly "
                                                                     "256, classifier 224)")
    parser.add_argument("--resize", choices=("letterbox", "stretch"), default="letterbox",
                        help="letterbox (default): pad to a square, no distortion; stretch: resize to the square")
    parser.add_argument("--epochs", type=int, help="training epochs (default: anomaly 30, or the model's own one "
                                                   "pass for memory-bank models; classifier 30)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the training (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, gpu, ... (Lightning accelerator)")
    parser.add_argument("--precision", default="32-true", help="training precision (32-true, bf16-mixed, ...)")
    parser.add_argument("--max-false-reject", type=float, default=0.01,
                        help="target share of good parts rejected, set on held-out good images (default 0.01)")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 model")
    parser.add_argument("--int8-tolerance", type=float, default=0.02,
                        help="largest loss of recall (and of the guard's metric) INT8 may cost (default 0.02)")
    parser.add_argument("--work-dir", type=Path, help="where the split, staged images and runs live "
                                                      "(default: OUT.work; removed after success)")
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder after success")
    _distributed(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defect fit", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    families = parser.add_subparsers(dest="family", required=True)
    anomaly = families.add_parser(
        "anomaly", help="anomalib model on defect-free images; calibrated on held-out good and defective ones",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Layouts of DATA:\n"
                    "  MVTec AD: train/good/, test/good/, test/<type>/ ..., masks optional in ground_truth/<type>/\n"
                    "  folders:  good/ (or ok/, normal/) and one folder per defect type beside it,\n"
                    "            masks optional in ground_truth/<type>/ or masks/<type>/\n"
                    "Masks are matched to images by file stem (x.png <- x.png or x_mask.png).")
    _common(anomaly)
    anomaly.add_argument("--model", default="AkfReverseDistillation",
                         help="anomalib image model class (AkfReverseDistillation, ReverseDistillation, Patchcore, "
                              "Padim, ...) or 'auto' (fit --candidates, keep the best recall at the target)")
    anomaly.add_argument("--candidates", nargs="+", default=["AkfReverseDistillation", "ReverseDistillation",
                                                             "Patchcore"], help="models that --model auto tries")
    anomaly.add_argument("--backbone", default="resnet18")
    anomaly.add_argument("--teacher-weights", type=Path, help="local torchvision/timm state dict for the backbone")
    anomaly.add_argument("--no-pretrained", action="store_true",
                         help="no ImageNet download when no --teacher-weights is given (random backbone)")
    anomaly.add_argument("--coreset-ratio", type=float, default=0.01,
                         help="PatchCore's coreset share (anomalib's 0.1 is ~10x slower on a CPU; default 0.01)")
    classifier = families.add_parser(
        "classifier", help="mmpretrain classifier on one folder per class; optional OK class, calibrated",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Layout of DATA: one folder per class (any names, any number >= 2), e.g.\n"
                    "  DATA/good/*.png  DATA/scratch/*.png  DATA/dent/*.png\n"
                    "Name the folder of good parts with --ok-class to get a calibrated OK / defect decision.")
    _common(classifier)
    classifier.set_defaults(image_size=224, epochs=30)
    classifier.add_argument("--ok-class", help="the class folder that holds good parts")
    classifier.add_argument("--backbone", choices=("resnet18", "resnet34", "resnet50"), default="resnet18")
    classifier.add_argument("--weights", default="imagenet",
                            help="initial backbone weights: imagenet (torchvision download), a local torchvision "
                                 "state dict (defect-teacher writes one) or none")
    classifier.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    segmentor = families.add_parser(
        "segmentor", help="mmsegmentation U-Net on images + masks (one class per mask value)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Layout of DATA: images/ and masks/ (or annotations/, labels/; mmseg's img_dir/ + ann_dir/),\n"
                    "masks matched to images by file stem, one class per mask value (0 = background,\n"
                    "255 = ignore). Class names: --classes, else DATA/classes.yaml (a list, background first),\n"
                    "else background, defect_1, ... from the largest mask value.")
    _common(segmentor)
    segmentor.set_defaults(epochs=30, batch_size=8)
    segmentor.add_argument("--classes", nargs="+", help="class names by mask value, background first")
    segmentor.add_argument("--width", type=int, default=32, help="U-Net base channels (default 32; mmseg's is 64)")
    segmentor.add_argument("--model", choices=("unet", "arcd"), default="unet",
                           help="unet: mmseg's U-Net (default); arcd: ARCD's reconstructor (stage 1) then the same "
                                "U-Net on image + reconstruction with a focal loss (stage 2)")
    segmentor.add_argument("--stage1-epochs", type=int,
                           help="ARCD's stage-1 (reconstructor) epochs (default: --epochs)")
    segmentor.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (default 0.01)")
    segmentor.add_argument("--min-area", type=int, default=4,
                           help="smallest defect region in pixels that makes a part defective (default 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``defect fit FAMILY DATA --out BUNDLE``: 0 with the bundle written, 2 with the reason on stderr."""
    args = build_parser().parse_args(argv)
    from .calibration import CalibrationError
    from .distributed import DistributedOptions
    from .layouts import LayoutError
    from .logs import FitLog

    if "TORCHELASTIC_RUN_ID" in os.environ:  # every worker would split, stage, export and write the bundle
        print("defect fit: error: started by torchrun / torch.distributed.run; run defect-fit itself with --nproc "
              "(and --nnodes, --node-rank, --master-addr across machines): it starts the training's workers",
              file=sys.stderr)
        return 2
    try:
        dist = DistributedOptions(nproc=args.nproc, nnodes=args.nnodes, node_rank=args.node_rank,
                                  master_addr=args.master_addr, master_port=args.master_port)
    except ValueError as error:
        print(f"defect fit: error: {error}", file=sys.stderr)
        return 2

    log_path = args.out.with_name(args.out.name + ".log")
    log = FitLog(log_path)
    log(f"[fit] log of every step, toolkits' output included: {log_path}")
    try:
        if args.family == "anomaly":
            from .anomaly import AnomalyOptions, fit_anomaly

            options = AnomalyOptions(
                model=args.model, candidates=args.candidates, backbone=args.backbone,
                teacher_weights=args.teacher_weights, pretrained=not args.no_pretrained, image_size=args.image_size,
                resize=args.resize, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                device=args.device, precision=args.precision, coreset_ratio=args.coreset_ratio,
                max_false_reject=args.max_false_reject, int8=not args.no_int8, int8_tolerance=args.int8_tolerance,
                dist=dist, log=log)
            with log.quiet():
                fit_anomaly(args.data, args.out, options, work_dir=args.work_dir, overwrite=args.overwrite,
                            keep_work=args.keep_work, argv=argv)
        elif args.family == "segmentor":
            from .segmentor import SegmentorOptions, fit_segmentor

            options = SegmentorOptions(
                classes=args.classes, model=args.model, stage1_epochs=args.stage1_epochs, width=args.width,
                image_size=args.image_size, resize=args.resize,
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, min_area=args.min_area,
                int8=not args.no_int8, int8_tolerance=args.int8_tolerance, dist=dist, log=log)
            with log.quiet():
                fit_segmentor(args.data, args.out, options, work_dir=args.work_dir, overwrite=args.overwrite,
                              keep_work=args.keep_work, argv=argv)
        else:
            from .classifier import ClassifierOptions, fit_classifier

            options = ClassifierOptions(
                ok_class=args.ok_class, backbone=args.backbone,
                weights=None if args.weights == "none" else args.weights, image_size=args.image_size,
                resize=args.resize, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                device=args.device, max_false_reject=args.max_false_reject, int8=not args.no_int8,
                int8_tolerance=args.int8_tolerance, dist=dist, log=log)
            with log.quiet():
                fit_classifier(args.data, args.out, options, work_dir=args.work_dir, overwrite=args.overwrite,
                               keep_work=args.keep_work, argv=argv)
    except (LayoutError, CalibrationError, FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"defect fit: error: {error}", file=sys.stderr)
        return 2
    except Exception:
        print(f"defect fit: failed; the traceback and the toolkits' output are in {log_path}", file=sys.stderr)
        import traceback

        with log_path.open("a", encoding="utf-8") as handle:
            traceback.print_exc(file=handle)
        return 1
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
