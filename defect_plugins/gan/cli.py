"""``defect-migrate``: CycleGAN defect-sample migration between two production lines.

RKD-SARSN (Huang et al., Algorithms 16(11):516, 2023, section 2.1) translates the labelled defect
images of one line (domain A) to the look of another line (domain B) with a CycleGAN (Zhu et al.,
ICCV 2017), so a classifier for B can be trained before many of B's defects are labelled::

    defect-migrate train --source A_DIR --target B_DIR --work-dir W [--iters N] [--resume] ...
    defect-migrate translate --checkpoint W/iter_N.pth --input LABELLED_A --out OUT [--direction a2b]

``train`` writes the training config to ``W/cyclegan_config.py`` and runs it with mmpretrain's
``tools/train.py`` through the launcher (``defect-train mmpretrain``, mmengine's ``Runner``);
checkpoints go to ``W/iter_N.pth`` and sample grids (A, A->B, A->B->A, B, B->A, B->A->B) to
``W/samples/``. ``--resume`` continues a killed training from its last checkpoint. B's images need
no labels. Bad input prints ``defect-migrate: error: <message>`` (naming the path) and exits with 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Sequence

PROG = "defect-migrate"
DEFAULT_CONFIG = "cyclegan/cyclegan_resnet6_64.py"
CONFIG_NAME = "cyclegan_config.py"


class MigrateError(RuntimeError):
    """A request that cannot be carried out; the message names the path or value."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,translate}")

    t = sub.add_parser("train", help="train a CycleGAN between two unpaired image folders")
    t.add_argument("--source", required=True, help="domain A: images of the labelled line (sub-folders allowed)")
    t.add_argument("--target", required=True, help="domain B: images of the new line (no labels needed)")
    t.add_argument("--work-dir", required=True, help="checkpoints, logs and sample grids go here")
    t.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"CycleGAN config path or packaged name (default {DEFAULT_CONFIG})")
    t.add_argument("--iters", type=_positive, help="training iterations (default: the config's max_iters)")
    t.add_argument("--img-size", type=_positive, help="training crop size, a multiple of 4 (default: the config's)")
    t.add_argument("--batch-size", type=_positive, help="images per domain and iteration (default: the config's)")
    t.add_argument("--gen-channels", type=_positive, help="generator base filters (paper: 64)")
    t.add_argument("--gen-blocks", type=int, help="generator residual blocks (paper: 9 at 256 px, 6 at 128 px)")
    t.add_argument("--disc-channels", type=_positive, help="discriminator base filters (paper: 64)")
    t.add_argument("--checkpoint-interval", type=_positive, help="iterations between checkpoints")
    t.add_argument("--sample-interval", type=_positive, help="iterations between sample grids")
    t.add_argument("--log-interval", type=_positive, help="iterations between log lines")
    t.add_argument("--seed", type=int, help="random seed (default: the config's)")
    t.add_argument("--allow-mixed-sizes", action="store_true", help="accept images of different sizes in a folder")
    t.add_argument("--resume", action="store_true", help="continue the training in --work-dir from its last checkpoint")

    r = sub.add_parser("translate", help="translate a labelled folder with a trained generator")
    r.add_argument("--checkpoint", required=True, help="a checkpoint of `defect-migrate train` (W/iter_N.pth)")
    r.add_argument("--input", required=True, help="images to translate (class sub-folders are kept)")
    r.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    r.add_argument("--direction", choices=("a2b", "b2a"), default="a2b", help="a2b: source look -> target look")
    r.add_argument("--config", help="config of the checkpoint (default: the one stored in it)")
    r.add_argument("--keep-input-size", action="store_true",
                   help="write each image at its own size (default: the training size)")
    return parser


def build_train_config(args: argparse.Namespace):
    """The packaged/given config with the command line's folders and sizes applied (an mmengine Config)."""
    from mmengine.config import Config

    from defect_plugins.packaged_configs import ConfigNotFoundError, resolve_config

    try:
        cfg = Config.fromfile(str(resolve_config(args.config)))
    except ConfigNotFoundError as error:
        raise MigrateError(str(error)) from None
    dataset = cfg.train_dataloader.dataset
    dataset.root_a = str(Path(args.source).resolve())
    dataset.root_b = str(Path(args.target).resolve())
    if args.img_size is not None:
        dataset.img_size = args.img_size
        dataset.pop("load_size", None)  # back to the default 9/8 of the new size
    if args.allow_mixed_sizes:
        dataset.allow_mixed_sizes = True
    if args.batch_size is not None:
        cfg.train_dataloader.batch_size = args.batch_size
    if args.iters is not None:
        cfg.train_cfg.max_iters = args.iters
    max_iters = cfg.train_cfg.max_iters
    # the schedule follows the length: constant for the first half, then linearly down to 0 (Zhu et al.)
    cfg.param_scheduler = [dict(type="LinearLR", start_factor=1.0, end_factor=0.0, by_epoch=False,
                                begin=max_iters // 2, end=max(max_iters, 1))]
    if args.gen_channels is not None:
        cfg.model.generator.base_channels = args.gen_channels
    if args.gen_blocks is not None:
        if args.gen_blocks < 0:
            raise MigrateError(f"--gen-blocks must be >= 0, got {args.gen_blocks}")
        cfg.model.generator.num_blocks = args.gen_blocks
    if args.disc_channels is not None:
        cfg.model.discriminator.base_channels = args.disc_channels
    if args.checkpoint_interval is not None:
        cfg.default_hooks.checkpoint.interval = args.checkpoint_interval
    if args.sample_interval is not None:
        for hook in cfg.custom_hooks:
            if hook["type"] == "CycleGANSampleHook":
                hook["interval"] = args.sample_interval
    if args.log_interval is not None:
        cfg.default_hooks.logger.interval = args.log_interval
    if args.seed is not None:
        cfg.randomness.seed = args.seed
    return cfg


def train(args: argparse.Namespace) -> int:
    """``defect-migrate train``: check the folders, write the config, run it through the launcher."""
    from defect_plugins.fileio import atomic_path
    from defect_plugins.gan.datasets.unpaired import ImageFolderError, check_image_folder

    work_dir = Path(args.work_dir)
    has_run = (work_dir / "last_checkpoint").is_file()
    if has_run and not args.resume:
        raise MigrateError(f"{work_dir} already holds a training (last_checkpoint): pass --resume to continue it, "
                           "or choose another --work-dir")
    if args.resume and not has_run:
        raise MigrateError(f"--resume: {work_dir} holds no checkpoint to continue from")
    for role, folder in (("--source", args.source), ("--target", args.target)):
        try:
            check_image_folder(folder, allow_mixed_sizes=args.allow_mixed_sizes)
        except ImageFolderError as error:
            raise MigrateError(f"{role}: {error}") from None
    cfg = build_train_config(args)
    if cfg.train_dataloader.dataset.img_size % 4:
        raise MigrateError(f"--img-size must be a multiple of 4, got {cfg.train_dataloader.dataset.img_size}")
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / CONFIG_NAME
    with atomic_path(config_path) as tmp:
        cfg.dump(str(tmp))

    from defect_plugins.runners.launcher import launch  # applies the compatibility fixes before the config is parsed

    launch_args = ["mmpretrain", str(config_path), "--work-dir", str(work_dir)]
    return launch("train", launch_args + (["--resume"] if args.resume else []), prog=f"{PROG} train")


def translate(args: argparse.Namespace) -> int:
    """``defect-migrate translate``: translate a (labelled) folder, report unreadable files, keep going."""
    from defect_plugins.gan.translate import load_cyclegan, translate_folder

    model, img_size = load_cyclegan(args.checkpoint, args.config)
    report = translate_folder(model, img_size, args.input, args.out, direction=args.direction,
                              keep_input_size=args.keep_input_size, checkpoint=args.checkpoint,
                              warn=lambda line: print(f"{PROG}: warning: {line}", file=sys.stderr))
    print(f"{PROG}: translated {len(report.translated)} image(s) {args.direction} into {report.out_dir}"
          + (f"; {len(report.unreadable)} unreadable file(s) skipped" if report.unreadable else ""))
    return 0 if report.translated else 1


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """Console command ``defect-migrate {train,translate} ...``."""
    args = _parser().parse_args(argv)
    from defect_plugins.gan.datasets.unpaired import ImageFolderError
    from defect_plugins.gan.translate import TranslationError

    try:
        return train(args) if args.command == "train" else translate(args)
    except (MigrateError, TranslationError, ImageFolderError) as error:
        _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
