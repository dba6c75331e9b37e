"""``defect-fit anomaly``: defect-free images (and some defective ones) -> a calibrated anomalib model bundle.

Training is anomalib's own: an anomalib image model (AKF-RD by default, or any anomalib image model
by class name: ``ReverseDistillation``, ``Patchcore``, ``Padim``, ...) fitted by anomalib's ``Engine`` on
the training part of the defect-free images, at the size and resize mode of the fit
(:mod:`.stage`). anomalib's post-processor learns its normalisation on the calibration part (good and
defective images), with this package's rank-preserving variant
(:class:`defect_plugins.anomaly.RankPreservingPostProcessor`), so no two scores are tied by a clamp
before the threshold is set. The model is exported with the package's one export path
(:func:`defect_plugins.deploy.export.export_model`) and every figure comes from the exported IR
(:mod:`.scoring`, :mod:`.evidence`).

``--model auto`` fits each candidate and keeps the one with the highest defect recall at the target
false-reject rate **on the calibration part** (never by AUROC); the card lists every candidate's figures
on the test part.
"""
from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .distributed import DistributedOptions
from .layouts import AnomalyData
from .split import Split, split_groups

GOOD = "good"
GOOD_FRACTIONS = {"train": 0.6, "calibration": 0.2, "test": 0.2}
DEFECT_FRACTIONS = {"calibration": 0.5, "test": 0.5}
AKF_RD = "AkfReverseDistillation"
DEFAULT_CANDIDATES = (AKF_RD, "ReverseDistillation", "Patchcore")
DEFAULT_EPOCHS = 30  # gradient-trained models; memory-bank models (PatchCore, PaDiM) make their own one pass


@dataclass
class AnomalyOptions:
    """What ``defect-fit anomaly`` takes besides the data and the output (its command-line options)."""

    model: str = AKF_RD
    candidates: Sequence[str] = DEFAULT_CANDIDATES
    backbone: str = "resnet18"
    teacher_weights: Path | None = None
    pretrained: bool = True
    image_size: int = 256
    resize: str = "letterbox"
    epochs: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    precision: str = "32-true"
    coreset_ratio: float = 0.01
    max_false_reject: float = 0.01
    int8: bool = True
    int8_tolerance: float = 0.02
    num_workers: int = 0
    dist: DistributedOptions = field(default_factory=DistributedOptions)
    log: Callable[[str], None] = field(default=print, repr=False)


# --------------------------------------------------------------------------- data


def make_split(data: AnomalyData, seed: int) -> Split:
    """Good images three ways (train / calibration / test), each defect type two ways (calibration / test)."""
    good = split_groups(data.root, {GOOD: data.good}, GOOD_FRACTIONS, seed)
    defects = split_groups(data.root, dict(data.defects), DEFECT_FRACTIONS, seed)
    return good.merged(defects)


def stage_mvtec(data: AnomalyData, split: Split, stage: Path, size: int, resize: str) -> Path:
    """The training part and the calibration part, resized, in the MVTec AD layout anomalib reads.

    ``stage/train/good``; ``stage/test/good`` and ``stage/test/<type>`` hold the **calibration** part
    (anomalib's validation, which sets its normalisation); ``stage/ground_truth/<type>`` its masks.
    """
    from .stage import stage_images

    stage_images([data.root / f for f in split.files("train", GOOD)], stage / "train" / GOOD, size, resize)
    stage_images([data.root / f for f in split.files("calibration", GOOD)], stage / "test" / GOOD, size, resize)
    for group in split.groups("calibration"):
        if group == GOOD:
            continue
        images = [data.root / f for f in split.files("calibration", group)]
        stage_images(images, stage / "test" / group, size, resize, masks=data.masks or None,
                     mask_folder=stage / "ground_truth" / group if data.masks else None, mask_suffix="_mask",
                     binary_masks=True)
    return stage


def datamodule(stage: Path, options: AnomalyOptions) -> Any:  # noqa: ANN401
    """anomalib's ``MVTecAD`` (with masks) or ``Folder`` (without) over the staged folder; validation = its test."""
    from anomalib.data import Folder, MVTecAD

    common = {"train_batch_size": options.batch_size, "eval_batch_size": options.batch_size,
              "num_workers": options.num_workers, "seed": options.seed}
    if (stage / "ground_truth").is_dir():
        return MVTecAD(root=stage.parent, category=stage.name, **common)
    abnormal = sorted(p.name for p in (stage / "test").iterdir() if p.is_dir() and p.name != GOOD)
    return Folder(name=stage.name, root=stage, normal_dir="train/good", normal_test_dir="test/good",
                  abnormal_dir=[f"test/{name}" for name in abnormal], val_split_mode="same_as_test", **common)


# --------------------------------------------------------------------------- models


def model_class(name: str) -> type:
    """An anomalib image model class by name (case and ``_`` ignored); AKF-RD is this package's."""
    import anomalib.models as models

    from defect_plugins.anomaly import AkfReverseDistillation

    key = name.replace("_", "").replace("-", "").lower()
    if key in {"akfrd", "akfreversedistillation"}:
        return AkfReverseDistillation
    known = {n.lower(): n for n in getattr(models, "__all__", []) if isinstance(getattr(models, n, None), type)}
    if key not in known:
        image_models = sorted(n for n in known.values() if n[0].isupper() and not n.endswith(("Module", "Processor")))
        raise ValueError(f"--model {name!r}: not an anomalib model; expected {AKF_RD} or one of {image_models}")
    return getattr(models, known[key])


def refuse_memory_bank(names: Sequence[str], dist: DistributedOptions) -> None:
    """Stop a ``--nproc``/``--nnodes`` fit of a memory-bank model before anything runs, saying why.

    anomalib's memory-bank models (``MemoryBankMixin``: PatchCore, PaDiM, DFM, DFKDE, ...) collect the
    training features of the images their process sees and build the bank from them at the end of the one
    epoch. Under DDP every rank sees only its shard, so each rank's bank, and the checkpoint rank 0 saves,
    would hold only 1/N of the training images' features (anomalib issue #2673, open; their
    ``trainer_arguments`` also pin ``devices=1``). Gathering the features across ranks would need changing
    anomalib's models, and gains little: they train in one pass without gradients, and the coreset selection
    runs on one process anyway. So they are refused, not fitted wrong.
    """
    if not dist.distributed:
        return
    from anomalib.models.components import MemoryBankMixin

    banks = [model_class(name).__name__ for name in names if issubclass(model_class(name), MemoryBankMixin)]
    if banks:
        which = ", ".join(banks)
        raise ValueError(
            f"--nproc {dist.nproc} --nnodes {dist.nnodes}: {which} {'is a' if len(banks) == 1 else 'are'} memory-bank "
            f"model{'s' if len(banks) > 1 else ''}; under DDP each process would keep only the features of its own "
            f"share of the training images, so the saved bank would miss {dist.world_size - 1} of every "
            f"{dist.world_size} (anomalib issue #2673). Fit {which} with --nproc 1 (one pass, no gradients)"
            + (", or leave it out of --candidates" if len(names) > 1 else "")
            + f"; {AKF_RD} (the default) trains by gradient and runs on several processes.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_model(name: str, options: AnomalyOptions) -> tuple[Any, dict[str, Any]]:
    """A fresh anomalib model of class ``name`` at the fit's size, and what its teacher is (for the card)."""
    from defect_plugins.anomaly import RankPreservingPostProcessor
    from defect_plugins.anomaly.callbacks import find_feature_extractors
    from defect_plugins.anomaly.teacher import load_teacher_weights

    cls = model_class(name)
    size = (options.image_size, options.image_size)
    accepted = inspect.signature(cls.__init__).parameters
    pretrained = options.pretrained and options.teacher_weights is None
    wanted = {"backbone": options.backbone, "pre_trained": pretrained, "image_size": size,
              "coreset_sampling_ratio": options.coreset_ratio,
              "pre_processor": cls.configure_pre_processor(image_size=size),
              "post_processor": RankPreservingPostProcessor(), "visualizer": False}
    model = cls(**{key: value for key, value in wanted.items() if key in accepted})
    teacher: dict[str, Any] = {"backbone": options.backbone if "backbone" in accepted else None}
    if options.teacher_weights is not None:
        extractors = {n: m for n, m in find_feature_extractors(model).items() if "student" not in n}
        if len(extractors) != 1:
            raise ValueError(f"--teacher-weights: {cls.__name__} has {len(extractors)} timm feature extractors "
                             f"({sorted(extractors)}); expected one teacher")
        target, extractor = next(iter(extractors.items()))
        unused = load_teacher_weights(extractor.feature_extractor, options.teacher_weights)
        digest = _sha256(options.teacher_weights)
        teacher.update(weights=str(options.teacher_weights), sha256=digest, target=target, unused_keys=len(unused))
        options.log(f"[fit] teacher weights {options.teacher_weights} (sha256 {digest[:16]}) loaded into "
                    f"{cls.__name__}.{target}")
    elif "pre_trained" in accepted:
        teacher["weights"] = "ImageNet (timm download)" if pretrained else "random initialisation"
        if not pretrained:
            options.log(f"[fit] WARNING: {cls.__name__}'s backbone is randomly initialised (no --teacher-weights, "
                        f"no pretrained download): expect weak figures")
    if "coreset_sampling_ratio" in accepted:
        teacher["coreset_ratio"] = options.coreset_ratio
    return model, teacher


# --------------------------------------------------------------------------- training


def _progress_callback(epochs: int, log: Callable[[str], None]) -> Any:  # noqa: ANN401
    from lightning.pytorch import Callback

    from .logs import duration

    class FitProgress(Callback):
        """One line per epoch (loss, seconds) and, after the first, the estimated total training time."""

        def __init__(self) -> None:
            self.start = self.first = 0.0
            self.durations: list[float] = []

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:  # noqa: ANN401
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: ANN401
            seconds = time.perf_counter() - self.start
            self.durations.append(seconds)
            value = trainer.callback_metrics.get("train_loss_epoch", trainer.callback_metrics.get("train_loss"))
            loss = f"loss {float(value):.4f}" if value is not None else "no loss (memory bank)"
            epoch = trainer.current_epoch + 1
            line = f"[fit] epoch {epoch}/{epochs} {loss} ({seconds:.1f} s)"
            if len(self.durations) == 1 and epochs > 1:
                line += f"; estimated training time {duration(seconds * epochs)} for {epochs} epochs"
            log(line)

    return FitProgress()


def train_distributed(name: str, stage: Path, run_dir: Path, epochs: int, options: AnomalyOptions) -> dict[str, Any]:
    """The training alone on ``options.dist`` processes: ``torch.distributed.run`` on :mod:`.anomaly_ddp`.

    A child process, like the mmengine Runner's (:mod:`.openmmlab`): the fit's own process stays one process
    (it stages, exports and calibrates), and Lightning's DDP runs in workers started the way its docs describe
    for torchrun. Rank 0's per-epoch lines are relayed to the terminal; what each rank did is returned.
    """
    import json
    import os
    import subprocess

    from defect_plugins.runners.process import die_with_parent

    from .anomaly_ddp import PROGRESS, RANKS, write_spec

    run_dir.mkdir(parents=True, exist_ok=True)
    progress = run_dir / PROGRESS
    progress.unlink(missing_ok=True)
    for old in (run_dir / RANKS).glob("rank*.json"):
        old.unlink()
    spec = write_spec(run_dir / "ddp_spec.json", name=name, stage=stage, run_dir=run_dir, epochs=epochs,
                      options=options)
    command = options.dist.torchrun("defect_plugins.fit.anomaly_ddp", [str(spec)], options.dist.port())
    started = time.perf_counter()
    process = subprocess.Popen(command, env=dict(os.environ), preexec_fn=die_with_parent())
    relayed = 0
    while True:
        ended = process.poll() is not None
        if progress.is_file():
            lines = progress.read_text(encoding="utf-8").splitlines()
            for line in lines[relayed:]:
                options.log(line)
            relayed = len(lines)
        if ended:
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{name}: the training on {options.dist.describe()} failed (exit {process.returncode}); "
                           f"the workers' output is in the fit's log file")
    ranks = [json.loads(p.read_text()) for p in sorted((run_dir / RANKS).glob("rank*.json"))]
    trained = ", ".join(f"rank {r['rank']}: {r['images']} images" for r in ranks)
    options.log(f"[fit] {name}: trained on {options.dist.describe()} in {seconds:.1f} s"
                + (f" ({trained} on this machine)" if trained else ""))
    return {"seconds": seconds, "ranks": ranks}


def epoch_checkpoint(checkpoints: Path) -> Any:  # noqa: ANN401
    """``checkpoints/last.ckpt`` after every epoch (global rank 0 writes it), from which a fit given again resumes.

    anomalib's ``ModelCheckpoint`` (the engine adds its own unless one of that class is given). Lightning 2.6
    writes ``last.ckpt`` at an epoch's end only when a top-k checkpoint was saved in the same step
    (``ModelCheckpoint.on_train_epoch_end``), so ``save_top_k=0`` left only the final one and a fit cut off
    mid-training started over. Keeping the newest epoch (``save_top_k=1`` without a monitor, one file
    overwritten, no version suffix) makes ``last.ckpt`` follow every epoch.
    """
    from anomalib.callbacks.checkpoint import ModelCheckpoint

    return ModelCheckpoint(dirpath=checkpoints, filename="epoch", save_last=True, save_top_k=1, every_n_epochs=1,
                           enable_version_counter=False)


def _finished_epochs(checkpoint: Path) -> int:
    """Epochs completed by :func:`epoch_checkpoint`'s ``last.ckpt``, 0 without one: no workers for a finished run.

    It is written at an epoch's end, while Lightning's ``current_epoch`` (the checkpoint's ``epoch``) still
    counts that epoch from 0: the end of epoch ``e`` means ``e + 1`` epochs done.
    """
    if not checkpoint.is_file():
        return 0
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=False).get("epoch", -1)) + 1


def train(name: str, stage: Path, run_dir: Path, options: AnomalyOptions) -> tuple[Any, dict[str, Any]]:
    """Fit ``name`` on the staged data with anomalib's Engine (resuming ``run_dir``'s last epoch), then validate.

    Validation runs once, after the last epoch, on the calibration part: it sets the post-processor's
    normalisation that the export bakes into the IR. With several processes (``options.dist``) the epochs run
    in :func:`train_distributed`'s workers first; this process then resumes from their last checkpoint, which is
    already at the last epoch, so it only loads the weights and validates. On a machine other than 0 the model
    is ``None``: machine 0 holds the checkpoint and writes the bundle.
    """
    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything
    seed_everything(options.seed, workers=True)
    model, teacher = build_model(name, options)
    epochs = int(model.trainer_arguments.get("max_epochs", options.epochs or DEFAULT_EPOCHS))
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    processes = options.dist.record(options.batch_size, f"{name}'s own optimiser settings, not rescaled "
                                                        f"with the global batch")
    ddp = None
    if options.dist.distributed and _finished_epochs(last) >= epochs:
        options.log(f"[fit] {name}: training finished earlier ({last})")
        ddp = {"seconds": 0.0, "ranks": []}
    elif options.dist.distributed:
        if last.is_file():
            options.log(f"[fit] resuming {name} from {last}")
        ddp = train_distributed(name, stage, run_dir, epochs, options)
        processes["ranks"] = ddp["ranks"]  # this machine's (each machine's fit sees its own workers' records)
        if not options.dist.writes_bundle:
            return None, {"epochs": epochs, "train_seconds": round(ddp["seconds"], 1), "processes": processes}
    engine = Engine(logger=False, default_root_dir=run_dir, max_epochs=epochs, accelerator=options.device,
                    devices=1, precision=options.precision, enable_progress_bar=False,
                    enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                    callbacks=[_progress_callback(epochs, options.log),
                               epoch_checkpoint(checkpoints)])
    data = datamodule(stage, options)
    if last.is_file() and ddp is None:
        options.log(f"[fit] resuming {name} from {last}")
    started = time.perf_counter()
    engine.fit(model=model, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    train_seconds = ddp["seconds"] if ddp is not None else time.perf_counter() - started
    engine.trainer.limit_val_batches = 1.0
    engine.validate(model=model, datamodule=data, verbose=False)
    return model, {"epochs": epochs, "train_seconds": round(train_seconds, 1), "teacher": teacher,
                   "anomalib_model": f"{type(model).__module__}.{type(model).__name__}", "processes": processes}


def defect_score(outputs: Sequence[np.ndarray], metadata: Any) -> tuple[float, None]:  # noqa: ANN401
    """An anomaly IR's defect score: its ``pred_score``."""
    return float(np.asarray(outputs[metadata.outputs.index("pred_score")]).reshape(-1)[0]), None


# --------------------------------------------------------------------------- the whole fit


def _candidate(name: str, stage: Path, data: AnomalyData, split: Split, work: Path, options: AnomalyOptions,
               files: list[str]) -> dict[str, Any]:
    """Train (or reuse) and export one candidate; its FP32 scores and calibrated figures."""
    from defect_plugins.deploy.export import export_model
    from defect_plugins.deploy.export.families.anomaly import from_module

    from .evidence import calibrate
    from .scoring import score_files
    from .stage import metadata_resize

    run_dir = work / "runs" / name
    fp32 = run_dir / "ir" / "fp32.xml"
    record = run_dir / "training.json"
    if fp32.is_file() and record.is_file():
        import json

        training = json.loads(record.read_text())
        options.log(f"[fit] {name}: trained and exported earlier ({fp32})")
    else:
        model, training = train(name, stage, run_dir, options)
        loaded = from_module(model, input_size=(options.image_size, options.image_size),
                             source={"framework": "anomalib", "model": training["anomalib_model"]})
        loaded.metadata.resize = metadata_resize(options.resize)
        started = time.perf_counter()
        export_model("anomaly", fp32, loaded=loaded)
        training["export_seconds"] = round(time.perf_counter() - started, 1)
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(record, training, indent=2)
        options.log(f"[fit] {name}: exported {fp32}")
    scores = score_files(fp32, data.root, files, defect_score)
    evidence = calibrate(split, scores, GOOD, options.max_false_reject)
    options.log(f"[fit] {name}: threshold {evidence['threshold']:.4f}; calibration recall "
                f"{evidence['calibration']['recall']['value']:.3f}, test false-reject "
                f"{evidence['test']['false_reject']['value']:.3f}, "
                f"test recall {evidence['test']['recall']['value']:.3f}")
    return {"name": name, "fp32": fp32, "training": training, "scores": scores, "evidence": evidence}


def check_enough_good(split: Split, max_false_reject: float, good: str = GOOD) -> None:
    """Refuse before any training when the calibration part cannot support the target false-reject rate."""
    from .calibration import CalibrationError, required_calibration_images, supported_target

    have = len(split.files("calibration", good))
    need = required_calibration_images(max_false_reject)
    if have < need:
        total = int(np.ceil(need / GOOD_FRACTIONS["calibration"]))
        looser = supported_target(have)
        hint = (f"; with these images pass --max-false-reject {looser}" if looser
                else "; add defect-free images")
        raise CalibrationError(
            f"{good!r}: a false-reject target of {max_false_reject:g} needs at least {need} defect-free calibration "
            f"images "
            f"(about {total} defect-free images in all, {GOOD_FRACTIONS['calibration']:.0%} of them calibrate); "
            f"the data has {len(split.files('train', good)) + have + len(split.files('test', good))}, so {have} "
            f"calibrate{hint}")


def fit_anomaly(data_root: str | Path, out: str | Path, options: AnomalyOptions, *, work_dir: Path | None = None,
                overwrite: bool = False, keep_work: bool = False, argv: Sequence[str] | None = None) -> Path:
    """The whole ``defect-fit anomaly``: layout, split, training, export, calibration, INT8, bundle; return it.

    ``work_dir`` (default ``OUT.work`` beside the bundle) keeps the split, the staged images and the runs, so
    the same command given again after an interruption goes on where it stopped; it is removed after the
    bundle is written unless ``keep_work``.
    """
    import shutil

    from defect_plugins.deploy.bundle import staging_dir, write_bundle

    from .assemble import (check_out, command_line, finish, held_out_split, quantize_checked, resave, versions,
                           work_folder, write_card, write_predictions, write_rules)
    from .assemble import overhead
    from .calibration import threshold_for_false_reject
    from .evidence import calibrate
    from .layouts import find_anomaly_data
    from .scoring import score_files
    from .stage import metadata_resize, smallest_defect

    started = time.perf_counter()
    out = check_out(out, overwrite)
    refuse_memory_bank(list(options.candidates) if options.model == "auto" else [options.model], options.dist)
    data = find_anomaly_data(data_root)
    work = work_folder(out, work_dir)
    split = held_out_split(work, data.root, lambda: make_split(data, options.seed), options.log)
    counts = split.counts()
    options.log(f"[fit] {data.root}: layout {data.layout}; " + "; ".join(
        f"{part} " + ", ".join(f"{g} {n}" for g, n in groups.items()) for part, groups in counts.items()))
    check_enough_good(split, options.max_false_reject)
    small = smallest_defect(data.masks, [data.root / f for f in split.files("calibration") + split.files("test")],
                            options.image_size, options.resize) if data.masks else None
    if small is not None and small["model_pixels"] < 3:
        options.log(f"[fit] WARNING: the smallest labelled defect ({small['image']}) is {small['model_pixels']} "
                    f"model pixels across at --image-size {options.image_size}: raise --image-size")
    stage_started = time.perf_counter()
    stage = stage_mvtec(data, split, work / "staged" / "data", options.image_size, options.resize)
    stage_seconds = time.perf_counter() - stage_started

    files = split.files("calibration") + split.files("test")
    names = list(options.candidates) if options.model == "auto" else [options.model]
    from .distributed import batch_line

    options.log(batch_line(options.dist, options.batch_size))
    if not options.dist.writes_bundle:
        for name in names:
            train(name, stage, work / "runs" / name, options)
        options.log(f"[fit] machine {options.dist.node_rank}: training done; machine 0 exports and writes the bundle")
        return out
    candidates = [_candidate(name, stage, data, split, work, options, files) for name in names]
    best = max(candidates, key=lambda c: c["evidence"]["calibration"]["recall"]["value"])
    if len(candidates) > 1:
        options.log(f"[fit] chosen: {best['name']} (highest defect recall at a {options.max_false_reject:g} "
                    f"false-reject rate on the calibration part)")

    bundle_stage = staging_dir(out)
    try:
        threshold = best["evidence"]["threshold"]
        fp32_meta = resave(best["fp32"], bundle_stage / "model" / "fp32.xml", {"image": threshold})
        models = {"FP32": "model/fp32.xml"}
        thresholds = {"FP32": {"image": threshold, "pixel": float(fp32_meta.thresholds.get("pixel", 0.5))}}
        int8_note: dict[str, Any] = {"accepted": False, "reason": "not asked (--no-int8)"}
        evidence_by_precision = {"FP32": best["evidence"]}
        quant_started = time.perf_counter()
        if options.int8:
            int8_xml, int8_note = quantize_checked(best["fp32"], work / "runs" / best["name"] / "ir" / "int8.xml",
                                                   stage / "train" / GOOD, stage, options.int8_tolerance, options.log)
            if int8_xml is not None:
                int8_scores = score_files(int8_xml, data.root, files, defect_score)
                int8_evidence = calibrate(split, int8_scores, GOOD, options.max_false_reject)
                lost = (best["evidence"]["calibration"]["recall"]["value"]
                        - int8_evidence["calibration"]["recall"]["value"])
                int8_note["recall_drop_at_threshold"] = lost
                if lost <= options.int8_tolerance:
                    t8 = threshold_for_false_reject(int8_scores.of(split.files("calibration", GOOD)),
                                                    options.max_false_reject)
                    resave(int8_xml, bundle_stage / "model" / "int8.xml", {"image": t8})
                    models["INT8"] = "model/int8.xml"
                    thresholds["INT8"] = {"image": t8, "pixel": thresholds["FP32"]["pixel"]}
                    evidence_by_precision["INT8"] = int8_evidence
                else:
                    int8_note.update(accepted=False, reason=(
                        f"at its own calibrated threshold the INT8 model catches {lost:.3f} fewer calibration "
                        f"defects than FP32 (tolerance {options.int8_tolerance})"))
                    options.log(f"[fit] INT8 not kept: {int8_note['reason']}")
        quant_seconds = time.perf_counter() - quant_started
        default = "INT8" if "INT8" in models else "FP32"
        chosen = evidence_by_precision[default]

        rows = []
        scores = best["scores"]
        for part in ("calibration", "test"):
            for group in split.groups(part):
                for name in split.files(part, group):
                    score = float(scores.of([name])[0])
                    rows.append({"file": name, "part": part, "group": group, "label": "good" if group == GOOD
                                 else "defect", "score_fp32": score,
                                 "decision_fp32": "defect" if score >= threshold else "good"})
        write_predictions(bundle_stage / "predictions.csv", rows)
        split.save(bundle_stage / "split.json")

        write_rules(bundle_stage / "rules.yaml", ["good", "defect"])
        total_seconds = time.perf_counter() - started
        train_seconds = sum(c["training"].get("train_seconds", 0.0) for c in candidates)
        card = {
            "family": "anomaly",
            "model": best["name"], "anomalib_model": best["training"]["anomalib_model"],
            "command": command_line(argv), "versions": versions(),
            "data": {"root": str(data.root), **data.summary()},
            "split": {"seed": options.seed, "counts": counts,
                      "fractions": {"good": GOOD_FRACTIONS, "defect types": DEFECT_FRACTIONS}},
            "image_size": options.image_size, "resize": options.resize,
            "resize_metadata": metadata_resize(options.resize), "smallest_defect": small,
            "training": best["training"],
            "threshold": {"max_false_reject": options.max_false_reject, "default_precision": default,
                          "by_precision": thresholds, "set_on": "calibration part (defect-free images)"},
            "evidence": evidence_by_precision,
            "int8": int8_note,
            "candidates": [{"name": c["name"], "training": c["training"], "test": c["evidence"]["test"],
                            "calibration_recall": c["evidence"]["calibration"]["recall"]}
                           for c in candidates],
            "chosen_by": ("highest defect recall at the target false-reject rate on the calibration part"
                          if len(candidates) > 1 else "asked for (--model)"),
            "timing": {"total_seconds": round(total_seconds, 1), "train_seconds": round(train_seconds, 1),
                       "stage_seconds": round(stage_seconds, 1), "int8_seconds": round(quant_seconds, 1),
                       **overhead(total_seconds, train_seconds)},
        }
        write_card(bundle_stage, card, render_card(card))
        manifest = {
            "family": "anomaly", "models": models, "default_precision": default,
            "thresholds": thresholds[default], "thresholds_by_precision": thresholds,
            "ok_class": None, "labels": ["good", "defect"], "max_false_reject": options.max_false_reject,
            "rules": "rules.yaml", "card": "card.md", "card_json": "card.json", "split": "split.json",
            "predictions": "predictions.csv", "input_size": [options.image_size, options.image_size],
            "resize": metadata_resize(options.resize),
        }
        write_bundle(bundle_stage, manifest, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(bundle_stage, ignore_errors=True)
        raise
    test = chosen["test"]
    from .assemble import fmt_rate

    options.log(f"[fit] bundle {out} ({best['name']}, {default}): threshold {thresholds[default]['image']:.4f}; "
                f"test false-reject {fmt_rate(test['false_reject'])}; test recall {fmt_rate(test['recall'])}")
    finish(work, out, keep_work)
    return out


def render_card(card: dict[str, Any]) -> str:
    """``card.md``: what a quality engineer reads first (the same facts as ``card.json``)."""
    from .assemble import fmt_rate, overhead_text
    from .distributed import card_line

    default = card["threshold"]["default_precision"]
    evidence = card["evidence"][default]
    test, cal = evidence["test"], evidence["calibration"]
    lines = [f"# Model card: {card['model']} (anomaly detection)", "",
             f"Fitted by `{card['command']}`.", "",
             "## Verdict on the held-out test images", "",
             f"The line runs the **{default}** model and calls a part defective when its score is at least "
             f"**{card['threshold']['by_precision'][default]['image']:.4f}**, set on {cal['images']['good']} "
             f"defect-free calibration images for a false-reject target of {card['threshold']['max_false_reject']:g}.",
             "", "| measure on the test part | value |", "|---|---|",
             f"| good parts rejected (false reject) | {fmt_rate(test['false_reject'])} |",
             f"| defects caught (recall) | {fmt_rate(test['recall'])} |"]
    for group, rate in test["recall_by_type"].items():
        lines.append(f"| recall, {group} | {fmt_rate(rate)} |")
    if test.get("auroc") is not None:
        lines.append(f"| image AUROC (threshold-free, for comparison only) | {test['auroc']:.4f} |")
    lines += ["", "The intervals are exact (Clopper-Pearson) 95 % intervals for the number of images shown; "
              "the test images neither trained the model nor set the threshold.", "",
              "## Data", "", f"- folder `{card['data']['root']}`, layout {card['data'].get('layout')}",
              f"- split (seed {card['split']['seed']}): " + "; ".join(
                  f"{part}: " + ", ".join(f"{g} {n}" for g, n in groups.items())
                  for part, groups in card["split"]["counts"].items()),
              f"- image size {card['image_size']} px, resize {card['resize']} (`{card['resize_metadata']}` in the IR)"]
    if card.get("smallest_defect"):
        small = card["smallest_defect"]
        lines.append(f"- smallest labelled defect: {small['model_pixels']} model pixels across "
                     f"({small['source_pixels']} px in `{small['image']}`)")
    teacher = card["training"].get("teacher", {})
    lines += ["", "## Model and training", "",
              f"- {card['anomalib_model']}, {card['training'].get('epochs')} epochs, "
              f"{card['training'].get('train_seconds')} s of training",
              card_line(card["training"].get("processes")),
              f"- backbone {teacher.get('backbone')}, weights: {teacher.get('weights')}"
              + (f" (sha256 {teacher['sha256'][:16]})" if teacher.get("sha256") else ""),
              ]
    if "coreset_ratio" in teacher:
        lines.append(f"- PatchCore coreset ratio {teacher['coreset_ratio']}")
    int8 = card["int8"]
    if default == "INT8":
        guard = int8["guard"]
        lines.append(f"- INT8: kept (guard {guard['metric']} FP32 {guard['fp32']:.4f} -> INT8 {guard['int8']:.4f})")
    else:
        lines.append(f"- INT8: not kept ({int8.get('reason')})")
    if len(card["candidates"]) > 1:
        lines += ["", "## Candidates (chosen by recall at the target false-reject rate on the calibration part)", "",
                  "| model | calibration recall | test false reject | test recall | test AUROC |",
                  "|---|---|---|---|---|"]
        for c in card["candidates"]:
            auroc = f"{c['test']['auroc']:.4f}" if c["test"].get("auroc") is not None else "n/a"
            lines.append(f"| {c['name']}{' (chosen)' if c['name'] == card['model'] else ''} | "
                         f"{fmt_rate(c['calibration_recall'])} | {fmt_rate(c['test']['false_reject'])} | "
                         f"{fmt_rate(c['test']['recall'])} | {auroc} |")
    timing = card["timing"]
    lines += ["", "## Time", "", f"{timing['total_seconds']} s in all, {timing['train_seconds']} s training; "
              f"the rest (split, staging, export, scoring, INT8, card) is {overhead_text(timing)}.",
              "", "## Versions", "", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), "",
              "The SHA-256 of every file of the bundle is in `bundle.json` (checked at every load).", ""]
    return "\n".join(lines)
