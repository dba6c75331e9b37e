"""MDC and MFLM: masked convolutions with an attention gate (thesis chapter 4, Table 4.2).

Zhang Xunfei, "Research on steel defect detection based on semantic segmentation" (Zhejiang
University master's thesis, 2023) compares, in Table 4.2, three versions of its stage-1
reconstructor: the base network, "Base + MDC" and "Base + MFLM". Both modules replace the *second*
3x3 convolution of each of the five encoder blocks (see
:class:`~defect_plugins.seg.models.ARCDReconstructor`).

* :class:`MaskedDilatedConv` follows SSPCAB (Ristea et al., "Self-Supervised Predictive
  Convolutional Attentive Block for Anomaly Detection", CVPR 2022): four ``k x k`` sub-kernels sit
  at the corners of a ``(2k + 2d + 1)``-wide receptive field whose centre (and a ring of width
  ``d`` around it) is masked, so each output pixel is predicted from context only. It is
  implemented as four ordinary ``k x k`` convolutions on shifted views of the padded input, so
  parameter and FLOP counters see the real cost (four sub-kernels, not a dense large kernel):
  ``4 k^2 c^2`` weights, i.e. ``36 c^2`` for ``k = 3`` against a 3x3 convolution's ``9 c^2``, and
  ``4 c^2`` for ``k = 1``.
* :class:`SqueezeExcitation` is SSPCAB's gate: global average pooling, ``Linear(c, c / r)``,
  ReLU, ``Linear(c / r, c)``, sigmoid, channel re-weighting (``r = 8``).
* :class:`ChannelTransformer` follows SSMCTB (Madan et al., "Self-Supervised Masked Convolutional
  Transformer Block for Anomaly Detection", TPAMI 2023): global average pooling gives one scalar
  per channel, a ``Linear(1, token_dim)`` turns it into a token, a learned positional embedding
  (one per channel) is added, multi-head self-attention runs across the channel tokens
  (``heads x head_dim`` inner width, bias-free QKV, output projection back to ``token_dim``), and
  the mean over each output token, through a sigmoid, re-weights its channel.
* :class:`MFLM` chains masked convolution, ReLU and one of the gates. The thesis' settings
  (Table 4.2, reproduced by ``experiments/arcd/arcd_complexity.py``): MDC = ``k=3, d=1`` + SE gate
  (reduction 8), SSPCAB's block; MFLM = ``k=1, d=1`` + channel transformer with 64-dimensional
  tokens, 5 heads of 64, one layer, SSMCTB's block.

Where MFLM's saving comes from: its 1x1 corner kernels (``4 c^2`` weights per block instead of a
3x3 convolution's ``9 c^2``, or MDC's ``36 c^2``), not the transformer, which adds only about
82 k parameters per block (0.41 M for five blocks of a width-128 network). The thesis text's
"3x3" sub-kernels describe MDC.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

ATTENTIONS = ("transformer", "se", "none")


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
            raise ValueError(f"MaskedDilatedConv: need kernel_size >= 1 and dilation >= 0, "
                             f"got {kernel_size}, {dilation}")
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


@MODELS.register_module()
class SqueezeExcitation(BaseModule):
    """SSPCAB's squeeze-and-excitation gate: ``x * sigmoid(W2 relu(W1 avgpool(x)))``.

    Args:
        channels: number of channels.
        reduction: the hidden layer has ``channels // reduction`` units, at least 1 (8 in SSPCAB and
            the thesis).
    """

    def __init__(self, channels: int, reduction: int = 8, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if reduction < 1:
            raise ValueError(f"SqueezeExcitation: reduction must be >= 1, got {reduction}")
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[..., None, None]


class _ChannelAttentionLayer(nn.Module):
    """Multi-head self-attention over channel tokens with ``heads x head_dim`` inner width.

    ``residual_mlp=False`` (SSMCTB): ``proj(attention(qkv(tokens)))`` alone. ``True``: a pre-norm
    transformer encoder layer (attention and an MLP, both residual).
    """

    def __init__(self, dim: int, heads: int, head_dim: int, residual_mlp: bool, mlp_ratio: float,
                 dropout: float) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim, self.residual_mlp = heads, head_dim, residual_mlp
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        if residual_mlp:
            self.norm1 = nn.LayerNorm(dim)
            self.norm2 = nn.LayerNorm(dim)
            hidden = int(dim * mlp_ratio)
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                     nn.Dropout(dropout))
        self.dropout = dropout

    def attend(self, tokens: Tensor) -> Tensor:
        b, n, _ = tokens.shape
        q, k, v = self.qkv(tokens).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(attn.transpose(1, 2).reshape(b, n, -1))

    def forward(self, tokens: Tensor) -> Tensor:
        if not self.residual_mlp:
            return self.attend(tokens)
        tokens = tokens + self.attend(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


@MODELS.register_module()
class ChannelTransformer(BaseModule):
    """SSMCTB-style channel transformer gate: ``x * sigmoid(mean_d T(tokens(avgpool(x)) + pos))``.

    Args:
        channels: number of channels (= number of tokens, = rows of the positional embedding).
        token_dim: token width (64 in the thesis).
        num_heads / head_dim: attention heads and their width (5 x 64 in the thesis).
        num_layers: attention layers (1 in the thesis).
        residual_mlp: ``False`` (default, SSMCTB): each layer is attention + output projection and
            the gate is the sigmoid of each token's mean. ``True``: pre-norm encoder layers
            (residual attention + MLP), a final LayerNorm and a ``Linear(token_dim, 1)`` gate head.
    """

    def __init__(self, channels: int, token_dim: int = 64, num_heads: int = 5, head_dim: int = 64,
                 num_layers: int = 1, residual_mlp: bool = False, mlp_ratio: float = 2.0, dropout: float = 0.0,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if min(channels, token_dim, num_heads, head_dim, num_layers) < 1:
            raise ValueError(f"ChannelTransformer: channels, token_dim, num_heads, head_dim and num_layers must be "
                             f">= 1, got {channels}, {token_dim}, {num_heads}, {head_dim}, {num_layers}")
        self.residual_mlp = residual_mlp
        self.embed = nn.Linear(1, token_dim)
        self.pos = nn.Parameter(torch.zeros(1, channels, token_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.Sequential(*(_ChannelAttentionLayer(token_dim, num_heads, head_dim, residual_mlp, mlp_ratio,
                                                             dropout) for _ in range(num_layers)))
        if residual_mlp:
            self.norm = nn.LayerNorm(token_dim)
            self.head = nn.Linear(token_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(2, 3)).unsqueeze(-1)  # (B, C, 1): one scalar per channel
        tokens = self.layers(self.embed(pooled) + self.pos)
        score = self.head(self.norm(tokens)) if self.residual_mlp else tokens.mean(dim=-1, keepdim=True)
        return x * torch.sigmoid(score).unsqueeze(-1)  # (B, C, 1, 1) gate


@MODELS.register_module()
class MFLM(BaseModule):
    """Masked dilated convolution + ReLU + an attention gate (SSPCAB / SSMCTB form).

    Args:
        channels: input = output channels.
        kernel_size / dilation: ``k`` and ``d`` of :class:`MaskedDilatedConv` (MFLM: 1 and 1).
        attention: ``'transformer'`` (:class:`ChannelTransformer`, MFLM), ``'se'``
            (:class:`SqueezeExcitation`, SSPCAB, the thesis' MDC) or ``'none'`` (masked convolution alone).
        token_dim / num_heads / head_dim / num_layers / residual_mlp: :class:`ChannelTransformer`'s.
        se_reduction: :class:`SqueezeExcitation`'s ``reduction``.
    """

    def __init__(self, channels: int, kernel_size: int = 1, dilation: int = 1, attention: str = "transformer",
                 token_dim: int = 64, num_heads: int = 5, head_dim: int = 64, num_layers: int = 1,
                 residual_mlp: bool = False, se_reduction: int = 8, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if attention not in ATTENTIONS:
            raise ValueError(f"MFLM: attention must be one of {ATTENTIONS}, got {attention!r}")
        self.attention = attention
        self.conv = MaskedDilatedConv(channels, channels, kernel_size, dilation)
        self.act = nn.ReLU(inplace=True)
        if attention == "transformer":
            self.gate = ChannelTransformer(channels, token_dim, num_heads, head_dim, num_layers, residual_mlp)
        elif attention == "se":
            self.gate = SqueezeExcitation(channels, se_reduction)
        else:
            self.gate = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.act(self.conv(x)))
