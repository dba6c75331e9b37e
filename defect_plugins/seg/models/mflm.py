"""MFLM: masked dilated convolution followed by a channel transformer (thesis chapter 4).

* :class:`MaskedDilatedConv` follows SSPCAB (Ristea et al., "Self-Supervised Predictive
  Convolutional Attentive Block for Anomaly Detection", CVPR 2022): four ``k x k`` sub-kernels sit
  at the corners of a ``(2k + 2d + 1)``-wide receptive field whose centre (and a ring of width
  ``d`` around it) is masked, so each output pixel is predicted from context only. It is
  implemented as four ordinary ``k x k`` convolutions on shifted views of the padded input, so
  parameter and FLOP counters see the real cost (four sub-kernels, not a dense large kernel).
* :class:`ChannelTransformer` follows SSMCTB (Madan et al., "Self-Supervised Masked
  Convolutional Transformer Block for Anomaly Detection", TPAMI 2023): global spatial average
  pooling, one token per channel made by a linear layer, a learned positional encoding, pre-norm
  multi-head self-attention across the channel tokens plus an MLP (both residual), and a
  per-channel sigmoid gate that rescales the features.
* :class:`MFLM` chains the two; the thesis uses ``k=3, d=1``, 5 heads of 64 dimensions, 1 layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class MaskedDilatedConv(BaseModule):
    """SSPCAB-style masked convolution: four corner ``k x k`` kernels, centre hidden.

    Args:
        in_channels / out_channels: channels.
        kernel_size: ``k``, the side of each corner sub-kernel.
        dilation: ``d``, the width of the masked ring between the centre and the sub-kernels.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3, dilation: int = 1,
                 bias: bool = True, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if kernel_size < 1 or dilation < 0:
            raise ValueError(f"MaskedDilatedConv: need kernel_size >= 1 and dilation >= 0, got {kernel_size}, {dilation}")
        out_channels = out_channels or in_channels
        self.kernel_size, self.dilation = kernel_size, dilation
        self.radius = kernel_size + dilation  # receptive field is 2 * radius + 1 wide
        self.corners = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias and i == 0) for i in range(4))

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        r, k = self.radius, self.kernel_size
        padded = F.pad(x, (r, r, r, r))
        far = 2 * r + 1 - k  # offset of the bottom/right sub-kernel inside the receptive field
        span_h, span_w = h + k - 1, w + k - 1
        out = 0
        for conv, (dy, dx) in zip(self.corners, ((0, 0), (0, far), (far, 0), (far, far))):
            out = out + conv(padded[..., dy:dy + span_h, dx:dx + span_w])
        return out


class _ChannelAttentionLayer(nn.Module):
    """Pre-norm multi-head self-attention over tokens with ``heads x head_dim`` inner width."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))
        self.dropout = dropout

    def forward(self, tokens: Tensor) -> Tensor:
        b, n, _ = tokens.shape
        q, k, v = self.qkv(self.norm1(tokens)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        tokens = tokens + self.proj(attn.transpose(1, 2).reshape(b, n, -1))
        return tokens + self.mlp(self.norm2(tokens))


@MODELS.register_module()
class ChannelTransformer(BaseModule):
    """SSMCTB-style channel transformer gate: ``x * sigmoid(T(tokens(avgpool(x))))``.

    Args:
        channels: number of channels (= number of tokens).
        token_dim: token width (64 in the thesis).
        num_heads / head_dim: attention heads and their width (5 x 64 in the thesis).
        num_layers: transformer layers (1 in the thesis).
    """

    def __init__(self, channels: int, token_dim: int = 64, num_heads: int = 5, head_dim: int = 64,
                 num_layers: int = 1, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.embed = nn.Linear(1, token_dim)
        self.pos = nn.Parameter(torch.zeros(1, channels, token_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.Sequential(*(_ChannelAttentionLayer(token_dim, num_heads, head_dim, mlp_ratio, dropout)
                                      for _ in range(num_layers)))
        self.norm = nn.LayerNorm(token_dim)
        self.head = nn.Linear(token_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3)).unsqueeze(-1)  # (B, C, 1): one scalar per channel
        tokens = self.layers(self.embed(pooled) + self.pos)
        gate = torch.sigmoid(self.head(self.norm(tokens))).unsqueeze(-1)  # (B, C, 1, 1)
        return x * gate


@MODELS.register_module()
class MFLM(BaseModule):
    """Masked dilated convolution + ReLU, then (optionally) the channel transformer gate.

    ``use_transformer=False`` gives the "masked dilated convolution alone" ablation (SSPCAB's
    block without its SE gate).
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1, use_transformer: bool = True,
                 token_dim: int = 64, num_heads: int = 5, head_dim: int = 64, num_layers: int = 1,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.conv = MaskedDilatedConv(channels, channels, kernel_size, dilation)
        self.act = nn.ReLU(inplace=True)
        self.transformer = (ChannelTransformer(channels, token_dim, num_heads, head_dim, num_layers)
                            if use_transformer else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        return self.transformer(self.act(self.conv(x)))
