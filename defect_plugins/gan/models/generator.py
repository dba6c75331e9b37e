"""ResNet generator of CycleGAN (Zhu et al., ICCV 2017, appendix 7.2; after Johnson et al. 2016).

Layer names follow the paper: ``c7s1-k`` is a 7x7 Convolution-InstanceNorm-ReLU with k filters
and stride 1, ``dk`` a 3x3 stride-2 Convolution-InstanceNorm-ReLU, ``Rk`` a residual block of two
3x3 convolutions with k filters, ``uk`` a 3x3 fractional-strided (stride 1/2) Convolution-
InstanceNorm-ReLU. The paper's network is ``c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3``
(6 blocks for 128 px inputs); here the width (64) and the number of blocks are parameters so the
generator can be sized to a CPU. Reflection padding is used, as in the paper, to reduce border
artefacts. The RKD-SARSN paper (Huang et al., Algorithms 16(11):516, 2023, section 2.1) uses this
CycleGAN unchanged for its defect-sample migration.
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, normal_init
from mmpretrain.registry import MODELS
from torch import nn

_NORM = dict(type="IN")  # instance norm, no affine parameters (Zhu et al. follow Ulyanov et al.)


class ResidualBlock(nn.Module):
    """``Rk``: two 3x3 reflect-padded Convolution-InstanceNorm layers, ReLU between, identity shortcut."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvModule(channels, channels, 3, padding=1, padding_mode="reflect", norm_cfg=_NORM),
            ConvModule(channels, channels, 3, padding=1, padding_mode="reflect", norm_cfg=_NORM, act_cfg=None),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@MODELS.register_module()
class ResnetGenerator(BaseModule):
    """CycleGAN's image-to-image generator.

    Args:
        in_channels: channels of the input images.
        out_channels: channels of the output images.
        base_channels: filters of the first ``c7s1`` layer (paper: 64); each downsampling doubles them.
        num_blocks: residual blocks at the lowest resolution (paper: 9 at 256 px, 6 at 128 px).
        num_downsamples: stride-2 stages (paper: 2); inputs must be divisible by ``2 ** num_downsamples``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base_channels: int = 64, num_blocks: int = 9,
                 num_downsamples: int = 2, init_cfg: dict | None = None):
        super().__init__(init_cfg=init_cfg)
        for name, value, minimum in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                     ("base_channels", base_channels, 1), ("num_blocks", num_blocks, 0),
                                     ("num_downsamples", num_downsamples, 0)):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"ResnetGenerator: {name} must be an integer >= {minimum}, got {value!r}")
        self.num_downsamples = num_downsamples
        layers: list[nn.Module] = [  # c7s1-64
            ConvModule(in_channels, base_channels, 7, padding=3, padding_mode="reflect", norm_cfg=_NORM)]
        channels = base_channels
        for _ in range(num_downsamples):  # d128, d256
            layers.append(ConvModule(channels, channels * 2, 3, stride=2, padding=1, norm_cfg=_NORM))
            channels *= 2
        layers.extend(ResidualBlock(channels) for _ in range(num_blocks))  # R256 x num_blocks
        for _ in range(num_downsamples):  # u128, u64: output_padding=1 doubles the size exactly
            layers.append(ConvModule(channels, channels // 2, 3, stride=2, padding=1, norm_cfg=_NORM,
                                     conv_cfg=dict(type="deconv", output_padding=1)))
            channels //= 2
        # c7s1-3 with tanh: outputs live in [-1, 1] like the normalised inputs
        layers.append(ConvModule(channels, out_channels, 7, padding=3, padding_mode="reflect", norm_cfg=None,
                                 act_cfg=dict(type="Tanh"), bias=True))
        self.layers = nn.Sequential(*layers)

    def init_weights(self) -> None:
        """N(0, 0.02) convolution weights, as Zhu et al. train with.

        Why not ``init_cfg``: mmengine initialises children after the parent's ``init_cfg``,
        and every ``ConvModule`` then re-initialises its convolution with Kaiming's scheme.
        """
        super().init_weights()
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                normal_init(module, mean=0.0, std=0.02, bias=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 2 ** self.num_downsamples
        if x.dim() != 4 or x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"ResnetGenerator: expected (N, C, H, W) with H and W divisible by {factor}, "
                             f"got shape {tuple(x.shape)}")
        return self.layers(x)
