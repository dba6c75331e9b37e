"""70x70 PatchGAN discriminator of CycleGAN (Zhu et al., ICCV 2017, appendix 7.2; after pix2pix).

``Ck`` is a 4x4 Convolution-InstanceNorm-LeakyReLU(0.2) layer with k filters; the paper's network is
``C64-C128-C256-C512`` (no InstanceNorm on C64) followed by a convolution to one channel. Each output
value judges one overlapping 70x70 patch: this receptive field needs stride 2 on the first three
layers and stride 1 on ``C512`` and on the last convolution (the field is checked in the tests).
The width and the number of stride-2 layers are parameters (``num_layers=3`` gives the 70x70 field).
Used unchanged by the RKD-SARSN paper's defect-sample migration (Huang et al. 2023, section 2.1).
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, normal_init
from mmpretrain.registry import MODELS
from torch import nn

_ACT = dict(type="LeakyReLU", negative_slope=0.2)


@MODELS.register_module()
class PatchDiscriminator(BaseModule):
    """Patch-level real/fake scores (no sigmoid: the least-squares GAN loss takes raw scores).

    Args:
        in_channels: channels of the judged images.
        base_channels: filters of ``C64`` (paper: 64); doubled per layer, capped at 8x.
        num_layers: stride-2 layers (paper: 3, the 70x70 receptive field).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3,
                 init_cfg: dict | None = None):
        super().__init__(init_cfg=init_cfg)
        for name, value in (("in_channels", in_channels), ("base_channels", base_channels),
                            ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PatchDiscriminator: {name} must be an integer >= 1, got {value!r}")
        layers: list[nn.Module] = [  # C64: no normalisation on the first layer
            ConvModule(in_channels, base_channels, 4, stride=2, padding=1, norm_cfg=None, act_cfg=_ACT)]
        channels = base_channels
        for index in range(1, num_layers + 1):
            out = base_channels * min(2 ** index, 8)
            stride = 2 if index < num_layers else 1  # C128, C256 stride 2; C512 stride 1
            layers.append(ConvModule(channels, out, 4, stride=stride, padding=1, norm_cfg=dict(type="IN"),
                                     act_cfg=_ACT))
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    def init_weights(self) -> None:
        """N(0, 0.02) weights as Zhu et al. (after the ConvModules' own Kaiming init, which runs last otherwise)."""
        super().init_weights()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                normal_init(module, mean=0.0, std=0.02, bias=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
