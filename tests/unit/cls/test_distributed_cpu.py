"""defect_plugins.compat.distributed_cpu: mmengine's pytorch launcher and DDP wrapper on a CPU-only machine."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the fix is a no-op when CUDA is available")

SCRIPT = """
import os, torch
os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT='{port}')
{setup}
from mmengine.dist import init_dist, get_world_size
from mmengine.model import MMDistributedDataParallel
init_dist('pytorch', backend='nccl')          # what mmpretrain's default_runtime asks for
model = MMDistributedDataParallel(module=torch.nn.Linear(3, 2), device_ids=[0])  # what Runner.wrap_model passes
model(torch.randn(4, 3)).sum().backward()
print('OK', torch.distributed.get_backend(), get_world_size())
"""


def _run(setup: str) -> subprocess.CompletedProcess:
    code = SCRIPT.format(port=random.randint(30000, 30999), setup=setup)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


def test_mmengine_pytorch_launcher_and_ddp_run_on_cpu_with_the_fix():
    result = _run("from defect_plugins.compat import apply_all; apply_all()")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK gloo 1" in result.stdout


def test_without_the_fix_mmengine_fails_on_cpu():
    # the same script without the fixes shows what the fix repairs
    result = _run("import mmengine")
    assert result.returncode != 0
    assert "cuda" in result.stderr.lower() or "device_ids" in result.stderr
