"""One worker of a ``defect-fit anomaly --nproc N`` training: ``python -m torch.distributed.run ... -m`` this module.

:func:`defect_plugins.fit.anomaly.train` writes a JSON spec (the model's name, the staged data, the run folder,
the fit's options) and starts ``torch.distributed.run`` on this module (:mod:`.distributed`). Each worker builds
the same model and data module as a one-process fit (:func:`.anomaly.build_model`, :func:`.anomaly.datamodule`)
and fits them with anomalib's ``Engine`` under Lightning's ``DDPStrategy``: Lightning recognises torchrun's
variables (``TorchElasticEnvironment``, Lightning's "GPU training (Intermediate)" guide: run the script with
torchrun, ``devices`` = processes per node, ``num_nodes`` = machines), gives each rank a ``DistributedSampler``
shard and averages the gradients. Only training happens here, no validation: rank 0 saves
``checkpoints/last.ckpt`` after every epoch (Lightning's ``ModelCheckpoint`` writes on global rank 0 only),
from which the fit's own process resumes to validate, export and calibrate; the other ranks just exit.

Two files tell the fit's process what happened: rank 0 appends the per-epoch lines to ``progress.txt`` (the
fit relays them to the terminal), and every rank writes ``ranks/rank<R>.json`` (its world size, process-group
backend and the batches and images it trained on), so a fit can show that every rank trained.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROGRESS = "progress.txt"
RANKS = "ranks"


def _rank_record(run_dir: Path, rank: int, backend: str) -> Any:  # noqa: ANN401
    """A Lightning callback that counts this rank's batches and images and writes them at the end of training."""
    from lightning.pytorch import Callback

    from defect_plugins.fileio import atomic_write_json

    class RankRecord(Callback):
        def __init__(self) -> None:
            self.batches = self.images = 0

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,  # noqa: ANN401
                               batch_idx: int) -> None:
            self.batches += 1
            image = getattr(batch, "image", None)
            self.images += int(image.shape[0]) if image is not None else 0

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: ANN401
            import torch
            import torch.distributed as torch_dist

            folder = run_dir / RANKS
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(folder / f"rank{rank}.json", {
                "rank": trainer.global_rank, "world_size": trainer.world_size, "local_rank": trainer.local_rank,
                "node_rank": trainer.node_rank, "strategy": type(trainer.strategy).__name__,
                "backend": torch_dist.get_backend() if torch_dist.is_initialized() else backend,
                "batches": self.batches, "images": self.images, "threads": torch.get_num_threads()}, indent=2)

    return RankRecord()


def freeze_no_grad_extractors(model: Any) -> list[str]:  # noqa: ANN401
    """Mark the parameters of every timm feature extractor that runs under ``no_grad`` as not trainable.

    anomalib's ``TimmFeatureExtractor(requires_grad=False)`` (the frozen teacher of reverse distillation)
    computes its features inside ``torch.no_grad()`` but leaves its parameters' ``requires_grad`` on. They
    never get a gradient, so one process trains the same either way; torch's ``DistributedDataParallel``
    however expects a gradient for every parameter that requires one and stops at the second step ("parameters
    that were not used in producing the loss"). Freezing them is exact; DDP's ``find_unused_parameters=True``
    would cost a graph traversal per step instead. Returns the extractors frozen.
    """
    from defect_plugins.anomaly.callbacks import find_feature_extractors

    frozen = []
    for name, extractor in find_feature_extractors(model).items():
        if not getattr(extractor, "requires_grad", True):
            extractor.requires_grad_(False)
            frozen.append(name)
    return frozen


def write_spec(path: Path, *, name: str, stage: Path, run_dir: Path, epochs: int, options: Any) -> Path:  # noqa: ANN401
    """The JSON a worker reads: everything of ``options`` (an ``AnomalyOptions``) but its log function."""
    from dataclasses import asdict, fields

    from defect_plugins.fileio import atomic_write_json

    values = {f.name: getattr(options, f.name) for f in fields(options) if f.name not in {"log", "dist"}}
    values["candidates"] = list(values["candidates"])
    values["teacher_weights"] = str(values["teacher_weights"]) if values["teacher_weights"] else None
    return atomic_write_json(path, {"name": name, "stage": str(stage), "run_dir": str(run_dir), "epochs": epochs,
                                    "options": values, "dist": asdict(options.dist)}, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """Train one anomalib model on this rank's shard (the spec file is the one argument)."""
    from defect_plugins.runners.process import die_with_parent_now

    die_with_parent_now()  # first, before the slow imports: no orphan worker when the fit (and torchrun) is killed

    from anomalib.engine import Engine
    from lightning.pytorch import seed_everything
    from lightning.pytorch.strategies import DDPStrategy

    from .anomaly import AnomalyOptions, _progress_callback, build_model, datamodule, epoch_checkpoint
    from .distributed import DistributedOptions, backend, worker_rank

    argv = sys.argv[1:] if argv is None else list(argv)
    spec = json.loads(Path(argv[0]).read_text())
    rank, _, world_size = worker_rank()
    run_dir, stage = Path(spec["run_dir"]), Path(spec["stage"])
    progress = run_dir / PROGRESS

    def log(line: str) -> None:
        if rank == 0:
            with progress.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    values = dict(spec["options"])
    values["teacher_weights"] = Path(values["teacher_weights"]) if values["teacher_weights"] else None
    # the fit's process has logged build_model's warnings already; only the epoch lines are relayed
    options = AnomalyOptions(**values, dist=DistributedOptions(**spec["dist"]), log=lambda line: None)
    if world_size != options.dist.world_size:
        raise RuntimeError(f"torchrun started {world_size} workers; the fit asked for {options.dist.world_size}")
    seed_everything(options.seed, workers=True)
    model, _ = build_model(spec["name"], options)
    freeze_no_grad_extractors(model)
    epochs = int(spec["epochs"])
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    group_backend = backend(options.device)
    engine = Engine(logger=False, default_root_dir=run_dir, max_epochs=epochs, accelerator=options.device,
                    strategy=DDPStrategy(process_group_backend=group_backend), devices=options.dist.nproc,
                    num_nodes=options.dist.nnodes, precision=options.precision, enable_progress_bar=False,
                    enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                    callbacks=[_progress_callback(epochs, log), _rank_record(run_dir, rank, group_backend),
                               epoch_checkpoint(checkpoints)])
    started = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule(stage, options), ckpt_path=str(last) if last.is_file() else None)
    print(f"[fit] rank {rank}/{world_size}: trained in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
