"""How many processes a ``defect-fit`` training runs on (``--nproc``, ``--nnodes``, ...), and what that changes.

One process (the default) trains as before. With more, the training alone runs under
``python -m torch.distributed.run`` (torchrun) in a child process, one worker per ``--nproc`` on each of
``--nnodes`` machines, as both toolkits expect to be started:

* mmpretrain / mmsegmentation: each worker runs the toolkit's ``tools/train.py`` with ``--launcher pytorch``
  (OpenMMLab's ``tools/dist_train.sh``; mmengine's ``mmengine/dist/utils.py`` ``init_dist`` reads ``RANK``,
  ``WORLD_SIZE`` and ``MASTER_ADDR`` / ``MASTER_PORT`` from torchrun and uses the config's
  ``env_cfg.dist_cfg.backend``: NCCL with CUDA, gloo without);
* anomalib: each worker runs :mod:`.anomaly_ddp`, anomalib's ``Engine`` with Lightning's ``DDPStrategy``
  (Lightning's "GPU training (Intermediate)" guide: a script started by torchrun is recognised through
  ``TorchElasticEnvironment``, ``devices`` = processes per node, ``num_nodes`` = machines). Lightning's own
  ``ddp`` launcher would re-run the calling script, and ``ddp_spawn`` pickles the model and data into new
  interpreters; a child started here keeps the fit's one-process steps (staging, export, calibration) out of
  the workers, the way the fit already isolates the mmengine Runner.

Each worker draws its own shard of the training images (mmengine's ``DefaultSampler``, Lightning's
``DistributedSampler``) in batches of ``--batch-size``, so one optimiser step sees
``world_size x --batch-size`` images (the **global batch**). Neither the fit nor the toolkits rescale the
learning rate (mmengine's ``auto_scale_lr`` is off; anomalib's models fix their own): the card states the
rule in :meth:`DistributedOptions.record`. Only global rank 0 writes checkpoints (mmengine's
``CheckpointHook`` and Lightning's ``ModelCheckpoint`` save on rank 0), so a resumed fit reads the last one
from the work folder of machine 0; the fit's process on machine 0 then exports, calibrates and writes the
bundle, and the fit's processes on the other machines end after the training.
"""
from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT = 29500  # torchrun's and OpenMMLab's dist_train.sh's default rendezvous port


def free_port() -> int:
    """A TCP port free on this machine now (for a one-machine run, so two fits side by side do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class DistributedOptions:
    """``--nproc`` processes on each of ``--nnodes`` machines; this one is ``--node-rank``."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: a free port on one machine, 29500 across machines

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"--nproc must be at least 1, got {self.nproc}")
        if self.nnodes < 1:
            raise ValueError(f"--nnodes must be at least 1, got {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"--node-rank {self.node_rank} with --nnodes {self.nnodes}: expected 0 <= rank < nnodes")
        if self.master_port is not None and not 1 <= self.master_port <= 65535:
            raise ValueError(f"--master-port {self.master_port}: expected a TCP port (1-65535)")

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def writes_bundle(self) -> bool:
        """Only machine 0 exports, calibrates and writes the bundle (global rank 0 runs there)."""
        return self.node_rank == 0

    def port(self) -> int:
        if self.master_port is not None:
            return self.master_port
        return free_port() if self.nnodes == 1 else DEFAULT_PORT

    def launcher_env(self, port: int) -> dict[str, str]:
        """The variables :class:`defect_plugins.runners.launcher.DistributedSettings` reads (``dist_train.sh``'s)."""
        return {"NNODES": str(self.nnodes), "NODE_RANK": str(self.node_rank), "MASTER_ADDR": self.master_addr,
                "PORT": str(port)}

    def torchrun(self, module: str, args: Sequence[str], port: int) -> list[str]:
        """``python -m torch.distributed.run ... -m MODULE ARGS``: this machine's workers."""
        return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={self.nnodes}",
                f"--node-rank={self.node_rank}", f"--master-addr={self.master_addr}", f"--master-port={port}",
                f"--nproc-per-node={self.nproc}", "-m", module, *args]

    def describe(self) -> str:
        """``1 process`` / ``2 processes (1 machine x 2, gloo)``: for the fit's log line."""
        if not self.distributed:
            return "1 process"
        return (f"{self.world_size} processes ({self.nnodes} machine{'s' if self.nnodes > 1 else ''} x {self.nproc}, "
                f"{backend()})")

    def record(self, per_process_batch: int, lr_rule: str) -> dict[str, Any]:
        """What the card says about the processes, the batch and the learning rate."""
        return {"nproc": self.nproc, "nnodes": self.nnodes, "world_size": self.world_size,
                "backend": backend() if self.distributed else None, "per_process_batch": per_process_batch,
                "global_batch": per_process_batch * self.world_size, "lr_rule": lr_rule}


def backend(accelerator: str = "auto") -> str:
    """NCCL for CUDA devices, gloo otherwise (what mmengine's and Lightning's defaults pick per device)."""
    cuda = accelerator in {"gpu", "cuda"} or (accelerator == "auto" and cuda_available())
    return "nccl" if cuda else "gloo"


def worker_rank() -> tuple[int, int, int]:
    """``(RANK, LOCAL_RANK, WORLD_SIZE)`` as torchrun sets them for each worker (0, 0, 1 outside one)."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")))


def batch_line(dist: DistributedOptions, per_process_batch: int) -> str:
    """``training on 2 processes (1 machine x 2, gloo): batch 8 per process, global batch 16``: the fit's log line."""
    return (f"[fit] training on {dist.describe()}: batch {per_process_batch} per process, global batch "
            f"{per_process_batch * dist.world_size}")


def card_line(record: dict[str, Any] | None) -> str:
    """The card's line on the processes, the batch and the learning-rate rule (a fit before ``--nproc``: 1 process)."""
    if not record:
        return "- 1 process"
    where = f"{record['nproc']} per machine on {record['nnodes']}" if record["nnodes"] > 1 else "one machine"
    backend_text = f", {record['backend']}" if record.get("backend") else ""
    return (f"- {record['world_size']} training process{'es' if record['world_size'] > 1 else ''} ({where}"
            f"{backend_text}); batch {record['per_process_batch']} per process, global batch "
            f"{record['global_batch']}; learning rate: {record['lr_rule']}")
