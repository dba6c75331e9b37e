"""bf16 mixed-precision training for mmengine's Runner on the CPU (and on GPUs).

mmengine's ``AmpOptimWrapper`` asserts an accelerator (CUDA, NPU, MLU or MUSA), so a CPU run of
an mmpretrain or mmseg config cannot use it. This wrapper runs the model's forward and loss under
``torch.autocast(device, dtype=torch.bfloat16)``: convolutions and matrix products in bf16, the
rest in float32, weights, gradients and the optimiser state in float32. bf16 keeps float32's
exponent range, so no loss scaling is needed (the reason ``AmpOptimWrapper`` carries a
``GradScaler`` for fp16). The losses of this project cast their inputs to float32 first.

It only pays where the hardware computes bf16 natively: measured here (AMD EPYC with
``avx512_bf16``, one thread, a ResNet-18 training step, ``experiments/training_precision/bench_training_precision.py``)
166 ms against 259 ms in float32 at 64 px batch 32 (1.56x), 213 ms against 353 ms at 160 px batch 8;
on a CPU without bf16 instructions oneDNN emulates it and autocast is slower than float32.
``enabled='auto'`` (the default) therefore turns it on only where
:func:`native_bf16` says the device has it, and the configs that use this wrapper train in plain
float32 elsewhere. Checkpoints hold float32 weights either way, so export and inference are
unchanged.

Usage in a config::

    optim_wrapper = dict(type='AutocastOptimWrapper', enabled='auto', optimizer=dict(type='AdamW', lr=2e-3))
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

# x86 CPU flags for native bf16 arithmetic (AVX-512 BF16 dot products, AMX tiles)
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to tell, assume none
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device_type: str = "cpu") -> bool:
    """Whether ``device_type`` computes bf16 in hardware (so bf16 autocast is faster than float32)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(_cpu_flags() & _BF16_CPU_FLAGS)
    return False


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose :meth:`optim_context` runs forward and loss under bf16 autocast.

    Args:
        enabled: ``'auto'`` (bf16 where :func:`native_bf16` holds for the model's device),
            ``True`` (always) or ``False`` (plain float32, the same as ``OptimWrapper``).
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, *args, enabled: bool | str = "auto", **kwargs) -> None:
        if enabled not in (True, False, "auto"):
            raise ValueError(f"optim_wrapper.enabled must be True, False or 'auto', got {enabled!r}")
        super().__init__(*args, **kwargs)
        self.enabled = enabled

    def autocast_on(self, device_type: str) -> bool:
        return native_bf16(device_type) if self.enabled == "auto" else bool(self.enabled)

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        parameter = next(model.parameters(), None)
        device_type = parameter.device.type if parameter is not None else "cpu"
        with super().optim_context(model), torch.autocast(device_type, dtype=torch.bfloat16,
                                                          enabled=self.autocast_on(device_type)):
            yield
