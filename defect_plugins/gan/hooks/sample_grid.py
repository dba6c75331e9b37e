"""Save a grid of CycleGAN translations during training, so a user can see what the generators do.

Every ``interval`` training iterations and at the end of training, the first ``num_samples``
images of each domain (resized, no augmentation: the same images every time) are translated and
reconstructed, and one PNG is written to ``<work_dir>/samples/iter_<N>.png``. Rows: A, A->B,
A->B->A, then B, B->A, B->A->B; one column per image. A->B is the migrated defect sample of the
RKD-SARSN paper (section 2.1); A->B->A shows how much of it the cycle keeps (Zhu et al. 2017, Eq. 2).
The file is written atomically (:mod:`defect_plugins.fileio`).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from defect_plugins.fileio import atomic_path
from defect_plugins.gan.models.data_preprocessor import to_uint8


def make_grid(rows: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """uint8 ``(N, 3, H, W)`` batches, one per row -> one ``(rows*(H+pad)+pad, ...)`` HWC image, white gaps."""
    n, _, h, w = rows[0].shape
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, batch in enumerate(rows):
        for c, image in enumerate(batch):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y:y + h, x:x + w] = image.permute(1, 2, 0).cpu().numpy()
    return grid


@HOOKS.register_module()
class CycleGANSampleHook(Hook):
    """Write ``samples/iter_<N>.png`` every ``interval`` iterations and after the last one.

    Args:
        interval: iterations between grids.
        num_samples: images per domain (columns).
        out_dir: folder for the grids, relative to the work dir (default ``samples``).
    """

    priority = "LOW"

    def __init__(self, interval: int = 500, num_samples: int = 6, out_dir: str = "samples"):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"CycleGANSampleHook: interval must be an integer >= 1, got {interval!r}")
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"CycleGANSampleHook: num_samples must be an integer >= 1, got {num_samples!r}")
        self.interval, self.num_samples, self.out_dir = interval, num_samples, out_dir
        self._last_saved = -1

    @torch.no_grad()
    def save_grid(self, runner, iteration: int) -> Path:
        """Translate the fixed samples with the current generators, write ``iter_<iteration>.png``, return its path."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = runner.train_dataloader.dataset
        batch = {d: dataset.fixed_batch(d, self.num_samples) for d in ("a", "b")}
        inputs = model.data_preprocessor(dict(inputs=batch), False)["inputs"]
        was_training = model.training
        model.eval()
        try:
            out = model(inputs, mode="tensor")
        finally:
            model.train(was_training)
        rows = [batch["a"], to_uint8(out["a2b"]), to_uint8(out["a2b2a"]),
                batch["b"], to_uint8(out["b2a"]), to_uint8(out["b2a2b"])]
        width = max(len(r) for r in rows)
        rows = [torch.cat([r, r.new_full((width - len(r), *r.shape[1:]), 255)]) if len(r) < width else r
                for r in rows]  # a domain with fewer images than columns: blank cells
        path = Path(runner.work_dir) / self.out_dir / f"iter_{iteration:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), make_grid([r.cpu() for r in rows])):
                raise OSError(f"cv2.imwrite could not write {tmp}")
        self._last_saved = iteration
        runner.logger.info(f"CycleGAN samples (rows A, A->B, A->B->A, B, B->A, B->A->B): {path}")
        return path

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self.save_grid(runner, runner.iter + 1)  # runner.iter counts this iteration only after the hooks

    def after_train(self, runner) -> None:
        if self._last_saved != runner.iter:
            self.save_grid(runner, runner.iter)
