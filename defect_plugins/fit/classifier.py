"""``defect-fit classifier``: one folder per class -> a calibrated mmpretrain classifier bundle.

Training is mmpretrain's own Runner (``tools/train.py`` through :mod:`defect_plugins.runners.launcher`,
resumed from its last epoch when the command is given again), on a config written for the user's
classes (:func:`write_config`): a torchvision-layout ResNet (``--backbone``), global average pooling
and a linear head, SGD with a linear warm-up then cosine decay over ``--epochs`` (the schedule follows
the epochs), horizontal and vertical flips. When the training counts are unbalanced beyond
:data:`IMBALANCE_RATIO` (largest class / smallest), the head uses the RKD-SARSN paper's
imbalance-adaptive loss (:class:`defect_plugins.cls.losses.ImbalanceAdaptiveLoss` with its weight hook),
the one seed method this project measured to help: +2.0 points of top-1 over cross-entropy on a long-tailed
NEU-CLS split, every seed (``defect_plugins/cls/README.md``); otherwise plain cross-entropy.

With ``--ok-class NAME`` (the folder of good parts), a part is OK when ``P(NAME)`` is at least the
bundle's ``ok`` threshold, set on the calibration part for the target false-reject rate; the defect
score of :mod:`.evidence` is ``1 - P(NAME)``. Without an OK class the bundle decides by the top class.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .distributed import DistributedOptions
from .layouts import ClassData
from .split import Split, split_groups

FRACTIONS = {"train": 0.6, "calibration": 0.2, "test": 0.2}
IMBALANCE_RATIO = 3.0  # largest / smallest training class above which the imbalance-adaptive loss is used
BACKBONES = {"resnet18": (18, 512), "resnet34": (34, 512), "resnet50": (50, 2048)}


@dataclass
class ClassifierOptions:
    """What ``defect-fit classifier`` takes besides the data and the output (its command-line options)."""

    ok_class: str | None = None
    backbone: str = "resnet18"
    weights: str | None = "imagenet"  # "imagenet" (torchvision download), a local state dict, or None (random)
    image_size: int = 224
    resize: str = "letterbox"
    epochs: int = 30
    batch_size: int = 16
    lr: float = 0.01
    seed: int = 0
    device: str = "auto"
    max_false_reject: float = 0.01
    int8: bool = True
    int8_tolerance: float = 0.02
    dist: DistributedOptions = field(default_factory=DistributedOptions)
    log: Callable[[str], None] = field(default=print, repr=False)


def lr_rule(options: ClassifierOptions) -> str:
    """The card's learning-rate rule: ``--lr`` is the global batch's, never rescaled (mmengine's auto_scale_lr off)."""
    world = options.dist.world_size
    rule = f"--lr {options.lr:g} as given, for the global batch (no automatic scaling"
    if world > 1:
        rule += f"; the linear rule would give {options.lr * world:g} to keep one process's lr per image"
    return rule + ")"


def make_split(data: ClassData, seed: int) -> Split:
    """Every class three ways: train / calibration / test (stratified, seeded, by file)."""
    return split_groups(data.root, dict(data.images), FRACTIONS, seed)


def stage(data: ClassData, split: Split, folder: Path, size: int, resize: str) -> dict[str, Path]:
    """Each part's images at ``size`` under ``folder/<part>/<class>/``, and mmpretrain annotation files."""
    from defect_plugins.fileio import atomic_write_text

    from .stage import stage_images

    annotations = {}
    for part in ("train", "calibration"):
        lines = []
        for label, name in enumerate(data.classes):
            staged = stage_images([data.root / f for f in split.files(part, name)], folder / part / name, size, resize)
            lines += [f"{part}/{name}/{s.staged.name} {label}" for s in staged]
        annotations[part] = atomic_write_text(folder / f"{part}.txt", "\n".join(lines) + "\n")
    return annotations


def write_config(path: Path, *, classes: Sequence[str], staged: Path, annotations: dict[str, Path],
                 train_counts: Sequence[int], options: ClassifierOptions) -> tuple[Path, str]:
    """The mmpretrain config of this fit (atomically); returns it and the loss chosen."""
    from defect_plugins.fileio import atomic_write_text

    from .distributed import backend
    from .domain_teacher import warmup_cosine

    depth, channels = BACKBONES[options.backbone]
    backbone: dict[str, Any] = dict(type="ResNet", depth=depth, num_stages=4, out_indices=(3,), style="pytorch")
    if options.weights == "imagenet":
        backbone["init_cfg"] = dict(type="Pretrained", checkpoint=f"torchvision://{options.backbone}")
    elif options.weights:
        backbone["init_cfg"] = dict(type="Pretrained", checkpoint=str(Path(options.weights).resolve()))
    ratio = max(train_counts) / max(1, min(train_counts))
    if ratio > IMBALANCE_RATIO:
        loss = dict(type="ImbalanceAdaptiveLoss", num_classes=len(classes), imbalance_ratio=None,
                    k_mode="per_class", weight_offset=1.0, beta=0.1, mse_weight=1.0)
        loss_name = f"imbalance-adaptive (training classes {ratio:.1f}:1, above {IMBALANCE_RATIO}:1)"
    else:
        loss = dict(type="CrossEntropyLoss", loss_weight=1.0)
        loss_name = f"cross-entropy (training classes {ratio:.1f}:1, at most {IMBALANCE_RATIO}:1)"
    model = dict(type="ImageClassifier", backbone=backbone, neck=dict(type="GlobalAveragePooling"),
                 head=dict(type="LinearClsHead", num_classes=len(classes), in_channels=channels, loss=loss,
                           topk=(1,)))
    train_pipeline = [dict(type="CheckedLoadImageFromFile"), dict(type="RandomFlip", prob=0.5, direction="horizontal"),
                      dict(type="RandomFlip", prob=0.5, direction="vertical"), dict(type="PackInputs")]
    test_pipeline = [dict(type="CheckedLoadImageFromFile"), dict(type="PackInputs")]

    def loader(ann: Path, pipeline: list, shuffle: bool) -> dict[str, Any]:
        return dict(batch_size=options.batch_size, num_workers=0,
                    dataset=dict(type="CustomDataset", data_root="", data_prefix=str(staged), ann_file=str(ann),
                                 metainfo=dict(classes=list(classes)), pipeline=pipeline),
                    sampler=dict(type="DefaultSampler", shuffle=shuffle))

    values: dict[str, Any] = {
        "default_scope": "mmpretrain",
        "custom_imports": dict(imports=["defect_plugins.cls", "defect_plugins.fit.rank_hook"],
                               allow_failed_imports=False),
        "model": model,
        # ImageNet statistics, BGR -> RGB: what torchvision's pretrained ResNets expect
        "data_preprocessor": dict(num_classes=len(classes), mean=[123.675, 116.28, 103.53],
                                  std=[58.395, 57.12, 57.375], to_rgb=True),
        "train_dataloader": loader(annotations["train"], train_pipeline, True),
        "val_dataloader": loader(annotations["calibration"], test_pipeline, False),
        "val_evaluator": dict(type="Accuracy", topk=(1,)),
        "optim_wrapper": dict(optimizer=dict(type="SGD", lr=options.lr, momentum=0.9, weight_decay=5e-4)),
        "param_scheduler": warmup_cosine(options.epochs),
        "train_cfg": dict(by_epoch=True, max_epochs=options.epochs, val_interval=options.epochs),
        "val_cfg": {},
        "default_hooks": dict(logger=dict(type="LoggerHook", interval=10),
                              checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=1)),
        "env_cfg": dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                        dist_cfg=dict(backend=backend(options.device))),  # used with --nproc > 1
        "randomness": dict(seed=options.seed, deterministic=False),
    }
    values["custom_hooks"] = [dict(type="FitRankRecordHook")]  # what each process trained on (--nproc)
    if loss["type"] == "ImbalanceAdaptiveLoss":
        values["custom_hooks"].append(dict(type="ImbalanceAdaptiveWeightHook", interval=1, by_epoch=True))
    lines = ["# Written by defect-fit classifier (defect_plugins/fit/classifier.py): one run, mmpretrain's Runner.",
             "_base_ = ['mmpretrain::_base_/default_runtime.py']"]
    lines += [f"{key} = {value!r}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, "\n".join(lines) + "\n"), loss_name


def probabilities(outputs: Sequence[np.ndarray], metadata: Any) -> tuple[float, np.ndarray]:  # noqa: ANN401
    """A classifier IR's class probabilities; the defect score is filled in by :func:`ok_score`."""
    return float("nan"), np.asarray(outputs[0], dtype=np.float64).reshape(-1)


def with_ok_scores(scores: Any, ok_class: str | None) -> Any:  # noqa: ANN401
    """``scores`` with the defect score ``1 - P(ok_class)`` filled in (NaN without an OK class)."""
    if ok_class is not None:
        scores.scores = 1.0 - scores.probabilities[:, scores.class_names.index(ok_class)]
    return scores


def class_figures(split: Split, scores: Any, part: str) -> dict[str, Any]:  # noqa: ANN401
    """Top-1 accuracy, recall per class (with Clopper-Pearson intervals) and the confusion matrix of ``part``."""
    from .calibration import rate

    names = scores.class_names
    confusion = np.zeros((len(names), len(names)), dtype=int)
    per_class = {}
    for index, name in enumerate(names):
        files = split.files(part, name) if name in split.groups(part) else []
        predicted = scores.predicted(files) if files else []
        for p in predicted:
            confusion[index, names.index(p)] += 1
        per_class[name] = rate(sum(p == name for p in predicted), len(files)).to_dict()
    total = int(confusion.sum())
    return {"top1": rate(int(np.trace(confusion)), total).to_dict(), "recall_by_class": per_class,
            "confusion": {"classes": list(names), "rows_true_columns_predicted": confusion.tolist()}}


def fit_classifier(data_root: str | Path, out: str | Path, options: ClassifierOptions, *,
                   work_dir: Path | None = None, overwrite: bool = False, keep_work: bool = False,
                   argv: Sequence[str] | None = None) -> Path:
    """The whole ``defect-fit classifier``: layout, split, training, export, calibration, INT8, bundle."""
    import shutil

    from defect_plugins.deploy.bundle import staging_dir, write_bundle
    from defect_plugins.deploy.export import export_model, load_model

    from .anomaly import check_enough_good
    from .distributed import batch_line
    from .openmmlab import rank_records, train_openmmlab
    from .assemble import (check_out, command_line, finish, fmt_rate, held_out_split, quantize_checked, resave,
                           versions, work_folder, write_card, write_predictions, write_rules)
    from .assemble import overhead
    from .evidence import calibrate
    from .layouts import LayoutError, find_class_data
    from .scoring import score_files
    from .stage import metadata_resize

    started = time.perf_counter()
    out = check_out(out, overwrite)
    if options.backbone not in BACKBONES:
        raise ValueError(f"--backbone {options.backbone!r}: expected one of {sorted(BACKBONES)}")
    if options.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {options.epochs}")
    data = find_class_data(data_root)
    if options.ok_class is not None and options.ok_class not in data.classes:
        raise LayoutError(f"--ok-class {options.ok_class!r}: no such class folder in {data.root}; "
                          f"the classes are {list(data.classes)}")
    work = work_folder(out, work_dir)
    split = held_out_split(work, data.root, lambda: make_split(data, options.seed), options.log)
    counts = split.counts()
    options.log(f"[fit] {data.root}: {len(data.classes)} classes; " + "; ".join(
        f"{part} " + ", ".join(f"{g} {n}" for g, n in groups.items()) for part, groups in counts.items()))
    if options.ok_class is not None:
        check_enough_good(split, options.max_false_reject, good=options.ok_class)
    staged = work / "staged"
    stage_started = time.perf_counter()
    annotations = stage(data, split, staged, options.image_size, options.resize)
    stage_seconds = time.perf_counter() - stage_started
    train_counts = [counts["train"].get(name, 0) for name in data.classes]
    config, loss_name = write_config(work / "config.py", classes=data.classes, staged=staged,
                                     annotations=annotations, train_counts=train_counts, options=options)
    options.log(f"[fit] mmpretrain {options.backbone}, {options.epochs} epochs, loss: {loss_name}")
    options.log(batch_line(options.dist, options.batch_size))
    checkpoint, train_seconds = train_openmmlab("mmpretrain", config, work / "train", options.epochs, options.log,
                                                options.dist)
    if not options.dist.writes_bundle:
        options.log(f"[fit] machine {options.dist.node_rank}: training done; machine 0 exports and writes the bundle")
        return out

    size = (options.image_size, options.image_size)
    fp32 = work / "ir" / "fp32.xml"
    if not fp32.is_file():
        loaded = load_model("classifier", config=config, checkpoint=checkpoint, input_size=size,
                            class_names=list(data.classes))
        loaded.metadata.resize = metadata_resize(options.resize)
        export_model("classifier", fp32, loaded=loaded)
    files = split.files("calibration") + split.files("test")
    scores = with_ok_scores(score_files(fp32, data.root, files, probabilities), options.ok_class)
    evidence: dict[str, Any] = {"test": class_figures(split, scores, "test"),
                                "calibration": class_figures(split, scores, "calibration")}
    thresholds: dict[str, dict[str, float]] = {"FP32": {}}
    if options.ok_class is not None:
        evidence["ok"] = calibrate(split, scores, options.ok_class, options.max_false_reject)
        thresholds["FP32"] = {"ok": float(1.0 - evidence["ok"]["threshold"])}
    evidence_by_precision = {"FP32": evidence}

    bundle_stage = staging_dir(out)
    try:
        resave(fp32, bundle_stage / "model" / "fp32.xml", thresholds["FP32"])
        models = {"FP32": "model/fp32.xml"}
        int8_note: dict[str, Any] = {"accepted": False, "reason": "not asked (--no-int8)"}
        quant_started = time.perf_counter()
        if options.int8:
            int8_xml, int8_note = quantize_checked(fp32, work / "ir" / "int8.xml", staged / "train",
                                                   staged / "calibration", options.int8_tolerance, options.log)
            if int8_xml is not None:
                scores8 = with_ok_scores(score_files(int8_xml, data.root, files, probabilities), options.ok_class)
                evidence8: dict[str, Any] = {"test": class_figures(split, scores8, "test"),
                                             "calibration": class_figures(split, scores8, "calibration")}
                if options.ok_class is not None:
                    evidence8["ok"] = calibrate(split, scores8, options.ok_class, options.max_false_reject)
                    lost = evidence["ok"]["calibration"]["recall"]["value"] - \
                        evidence8["ok"]["calibration"]["recall"]["value"]
                else:
                    lost = evidence["calibration"]["top1"]["value"] - evidence8["calibration"]["top1"]["value"]
                int8_note["loss_on_calibration"] = lost
                if lost <= options.int8_tolerance:
                    thresholds["INT8"] = ({"ok": float(1.0 - evidence8["ok"]["threshold"])}
                                          if options.ok_class is not None else {})
                    resave(int8_xml, bundle_stage / "model" / "int8.xml", thresholds["INT8"])
                    models["INT8"] = "model/int8.xml"
                    evidence_by_precision["INT8"] = evidence8
                else:
                    int8_note.update(accepted=False, reason=f"INT8 loses {lost:.3f} on the calibration part "
                                                            f"(tolerance {options.int8_tolerance})")
                    options.log(f"[fit] INT8 not kept: {int8_note['reason']}")
        quant_seconds = time.perf_counter() - quant_started
        default = "INT8" if "INT8" in models else "FP32"

        rows = []
        ok_index = scores.class_names.index(options.ok_class) if options.ok_class else None
        for part in ("calibration", "test"):
            for group in split.groups(part):
                chosen = split.files(part, group)
                for name, predicted in zip(chosen, scores.predicted(chosen)):
                    probs = scores.probabilities[scores.files.index(name)]
                    row = {"file": name, "part": part, "group": group, "label": group, "predicted_fp32": predicted,
                           "confidence_fp32": float(probs.max())}
                    if ok_index is not None:
                        row["p_ok_fp32"] = float(probs[ok_index])
                        row["decision_fp32"] = ("good" if probs[ok_index] >= thresholds["FP32"]["ok"]
                                                else "defect")
                    rows.append(row)
        write_predictions(bundle_stage / "predictions.csv", rows)
        split.save(bundle_stage / "split.json")
        write_rules(bundle_stage / "rules.yaml", data.classes)
        total_seconds = time.perf_counter() - started
        card = {
            "family": "classifier", "model": f"mmpretrain ImageClassifier, {options.backbone}",
            "command": command_line(argv), "versions": versions(),
            "data": {"root": str(data.root), **data.summary()}, "classes": list(data.classes),
            "ok_class": options.ok_class,
            "split": {"seed": options.seed, "counts": counts, "fractions": FRACTIONS},
            "image_size": options.image_size, "resize": options.resize,
            "resize_metadata": metadata_resize(options.resize),
            "training": {"epochs": options.epochs, "loss": loss_name, "weights": options.weights or "random",
                         "batch_size": options.batch_size, "lr": options.lr, "train_seconds": round(train_seconds, 1),
                         "processes": {**options.dist.record(options.batch_size, lr_rule(options)),
                                       "ranks": rank_records(work / "train")},
                         "config": config.read_text()},
            "threshold": {"max_false_reject": options.max_false_reject if options.ok_class else None,
                          "default_precision": default, "by_precision": thresholds,
                          "set_on": "calibration part" if options.ok_class else "none: the top class decides"},
            "evidence": evidence_by_precision, "int8": int8_note,
            "timing": {"total_seconds": round(total_seconds, 1), "train_seconds": round(train_seconds, 1),
                       "stage_seconds": round(stage_seconds, 1), "int8_seconds": round(quant_seconds, 1),
                       **overhead(total_seconds, train_seconds)},
        }
        write_card(bundle_stage, card, render_card(card))
        manifest = {
            "family": "classifier", "models": models, "default_precision": default,
            "thresholds": thresholds[default], "thresholds_by_precision": thresholds,
            "ok_class": options.ok_class, "labels": list(data.classes),
            "max_false_reject": options.max_false_reject if options.ok_class else None,
            "rules": "rules.yaml", "card": "card.md", "card_json": "card.json", "split": "split.json",
            "predictions": "predictions.csv", "input_size": list(size), "resize": metadata_resize(options.resize),
        }
        write_bundle(bundle_stage, manifest, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(bundle_stage, ignore_errors=True)
        raise
    chosen = evidence_by_precision[default]
    summary = f"test top-1 {fmt_rate(chosen['test']['top1'])}"
    if options.ok_class is not None:
        summary += (f"; OK if P({options.ok_class}) >= {thresholds[default]['ok']:.4f}: test false-reject "
                    f"{fmt_rate(chosen['ok']['test']['false_reject'])}, "
                    f"recall {fmt_rate(chosen['ok']['test']['recall'])}")
    options.log(f"[fit] bundle {out} ({default}): {summary}")
    finish(work, out, keep_work)
    return out


def render_card(card: dict[str, Any]) -> str:
    """``card.md`` of a classifier bundle (the same facts as ``card.json``)."""
    from .assemble import fmt_rate, overhead_text
    from .distributed import card_line

    default = card["threshold"]["default_precision"]
    evidence = card["evidence"][default]
    test = evidence["test"]
    lines = [f"# Model card: {card['model']} ({len(card['classes'])} classes)", "",
             f"Fitted by `{card['command']}`.", "", "## On the held-out test images", "",
             f"The line runs the **{default}** model. Top-1 accuracy {fmt_rate(test['top1'])}.", "",
             "| class | recall on the test part |", "|---|---|"]
    lines += [f"| {name} | {fmt_rate(rate)} |" for name, rate in test["recall_by_class"].items()]
    if card["ok_class"]:
        ok = evidence["ok"]
        lines += ["", f"A part is **OK** when P({card['ok_class']}) >= "
                      f"**{card['threshold']['by_precision'][default]['ok']:.4f}**, set on "
                      f"{ok['calibration']['images']['good']} calibration images of `{card['ok_class']}` for a "
                      f"false-reject target of {card['threshold']['max_false_reject']:g}.", "",
                  "| measure on the test part | value |", "|---|---|",
                  f"| good parts rejected (false reject) | {fmt_rate(ok['test']['false_reject'])} |",
                  f"| defects caught (recall) | {fmt_rate(ok['test']['recall'])} |"]
        lines += [f"| recall, {g} | {fmt_rate(r)} |" for g, r in ok["test"]["recall_by_type"].items()]
    else:
        lines += ["", "No OK class was named (`--ok-class`): the top class decides and no threshold is calibrated."]
    confusion = test["confusion"]
    lines += ["", "Confusion (rows: true class, columns: predicted):", "",
              "| | " + " | ".join(confusion["classes"]) + " |", "|---" * (len(confusion["classes"]) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
              for name, row in zip(confusion["classes"], confusion["rows_true_columns_predicted"])]
    training, timing = card["training"], card["timing"]
    lines += ["", "The intervals are exact (Clopper-Pearson) 95 % intervals for the number of images shown.", "",
              "## Data and training", "",
              f"- folder `{card['data']['root']}`; split (seed {card['split']['seed']}): " + "; ".join(
                  f"{part}: " + ", ".join(f"{g} {n}" for g, n in groups.items())
                  for part, groups in card["split"]["counts"].items()),
              f"- image size {card['image_size']} px, resize {card['resize']} (`{card['resize_metadata']}` in the IR)",
              f"- {training['epochs']} epochs, loss {training['loss']}, initial weights {training['weights']}, "
              f"{training['train_seconds']} s of training",
              card_line(training.get("processes")),
              f"- INT8: {'kept' if default == 'INT8' else 'not kept (' + str(card['int8'].get('reason')) + ')'}",
              "", "## Time", "", f"{timing['total_seconds']} s in all, {timing['train_seconds']} s training; the rest "
              f"(split, staging, export, scoring, INT8, card) is {overhead_text(timing)}.", "",
              "## Versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), "",
              "The SHA-256 of every file of the bundle is in `bundle.json` (checked at every load).", ""]
    return "\n".join(lines)
