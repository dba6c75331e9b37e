"""Drop ``persistent_workers`` from dataloaders that have no workers.

mmpretrain's ``tools/train.py`` (and many configs) default to ``persistent_workers=True``;
torch's ``DataLoader`` raises ``ValueError`` for that with ``num_workers=0``, which is what a
CPU-only run on a small machine uses. mmengine's ``Runner.build_dataloader`` is wrapped to
turn the flag off only in that case, so CPU configs and the upstream train script work as
they are. Multi-worker loaders are untouched.
"""
from __future__ import annotations

import copy
import functools


def apply() -> bool:
    from mmengine.runner import Runner

    original = Runner.build_dataloader
    if getattr(original, "__defect_plugins_wrapped__", False):
        return True

    @functools.wraps(original)
    def build_dataloader(dataloader, *args, **kwargs):
        if isinstance(dataloader, dict) and not dataloader.get("num_workers", 0) and dataloader.get(
            "persistent_workers", False
        ):
            dataloader = copy.copy(dataloader)
            dataloader["persistent_workers"] = False
        return original(dataloader, *args, **kwargs)

    build_dataloader.__defect_plugins_wrapped__ = True
    Runner.build_dataloader = staticmethod(build_dataloader)
    return True
