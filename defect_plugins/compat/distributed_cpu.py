"""Let mmengine's ``--launcher pytorch`` run several CPU processes (gloo) on a machine without CUDA.

mmengine 0.10.7 assumes a GPU per process in two places:

* ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device(local_rank)``
  unconditionally (it fails without CUDA) and passes the config's backend, usually ``'nccl'``
  (mmpretrain's ``default_runtime.py``), which needs CUDA;
* ``Runner.wrap_model`` builds ``MMDistributedDataParallel(..., device_ids=[local_rank])``;
  torch's DDP rejects ``device_ids`` for a CPU module.

When CUDA is *not* available this fix skips ``set_device``, switches ``nccl`` to ``gloo`` and
drops ``device_ids`` for CPU modules. When CUDA is available it does nothing at all, so GPU
runs keep mmengine's behaviour exactly.
"""
from __future__ import annotations

import functools


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def apply() -> bool:
    """Patch the two places; return False (no change) when CUDA is available."""
    if _cuda_available():
        return False
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_distributed

    original_init = dist_utils._init_dist_pytorch
    if not getattr(original_init, "__defect_plugins_wrapped__", False):

        @functools.wraps(original_init)
        def _init_dist_pytorch(backend, init_backend="torch", **kwargs):
            import os

            if init_backend != "torch":
                return original_init(backend, init_backend=init_backend, **kwargs)
            if backend == "nccl":
                backend = "gloo"
            torch_dist.init_process_group(
                backend=backend, rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]), **kwargs
            )

        _init_dist_pytorch.__defect_plugins_wrapped__ = True
        dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_class = mm_distributed.MMDistributedDataParallel
    original_ddp_init = ddp_class.__init__
    if not getattr(original_ddp_init, "__defect_plugins_wrapped__", False):

        @functools.wraps(original_ddp_init)
        def __init__(self, module, detect_anomalous_params=False, **kwargs):
            on_cpu = all(p.device.type == "cpu" for p in module.parameters())
            if on_cpu:
                kwargs.pop("device_ids", None)
                kwargs.pop("output_device", None)
            original_ddp_init(self, module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)

        __init__.__defect_plugins_wrapped__ = True
        ddp_class.__init__ = __init__
    return True
