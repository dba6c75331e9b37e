"""History of generated images for the discriminator updates (Zhu et al. 2017, section 4).

Zhu et al., after Shrivastava et al. (CVPR 2017), update each discriminator with a history of 50
generated images rather than only the newest ones, which reduces model oscillation. For each
image of a batch: while the pool is not full, the image is stored and returned; afterwards, with
probability 1/2 a stored image is returned and replaced by the new one, otherwise the new image
is returned.

The pool is a module with buffers so that mmengine checkpoints carry it and a resumed training
continues with the same history instead of an empty one.
"""
from __future__ import annotations

import torch
from torch import nn


class ImagePool(nn.Module):
    """A pool of up to ``pool_size`` generated images (``0`` turns the history off)."""

    def __init__(self, pool_size: int = 50):
        super().__init__()
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"ImagePool: pool_size must be an integer >= 0, got {pool_size!r}")
        self.pool_size = pool_size
        # allocated on the first query, when the image shape is known
        self.register_buffer("images", torch.empty(0))
        self.register_buffer("num_stored", torch.zeros((), dtype=torch.long))

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape: the new images mixed with stored ones (no gradient)."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        if self.images.numel() == 0:
            self.images = images.new_zeros((self.pool_size, *images.shape[1:]))
        elif self.images.shape[1:] != images.shape[1:]:
            raise ValueError(f"ImagePool: images of shape {tuple(images.shape[1:])} cannot join a pool of "
                             f"{tuple(self.images.shape[1:])}")
        out = []
        for image in images:
            stored = int(self.num_stored)
            if stored < self.pool_size:
                self.images[stored] = image
                self.num_stored += 1
                out.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(self.pool_size, ()))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The stored shape is only known from the checkpoint: adopt it before the default copy.
        key = prefix + "images"
        if key in state_dict and state_dict[key].shape != self.images.shape:
            self.images = torch.empty_like(state_dict[key], device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
