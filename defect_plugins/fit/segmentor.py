"""``defect-fit segmentor``: images and masks -> an mmsegmentation U-Net bundle with per-class figures.

Training is mmsegmentation's own Runner (``tools/train.py`` through :mod:`defect_plugins.runners.launcher`,
resumed from its last epoch when the command is given again) on a config written for the user's classes
(:func:`write_config`): mmseg's ``UNet`` backbone (Ronneberger et al. 2015, mmseg
``configs/_base_/models/fcn_unet_s5-d16.py`` at ``--width`` base channels) with an ``FCNHead``, SGD
with a poly decay over ``--epochs``, flips. Letterboxed masks are padded with 255, mmseg's ignore index,
so the padding is never learned as a class.

A part is defective at run time when a defect class covers a region of at least ``min_area`` pixels
(:mod:`defect_plugins.deploy.families.segmentor`); that rule has no continuous score to calibrate, so the
card reports the false-reject rate on the test part's defect-free images (masks with no defect pixel)
with its exact interval, the recall of defective images, and the IoU per class.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .distributed import DistributedOptions
from .layouts import SegData
from .split import Split

FRACTIONS = {"train": 0.6, "calibration": 0.2, "test": 0.2}
MODELS = ("unet", "arcd")
GOOD = "good"  # the split group of images whose mask has no defect pixel
SMALL_GROUP = "mixed"  # dominant classes with too few images to split on their own


@dataclass
class SegmentorOptions:
    """What ``defect-fit segmentor`` takes besides the data and the output (its command-line options)."""

    classes: Sequence[str] | None = None
    model: str = "unet"  # or "arcd" (:mod:`.arcd`)
    stage1_epochs: int | None = None  # ARCD's reconstructor; default: ``epochs``
    width: int = 32
    image_size: int = 256
    resize: str = "letterbox"
    epochs: int = 30
    batch_size: int = 8
    lr: float = 0.01
    seed: int = 0
    min_area: int = 4
    int8: bool = True
    int8_tolerance: float = 0.02
    dist: DistributedOptions = field(default_factory=DistributedOptions)
    log: Callable[[str], None] = field(default=print, repr=False)


def lr_rule(options: SegmentorOptions) -> str:
    """The card's learning-rate rule: the configured rates are the global batch's, never rescaled."""
    if options.model == "arcd":
        from .arcd import STAGE1_LR, STAGE2_LR

        rates = f"ARCD's Adam {STAGE1_LR:g} (stage 1) and AdamW {STAGE2_LR:g} (stage 2)"
    else:
        rates = f"--lr {options.lr:g}"
    return f"{rates} as given, for the global batch (no automatic scaling)"


def dominant_groups(data: SegData) -> dict[str, list[Path]]:
    """Images grouped by the defect class covering most of their mask (``good`` without any), for a stratified split."""
    from .layouts import read_mask

    groups: dict[str, list[Path]] = {}
    for image in data.images:
        mask = read_mask(data.masks[image])
        counts = np.bincount(mask[mask != 255].ravel(), minlength=len(data.classes))[1:]
        name = data.classes[1 + int(counts.argmax())] if counts.sum() else GOOD
        groups.setdefault(name, []).append(image)
    small = [name for name, images in groups.items() if len(images) < len(FRACTIONS)]
    for name in small:
        groups.setdefault(SMALL_GROUP, []).extend(groups.pop(name))
    if SMALL_GROUP in groups and len(groups[SMALL_GROUP]) < len(FRACTIONS):
        from .layouts import LayoutError

        raise LayoutError(f"{data.root}: too few images to hold out ({len(data.images)}); each part (train, "
                          f"calibration, test) needs images")
    return groups


def stage(data: SegData, split: Split, folder: Path, size: int, resize: str) -> None:
    """``folder/img_dir/<part>`` and ``folder/ann_dir/<part>`` (train, calibration) at ``size``; masks padded 255."""
    from .stage import stage_images

    for part in ("train", "calibration"):
        images = [data.root / f for f in split.files(part)]
        stage_images(images, folder / "img_dir" / part, size, resize, masks=data.masks,
                     mask_folder=folder / "ann_dir" / part, mask_pad=255)


def unet_model(options: SegmentorOptions, num_classes: int, *, in_channels: int = 3,
               loss: dict | None = None) -> dict[str, Any]:
    """mmseg's ``UNet`` backbone (``configs/_base_/models/fcn_unet_s5-d16.py`` at ``--width``) with an ``FCNHead``.

    ``in_channels`` and ``loss`` are what ARCD's stage 2 changes (:mod:`.arcd`); the rest is shared, so
    ``--model unet`` and ``--model arcd`` differ only by the paper's parts.
    """
    norm = dict(type="BN", requires_grad=True)
    return dict(
        backbone=dict(type="UNet", in_channels=in_channels, base_channels=options.width, num_stages=5,
                      strides=(1, 1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2),
                      downsamples=(True, True, True, True), enc_dilations=(1, 1, 1, 1, 1),
                      dec_dilations=(1, 1, 1, 1), with_cp=False, conv_cfg=None, norm_cfg=norm,
                      act_cfg=dict(type="ReLU"), upsample_cfg=dict(type="InterpConv"), norm_eval=False),
        decode_head=dict(type="FCNHead", in_channels=options.width, in_index=4, channels=options.width, num_convs=1,
                         concat_input=False, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm,
                         align_corners=False,
                         loss_decode=loss or dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode="whole"))


def seg_loader(staged: Path, part: str, pipeline: list, shuffle: bool, batch_size: int,
               dataset: dict[str, Any]) -> dict[str, Any]:
    """A dataloader over ``staged/img_dir/<part>`` (and ``ann_dir/<part>`` when ``dataset`` has masks)."""
    return dict(batch_size=batch_size if shuffle else 1, num_workers=0, persistent_workers=False,
                sampler=dict(type="DefaultSampler", shuffle=shuffle),
                dataset=dict(data_root=str(staged), img_suffix=".png", pipeline=pipeline, **dataset))


def masks_dataset(classes: Sequence[str], part: str) -> dict[str, Any]:
    """mmseg's ``BaseSegDataset`` on the staged images and masks of ``part``, with the user's class names."""
    return dict(type="BaseSegDataset", metainfo=dict(classes=tuple(classes)), seg_map_suffix=".png",
                reduce_zero_label=False, data_prefix=dict(img_path=f"img_dir/{part}", seg_map_path=f"ann_dir/{part}"))


def masks_loaders(staged: Path, classes: Sequence[str], train_pipeline: list, test_pipeline: list,
                  batch_size: int) -> dict[str, Any]:
    """Training on the staged train part, validation (mIoU) on the calibration part: both segmentor configs'."""
    return {"train_dataloader": seg_loader(staged, "train", train_pipeline, True, batch_size,
                                           masks_dataset(classes, "train")),
            "val_dataloader": seg_loader(staged, "calibration", test_pipeline, False, 1,
                                         masks_dataset(classes, "calibration")),
            "val_evaluator": dict(type="IoUMetric", iou_metrics=["mIoU"])}


def epoch_schedule(epochs: int, seed: int) -> dict[str, Any]:
    """The epoch loop, one validation at the end, a checkpoint per epoch (what resume and progress read)."""
    return {
        "train_cfg": dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=epochs),
        "val_cfg": dict(type="ValLoop"),
        "default_hooks": dict(logger=dict(type="LoggerHook", interval=10),
                              checkpoint=dict(type="CheckpointHook", by_epoch=True, interval=1, max_keep_ckpts=1)),
        "randomness": dict(seed=seed, deterministic=False),
    }


def write_mmseg_config(path: Path, values: dict[str, Any], what: str) -> Path:
    """An mmseg config file of ``values`` over mmseg's default runtime (atomically)."""
    from defect_plugins.fileio import atomic_write_text

    from .distributed import backend

    lines = [f"# Written by defect-fit segmentor ({what}): one run, mmseg's Runner.",
             "_base_ = ['mmseg::_base_/default_runtime.py']",
             "default_scope = 'mmseg'",
             "custom_imports = " + repr(dict(imports=["defect_plugins.seg", "defect_plugins.fit.rank_hook"],
                                             allow_failed_imports=False)),
             # merged into the base's env_cfg; used with --nproc > 1 (NCCL needs CUDA)
             "env_cfg = " + repr(dict(dist_cfg=dict(backend=backend()))),
             "custom_hooks = " + repr([dict(type="FitRankRecordHook")])]  # what each process trained on (--nproc)
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_config(path: Path, *, classes: Sequence[str], staged: Path, options: SegmentorOptions) -> Path:
    """The mmseg config of a plain U-Net fit (atomically)."""
    model = dict(type="EncoderDecoder",
                 data_preprocessor=dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
                                        size=(options.image_size,) * 2),
                 **unet_model(options, len(classes)))
    train_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                      dict(type="RandomFlip", prob=0.5, direction="horizontal"),
                      dict(type="RandomFlip", prob=0.5, direction="vertical"), dict(type="PackSegInputs")]
    test_pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="PackSegInputs")]
    values: dict[str, Any] = {
        "model": model,
        **masks_loaders(staged, classes, train_pipeline, test_pipeline, options.batch_size),
        "optim_wrapper": dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=options.lr, momentum=0.9,
                                                                  weight_decay=5e-4)),
        "param_scheduler": [dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=options.epochs, by_epoch=True,
                                 convert_to_iter_based=True)],
        **epoch_schedule(options.epochs, options.seed),
    }
    return write_mmseg_config(path, values, "plain U-Net")


def _train_arcd(data: SegData, staged: Path, work: Path,
                options: SegmentorOptions) -> tuple[Path, Path, float, str]:
    """ARCD's two stages through mmseg's Runner; the stage-2 config and checkpoint, seconds, the model's name."""
    from .arcd import reconstructor_width, write_stage1_config, write_stage2_config
    from .openmmlab import train_openmmlab

    epochs1 = options.stage1_epochs or options.epochs
    config1 = write_stage1_config(work / "config_stage1.py", staged=staged, options=options, epochs=epochs1)
    options.log(f"[fit] ARCD stage 1: reconstructor (width {reconstructor_width(options)}), {epochs1} epochs")
    recon, seconds1 = train_openmmlab("mmseg", config1, work / "train_stage1", epochs1, options.log, options.dist)
    config = write_stage2_config(work / "config.py", classes=data.classes, staged=staged, options=options,
                                 reconstructor_checkpoint=recon)
    options.log(f"[fit] ARCD stage 2: UNet (width {options.width}) on image + reconstruction, focal loss, "
                f"{options.epochs} epochs")
    checkpoint, seconds2 = train_openmmlab("mmseg", config, work / "train", options.epochs, options.log, options.dist)
    name = (f"ARCD: reconstructor width {reconstructor_width(options)} + mmseg UNet width {options.width}, FCNHead, "
            f"focal loss")
    return config, checkpoint, seconds1 + seconds2, name


def _stage1_facts(options: SegmentorOptions, work: Path) -> dict[str, Any]:
    """What the card says of ARCD's stage 1 (nothing for a plain U-Net)."""
    if options.model != "arcd":
        return {}
    from .arcd import reconstructor_width

    return {"stage1": {"epochs": options.stage1_epochs or options.epochs,
                       "reconstructor_width": reconstructor_width(options),
                       "images": "every training image (defects included), simulated anomalies on top",
                       "config": (work / "config_stage1.py").read_text()}}


def evaluate(model_xml: Path, data: SegData, files: Sequence[str], min_area: int) -> dict[str, Any]:
    """IoU per class at each image's own resolution, and each image's defect decision (the runtime rule)."""
    from defect_plugins.deploy.ir_files import read_metadata
    from defect_plugins.deploy.runtime import openvino_predict
    from defect_plugins.imaging.files import read_bgr
    from defect_plugins.imaging.geometry import from_model_grid, to_input
    from defect_plugins.imaging.quantify import quantify_mask

    from .layouts import read_mask

    metadata = read_metadata(model_xml)
    predict = openvino_predict(model_xml, "f32")
    classes = len(data.classes)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    decisions = {}
    for name in files:
        image = read_bgr(data.root / name)
        outputs = predict(to_input(image, tuple(metadata.input_size), metadata.resize))
        labels = from_model_grid(np.asarray(outputs[0])[0].argmax(0), image.shape[:2], metadata.resize)
        truth = read_mask(data.masks[data.root / name])
        valid = truth != 255
        confusion += np.bincount(classes * truth[valid].astype(np.int64) + labels[valid],
                                 minlength=classes * classes).reshape(classes, classes)
        defect = any(quantify_mask(labels == index, min_area=min_area).regions for index in range(1, classes))
        decisions[name] = "defect" if defect else "good"
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    iou = {data.classes[i]: (float(inter[i] / union[i]) if union[i] else None) for i in range(classes)}
    present = [v for v in iou.values() if v is not None]
    return {"iou": iou, "miou": float(np.mean(present)) if present else None, "decisions": decisions}


def part_rates(split: Split, part: str, decisions: dict[str, str]) -> dict[str, Any]:
    """False-reject rate of the part's defect-free images and recall of its defective ones (Clopper-Pearson)."""
    from .calibration import rate

    good = split.files(part, GOOD) if GOOD in split.groups(part) else []
    defective = [f for g in split.groups(part) if g != GOOD for f in split.files(part, g)]
    return {"false_reject": rate(sum(decisions[f] == "defect" for f in good), len(good)).to_dict(),
            "recall": rate(sum(decisions[f] == "defect" for f in defective), len(defective)).to_dict()}


def fit_segmentor(data_root: str | Path, out: str | Path, options: SegmentorOptions, *,
                  work_dir: Path | None = None, overwrite: bool = False, keep_work: bool = False,
                  argv: Sequence[str] | None = None) -> Path:
    """The whole ``defect-fit segmentor``: layout, split, training, export, figures, INT8, bundle."""
    import shutil
    import time

    from defect_plugins.deploy.bundle import staging_dir, write_bundle
    from defect_plugins.deploy.export import export_model, load_model

    from .assemble import (check_out, command_line, finish, fmt_rate, held_out_split, quantize_checked, resave,
                           versions, work_folder, write_card, write_predictions, write_rules)
    from .assemble import overhead
    from .distributed import batch_line
    from .layouts import check_mask_values, find_seg_data
    from .openmmlab import rank_records, train_openmmlab
    from .split import split_groups
    from .stage import metadata_resize

    started = time.perf_counter()
    out = check_out(out, overwrite)
    if options.epochs < 1 or (options.stage1_epochs is not None and options.stage1_epochs < 1):
        raise ValueError(f"--epochs and --stage1-epochs must be at least 1, got {options.epochs} and "
                         f"{options.stage1_epochs}")
    if options.model not in MODELS:
        raise ValueError(f"--model must be one of {MODELS}, got {options.model!r}")
    if options.model == "arcd":
        from .arcd import check_size

        check_size(options)
    data = find_seg_data(data_root, options.classes)
    check_mask_values(data)
    work = work_folder(out, work_dir)
    split = held_out_split(work, data.root,
                           lambda: split_groups(data.root, dominant_groups(data), FRACTIONS, options.seed), options.log)
    counts = split.counts()
    options.log(f"[fit] {data.root}: classes {list(data.classes)}; split by dominant class: " + "; ".join(
        f"{part} " + ", ".join(f"{g} {n}" for g, n in groups.items()) for part, groups in counts.items()))
    staged = work / "staged"
    stage_started = time.perf_counter()
    stage(data, split, staged, options.image_size, options.resize)
    stage_seconds = time.perf_counter() - stage_started
    options.log(batch_line(options.dist, options.batch_size))
    if options.model == "arcd":
        config, checkpoint, train_seconds, model_name = _train_arcd(data, staged, work, options)
    else:
        config = write_config(work / "config.py", classes=data.classes, staged=staged, options=options)
        options.log(f"[fit] mmseg UNet (width {options.width}), {options.epochs} epochs")
        checkpoint, train_seconds = train_openmmlab("mmseg", config, work / "train", options.epochs, options.log,
                                                    options.dist)
        model_name = f"mmseg EncoderDecoder, UNet width {options.width}, FCNHead"
    if not options.dist.writes_bundle:
        options.log(f"[fit] machine {options.dist.node_rank}: training done; machine 0 exports and writes the bundle")
        return out

    size = (options.image_size, options.image_size)
    fp32 = work / "ir" / "fp32.xml"
    if not fp32.is_file():
        loaded = load_model("segmentor", config=config, checkpoint=checkpoint, input_size=size,
                            class_names=list(data.classes))
        loaded.metadata.resize = metadata_resize(options.resize)
        export_model("segmentor", fp32, loaded=loaded)
    test_fp32 = evaluate(fp32, data, split.files("test"), options.min_area)
    calibration_fp32 = evaluate(fp32, data, split.files("calibration"), options.min_area)
    decisions = {**calibration_fp32["decisions"], **test_fp32["decisions"]}
    evidence = {"FP32": {"test": {**part_rates(split, "test", decisions), "iou": test_fp32["iou"],
                                  "miou": test_fp32["miou"]},
                         "calibration": {**part_rates(split, "calibration", decisions),
                                         "iou": calibration_fp32["iou"], "miou": calibration_fp32["miou"]}}}
    options.log(f"[fit] FP32: test mIoU {_fmt(evidence['FP32']['test']['miou'])}")

    bundle_stage = staging_dir(out)
    try:
        resave(fp32, bundle_stage / "model" / "fp32.xml", {})
        models = {"FP32": "model/fp32.xml"}
        int8_note: dict[str, Any] = {"accepted": False, "reason": "not asked (--no-int8)"}
        quant_started = time.perf_counter()
        if options.int8:
            # the guard's metric (mIoU) on the calibration part, in mmseg's img_dir / ann_dir layout
            int8_xml, int8_note = quantize_checked(fp32, work / "ir" / "int8.xml", staged / "img_dir" / "train",
                                                   staged, options.int8_tolerance, options.log)
            if int8_xml is not None:
                # judged on the calibration part, as the other families: the test part only reports
                calibration8 = evaluate(int8_xml, data, split.files("calibration"), options.min_area)
                lost = (calibration_fp32["miou"] or 0.0) - (calibration8["miou"] or 0.0)
                if lost <= options.int8_tolerance:
                    resave(int8_xml, bundle_stage / "model" / "int8.xml", {})
                    models["INT8"] = "model/int8.xml"
                    test8 = evaluate(int8_xml, data, split.files("test"), options.min_area)
                    evidence["INT8"] = {"test": {**part_rates(split, "test", test8["decisions"]), "iou": test8["iou"],
                                                 "miou": test8["miou"]}}
                else:
                    int8_note.update(accepted=False, reason=f"INT8 loses {lost:.3f} calibration mIoU "
                                                            f"(tolerance {options.int8_tolerance})")
        quant_seconds = time.perf_counter() - quant_started
        default = "INT8" if "INT8" in models else "FP32"
        rows = [{"file": name, "part": part, "group": group, "decision_fp32": decisions[name]}
                for part in ("calibration", "test") for group in split.groups(part)
                for name in split.files(part, group)]
        write_predictions(bundle_stage / "predictions.csv", rows)
        split.save(bundle_stage / "split.json")
        write_rules(bundle_stage / "rules.yaml", data.classes)
        total_seconds = time.perf_counter() - started
        card = {
            "family": "segmentor", "model": model_name,
            "command": command_line(argv), "versions": versions(), "classes": list(data.classes),
            "data": {"root": str(data.root), **data.summary()},
            "split": {"seed": options.seed, "counts": counts, "fractions": FRACTIONS, "by": "dominant defect class"},
            "image_size": options.image_size, "resize": options.resize,
            "resize_metadata": metadata_resize(options.resize),
            "training": {"epochs": options.epochs, "train_seconds": round(train_seconds, 1),
                         "processes": {**options.dist.record(options.batch_size, lr_rule(options)),
                                       "ranks": rank_records(work / "train")},
                         "config": config.read_text(), **_stage1_facts(options, work)},
            "decision": f"defect when a defect class covers a region of at least {options.min_area} pixels "
                        "(not calibrated: no continuous score)",
            "threshold": {"default_precision": default, "by_precision": {p: {} for p in models}},
            "evidence": evidence, "int8": int8_note,
            "timing": {"total_seconds": round(total_seconds, 1), "train_seconds": round(train_seconds, 1),
                       "stage_seconds": round(stage_seconds, 1), "int8_seconds": round(quant_seconds, 1),
                       **overhead(total_seconds, train_seconds)},
        }
        write_card(bundle_stage, card, render_card(card))
        manifest = {
            "family": "segmentor", "models": models, "default_precision": default, "thresholds": {},
            "ok_class": None, "labels": list(data.classes), "max_false_reject": None, "rules": "rules.yaml",
            "card": "card.md", "card_json": "card.json", "split": "split.json", "predictions": "predictions.csv",
            "input_size": list(size), "resize": metadata_resize(options.resize),
        }
        write_bundle(bundle_stage, manifest, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(bundle_stage, ignore_errors=True)
        raise
    test = evidence[default]["test"]
    options.log(f"[fit] bundle {out} ({default}): test mIoU {_fmt(test['miou'])}; false-reject "
                f"{fmt_rate(test['false_reject'])}; recall {fmt_rate(test['recall'])}")
    finish(work, out, keep_work)
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def render_card(card: dict[str, Any]) -> str:
    """``card.md`` of a segmentor bundle (the same facts as ``card.json``)."""
    from .assemble import fmt_rate, overhead_text
    from .distributed import card_line

    default = card["threshold"]["default_precision"]
    test = card["evidence"][default]["test"]
    miou = f"{test['miou']:.4f}" if test.get("miou") is not None else "n/a"
    lines = [f"# Model card: {card['model']} ({len(card['classes'])} classes)", "",
             f"Fitted by `{card['command']}`.", "", "## On the held-out test images", "",
             f"The line runs the **{default}** model; a part is {card['decision']}.", "",
             "| measure on the test part | value |", "|---|---|", f"| mIoU | {miou} |",
             f"| defect-free parts rejected (false reject) | {fmt_rate(test['false_reject'])} |",
             f"| defective parts caught (recall) | {fmt_rate(test['recall'])} |"]
    lines += [f"| IoU, {name} | {value:.4f} |" if value is not None else f"| IoU, {name} | n/a (absent) |"
              for name, value in test["iou"].items()]
    timing = card["timing"]
    lines += ["", "The intervals are exact (Clopper-Pearson) 95 % intervals for the number of images shown.", "",
              "## Data and training", "",
              f"- folder `{card['data']['root']}`; split (seed {card['split']['seed']}, by dominant class): "
              + "; ".join(
                  f"{part}: " + ", ".join(f"{g} {n}" for g, n in groups.items())
                  for part, groups in card["split"]["counts"].items()),
              f"- image size {card['image_size']} px, resize {card['resize']} (`{card['resize_metadata']}` in the IR)",
              f"- {card['training']['epochs']} epochs, {card['training']['train_seconds']} s of training"
              + (f" (ARCD: stage 1, the reconstructor of width {card['training']['stage1']['reconstructor_width']}, "
                 f"{card['training']['stage1']['epochs']} epochs on {card['training']['stage1']['images']}; "
                 f"then stage 2)" if "stage1" in card["training"] else ""),
              card_line(card["training"].get("processes")),
              f"- INT8: {'kept' if default == 'INT8' else 'not kept (' + str(card['int8'].get('reason')) + ')'}",
              "", "## Time", "", f"{timing['total_seconds']} s in all, {timing['train_seconds']} s training; the rest "
              f"is {overhead_text(timing)}.", "",
              "## Versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), "",
              "The SHA-256 of every file of the bundle is in `bundle.json` (checked at every load).", ""]
    return "\n".join(lines)
