"""GL-Attention: global self-attention over pooled tokens fused with a local convolutional path.

The MGJR abstract (Meng et al., J. Industrial Information Integration 48:100958, 2025) says the
student's GL-Attention "keeps context while emphasising local anomalies"; the paper body is
not public, so the block follows two documented designs:

* **Global path** - multi-head self-attention in which every position queries a *pooled* token
  set: keys and values come from the feature map average-pooled to at most ``pool_size`` x
  ``pool_size`` tokens. This is PVT v2's linear spatial-reduction attention (Wang et al., "PVT
  v2: Improved Baselines with Pyramid Vision Transformer", CVMJ 2022): cost ``O(HW * P^2)``
  instead of ``O((HW)^2)``, so the block stays cheap on early, large maps.
* **Local path** - depth-wise ``k x k`` convolution + BatchNorm + GELU + point-wise 1x1
  convolution (the MobileNet / ConvNeXt local mixer), which keeps small, high-frequency
  anomalies (pits, fine scratches) that pooling would wash out.
* **Fusion** - the two paths are concatenated and mixed by a 1x1 convolution + BatchNorm whose
  scale starts at zero, added to the input as a residual. The block therefore starts as the
  identity and cannot hurt a network at initialisation (the "zero-init residual" practice of
  Goyal et al., 2017).

Any ``H, W >= 1`` works: the pooled grid is ``min(pool_size, H) x min(pool_size, W)``, and the
padded depth-wise convolution keeps the size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import nn


@MODELS.register_module()
class GLAttention(BaseModule):
    """Global-local attention block, ``(B, C, H, W) -> (B, C, H, W)``.

    Args:
        channels: input (= output) channels.
        num_heads: heads of the global attention; ``channels`` must be divisible by it.
        pool_size: side of the pooled key/value grid (PVT v2 uses 7).
        local_kernel: kernel of the depth-wise local path (odd).
        attn_dim: total query/key width (default ``channels``); a smaller value saves parameters.
    """

    def __init__(self, channels: int, num_heads: int = 8, pool_size: int = 7, local_kernel: int = 3,
                 attn_dim: int | None = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        attn_dim = attn_dim or channels
        if attn_dim % num_heads:
            raise ValueError(f"GLAttention: attention width {attn_dim} must be divisible by num_heads={num_heads}")
        if local_kernel % 2 == 0:
            raise ValueError(f"GLAttention: local_kernel must be odd, got {local_kernel}")
        if pool_size < 1:
            raise ValueError(f"GLAttention: pool_size must be >= 1, got {pool_size}")
        self.channels = channels
        self.num_heads = num_heads
        self.pool_size = pool_size
        self.attn_dim = attn_dim
        self.scale = (attn_dim // num_heads) ** -0.5
        self.norm = nn.BatchNorm2d(channels)
        self.q = nn.Conv2d(channels, attn_dim, 1)
        self.kv = nn.Conv2d(channels, attn_dim * 2, 1)
        self.local = nn.Sequential(
            nn.Conv2d(channels, channels, local_kernel, padding=local_kernel // 2, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 1),
        )
        self.fuse = nn.Conv2d(attn_dim + channels, channels, 1, bias=False)
        self.fuse_bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.fuse_bn.weight)

    def global_path(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        heads, dh = self.num_heads, self.attn_dim // self.num_heads
        q = self.q(x).reshape(b, heads, dh, h * w).transpose(2, 3)  # (B, heads, HW, dh)
        pooled = F.adaptive_avg_pool2d(x, (min(self.pool_size, h), min(self.pool_size, w)))
        k, v = self.kv(pooled).reshape(b, 2, heads, dh, -1).unbind(1)  # (B, heads, dh, P)
        attn = torch.matmul(q, k).mul(self.scale).softmax(dim=-1)  # (B, heads, HW, P)
        out = torch.matmul(attn, v.transpose(2, 3))  # (B, heads, HW, dh)
        return out.transpose(2, 3).reshape(b, self.attn_dim, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            raise ValueError(f"GLAttention built for {self.channels} channels got an input with {x.shape[1]}")
        y = self.norm(x)
        fused = self.fuse_bn(self.fuse(torch.cat([self.global_path(y), self.local(y)], dim=1)))
        return x + fused
