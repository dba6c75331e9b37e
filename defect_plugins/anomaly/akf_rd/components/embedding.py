"""From the fused teacher map to the decoder's input (the bottleneck's second half).

* :class:`OneClassEmbedding` (OCE) -- residual ResNet blocks with stride 2, the
  one-class embedding of reverse distillation (Deng & Li, CVPR 2022; anomalib
  ``reverse_distillation/components/bottleneck.py``, ``OCBE.bn_layer``), built
  from torchvision's ``BasicBlock`` / ``Bottleneck`` exactly as RD builds it.
  The AKF paper (Zhao et al., 2025) keeps it after the fusion.
* :class:`ResampleEmbedding` -- the ablation without OCE: a single strided
  3x3 conv + BN + ReLU that only resamples the fused map to the decoder's
  channels and size.

Both output ``512 * block.expansion`` channels at half the deepest level's size
(2048 at 1/32 for wide_resnet50_2 / resnet50, 512 at 1/32 for resnet18/34),
which is what anomalib's ``get_decoder(backbone)`` expects.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .fusion import conv_bn_relu

__all__ = ["OneClassEmbedding", "ResampleEmbedding", "block_for_backbone"]

# Backbones whose decoder is built from basic blocks (as anomalib's get_bottleneck_layer decides).
_BASIC_BLOCK_BACKBONES = frozenset({"resnet18", "resnet34"})


def block_for_backbone(backbone: str) -> tuple[type[BasicBlock | Bottleneck], int]:
    """Return the residual block type and the number of OCE blocks RD uses for ``backbone``."""
    if backbone in _BASIC_BLOCK_BACKBONES:
        return BasicBlock, 2
    return Bottleneck, 3


def _init_weights(module: nn.Module) -> None:
    # Same initialisation as RD's OCBE: Kaiming-normal convs, unit BN.
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            nn.init.kaiming_normal_(sub.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(sub, nn.BatchNorm2d):
            nn.init.constant_(sub.weight, 1)
            nn.init.constant_(sub.bias, 0)


class OneClassEmbedding(nn.Sequential):
    """Residual one-class embedding (OCE): ``num_blocks`` ResNet blocks, the first with stride 2.

    Args:
        in_channels: Channels of the fused map.
        block: torchvision ``BasicBlock`` or ``Bottleneck``.
        num_blocks: Number of residual blocks (RD: 2 for resnet18/34, 3 otherwise).
        planes: Block width; output channels are ``planes * block.expansion``.
    """

    def __init__(
        self,
        in_channels: int,
        block: type[BasicBlock | Bottleneck],
        num_blocks: int,
        planes: int = 512,
    ) -> None:
        out_channels = planes * block.expansion
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        blocks: list[nn.Module] = [block(in_channels, planes, stride=2, downsample=downsample)]
        blocks.extend(block(out_channels, planes) for _ in range(1, num_blocks))
        super().__init__(*blocks)
        self.out_channels = out_channels
        _init_weights(self)


class ResampleEmbedding(nn.Sequential):
    """Plain resampling to the decoder input (ablation "without OCE"): strided 3x3 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(*conv_bn_relu(in_channels, out_channels, stride=2))
        self.out_channels = out_channels
        _init_weights(self)
