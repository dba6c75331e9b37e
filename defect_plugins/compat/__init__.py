"""Narrow fixes that let anomalib, mmpretrain and mmsegmentation run together on a modern stack.

Every fix here repairs one measured incompatibility between the pinned upstream releases
(mmengine 0.10.x, mmcv-lite 2.1, mmseg 1.2, mmpretrain 1.2) and today's torch, numpy and
setuptools. Each one checks first whether the upstream is already fine and then does
nothing; none edits installed files. They are applied once, by :func:`apply_all`, when a part
of the package that uses the toolkits is imported: ``defect_plugins.anomaly``, ``.cls``, ``.seg``
(``custom_imports`` in an OpenMMLab config, anomalib's ``class_path``), the launcher
(``defect-train`` / ``tools/mim_train.sh``), the demo and ``defect_plugins.deploy.export``.
``import defect_plugins`` alone applies nothing: the deployment runtime must not import torch.

==========================  =========================================================
fix                         why
==========================  =========================================================
``mmcv_lite_warning``       mmcv-lite warns at every import of mmcv's transformer bricks
                            that deformable attention is missing (unused here).
``mmcv_ops``                mmcv-lite has no ``mmcv._ext``; mmseg imports
                            ``point_sample`` / ``sigmoid_focal_loss`` unguarded.
``checkpoint_loading``      torch >= 2.6 loads ``weights_only``; mmengine checkpoints
                            hold a ``HistoryBuffer`` and numpy arrays.
``package_lookup``          mmengine resolves ``mmseg::`` bases with ``pkg_resources``,
                            removed from setuptools >= 82.
``numpy_aliases``           numpy 2 removed ``np.in1d`` (mmpretrain retrieval metrics).
``dataloader_workers``      ``persistent_workers=True`` with ``num_workers=0`` raises in
                            torch; mmpretrain's ``tools/train.py`` sets it by default.
``distributed_cpu``         mmengine's pytorch launcher calls ``cuda.set_device`` and
                            gives DDP ``device_ids``: multi-process CPU (gloo) runs
                            fail. No-op when CUDA is available.
``anomalib_plugin_models``  anomalib's ``get_model`` / benchmark allow only its own
                            model modules, and its benchmark table takes its columns
                            from the first job: AKF-RD could not join a grid.
==========================  =========================================================
"""
from __future__ import annotations

from defect_plugins.compat import (
    anomalib_plugin_models,
    checkpoint_loading,
    dataloader_workers,
    distributed_cpu,
    mmcv_lite_warning,
    mmcv_ops,
    numpy_aliases,
    package_lookup,
)

_FIXES = {
    "mmcv_lite_warning": mmcv_lite_warning.apply,  # first: before anything can import mmcv's transformer bricks
    "mmcv_ops": mmcv_ops.apply,
    "checkpoint_loading": checkpoint_loading.apply,
    "package_lookup": package_lookup.apply,
    "numpy_aliases": numpy_aliases.apply,
    "dataloader_workers": dataloader_workers.apply,
    "distributed_cpu": distributed_cpu.apply,
    "anomalib_plugin_models": anomalib_plugin_models.apply,
}
_applied: dict[str, bool] | None = None


def apply_all() -> dict[str, bool]:
    """Apply every fix once; return ``{fix name: whether it changed anything}``.

    Calling it again returns the first result without touching anything.
    """
    global _applied
    if _applied is None:
        _applied = {name: bool(fix()) for name, fix in _FIXES.items()}
    return dict(_applied)


__all__ = ["apply_all"]
