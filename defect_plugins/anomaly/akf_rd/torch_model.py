"""PyTorch model of AKF reverse distillation.

Zhao, Wang, Zhu, Xue (2025), "渐进式融合知识蒸馏的工业异常检测方法"
(asymptotic fusion knowledge distillation for industrial anomaly detection):
reverse distillation (Deng & Li, CVPR 2022) -- a frozen pretrained encoder as
teacher, a trainable bottleneck and a decoder student mirroring the encoder --
whose bottleneck fuses the teacher's levels by asymptotic knowledge fusion
(AKF) and embeds them with a residual one-class embedding (OCE).

Teacher: anomalib's ``TimmFeatureExtractor``; student decoder: anomalib's
``get_decoder(backbone)``; anomaly map: anomalib's RD generator. Only the
bottleneck (``components/``) is new. Channel counts come from the chosen
backbone, so every backbone with an anomalib decoder works (resnet18/34/50/101/152,
resnext50_32x4d, resnext101_32x8d, wide_resnet50_2, wide_resnet101_2).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from anomalib.data import InferenceBatch
from anomalib.models.components import GaussianBlur2d, TimmFeatureExtractor
from anomalib.models.components.backbone import get_decoder
from torch import nn

from defect_plugins.anomaly.teacher import load_teacher_weights

from .anomaly_map import AnomalyMapGenerationMode, build_anomaly_map_generator
from .components import AkfBottleneck
from .components.bottleneck import FusionType
from .components.fusion import WeightMode, normalize_weight_mode

__all__ = ["AkfReverseDistillationModel", "decoder_input_channels"]


def decoder_input_channels(decoder: nn.Module) -> int:
    """Channels the anomalib ResNet decoder expects (in-channels of its first conv)."""
    for module in decoder.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return int(module.in_channels)
    msg = f"Cannot find a convolution in decoder {type(decoder).__name__}."
    raise ValueError(msg)


class AkfReverseDistillationModel(nn.Module):
    """Teacher encoder -> AKF bottleneck -> decoder student.

    Args:
        backbone: Teacher backbone (timm name with an anomalib decoder).
        input_size: ``(H, W)`` of the model input (after pre-processing).
        layers: Teacher layers, shallow first (the paper: layer1-3).
        fusion: ``"akf"`` (paper) or ``"concat"`` (traditional RD fusion).
        oce: Residual one-class embedding after the fusion (paper: ``True``).
        akf_weights: ``"positional"`` (the paper's learnable ``C x H x W`` weight per
            level, ties the model to ``input_size``), ``"adaptive"`` or
            ``"adaptive_channels"`` (input-conditioned, ``1`` or ``C`` maps per input);
            ``"fixed"`` is the deprecated name of ``"positional"``.
        akf_lateral: conv on the deeper level of each AKF step (default); ``False`` is
            the literal reading of the paper's fusion (see ``components/fusion.py``).
        pre_trained: Teacher weights from timm's hub (needs internet).
        teacher_weights: Local torchvision/timm state dict for the teacher
            (offline factories); used instead of ``pre_trained``.
        anomaly_map_mode: ``ADD`` (default, as anomalib's RD) or ``MULTIPLY``: the enum
            member, its name in any case or its value (``"add"``, ``"multiply"``).
        anomaly_map_sigma: Gaussian blur of the anomaly map in input pixels
            (RD and the AKF paper: 4 at 256 px).
        anomaly_map_level_weights: Weight of each level's map (shallow first) in
            the anomaly map; RD's equal sum by default (see ``anomaly_map.py``).
    """

    def __init__(
        self,
        backbone: str,
        input_size: tuple[int, int],
        layers: Sequence[str] = ("layer1", "layer2", "layer3"),
        fusion: FusionType = "akf",
        oce: bool = True,
        akf_weights: WeightMode = "positional",
        pre_trained: bool = True,
        teacher_weights: str | Path | None = None,
        anomaly_map_mode: AnomalyMapGenerationMode | str = AnomalyMapGenerationMode.ADD,
        anomaly_map_sigma: int = 4,
        anomaly_map_level_weights: Sequence[float] = (1.0, 1.0, 1.0),
        akf_lateral: bool = True,
    ) -> None:
        super().__init__()
        akf_weights = normalize_weight_mode(akf_weights)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        use_hub = pre_trained and teacher_weights is None
        self.encoder = TimmFeatureExtractor(backbone=backbone, pre_trained=use_hub, layers=list(layers))
        if teacher_weights is not None:
            load_teacher_weights(self.encoder.feature_extractor, teacher_weights)
        channels = list(self.encoder.out_dims)
        reductions = list(self.encoder.reductions)
        if len(channels) != 3:  # noqa: PLR2004 - the decoders mirror exactly three encoder levels
            msg = f"AKF-RD needs exactly three teacher layers (the decoder mirrors three), got {list(layers)}."
            raise ValueError(msg)
        for size in self.input_size:
            if size % (2 * reductions[-1]):
                msg = (
                    f"image_size {self.input_size} must be a multiple of {2 * reductions[-1]} for backbone "
                    f"{backbone!r} (the bottleneck works at 1/{2 * reductions[-1]} of the input)."
                )
                raise ValueError(msg)
        self.decoder = get_decoder(backbone)
        self.bottleneck = AkfBottleneck(
            backbone=backbone,
            channels=channels,
            reductions=reductions,
            decoder_channels=decoder_input_channels(self.decoder),
            fusion=fusion,
            oce=oce,
            akf_weights=akf_weights,
            image_size=self.input_size,
            akf_lateral=akf_lateral,
        )
        self.fixed_size = fusion == "akf" and akf_weights == "positional"
        self.anomaly_map_generator = build_anomaly_map_generator(
            self.input_size, anomaly_map_mode, anomaly_map_sigma, anomaly_map_level_weights,
        )

    def _check_size(self, images: torch.Tensor) -> None:
        if images.dim() != 4:  # noqa: PLR2004
            msg = f"AKF-RD expects a (N, 3, H, W) batch, got shape {tuple(images.shape)}."
            raise ValueError(msg)
        if self.fixed_size and tuple(images.shape[-2:]) != self.input_size:
            msg = (
                f"AKF-RD with positional fusion weights (the paper's) was built for input size "
                f"{self.input_size}, got {tuple(images.shape[-2:])}. Resize inputs to {self.input_size} "
                "(the model's pre-processor does), or build the model with akf_weights='adaptive'."
            )
            raise ValueError(msg)

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]] | InferenceBatch:
        """Training: ``(teacher_features, student_features)``; eval: ``InferenceBatch(pred_score, anomaly_map)``."""
        self._check_size(images)
        self.encoder.eval()
        teacher = list(self.encoder(images).values())
        student = self.decoder(self.bottleneck(teacher))
        if self.training:
            return teacher, student
        anomaly_map = self.anomaly_map_generator(teacher, student)
        pred_score = torch.amax(anomaly_map, dim=(-2, -1))
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map)

    @torch.no_grad()
    def level_anomaly_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Per-level maps ``M_1 .. M_L`` (the AKF paper's Fig. 6), ``(N, L, H, W)``, blurred as the anomaly map.

        Each channel is one level's ``1 - cos(teacher, student)`` upsampled to the input
        size and smoothed with the model's ``anomaly_map_sigma``, i.e. what the anomaly map
        would be with that level's weight 1 and the others 0; channel ``k`` fits any overlay
        that takes an ``(N, 1, H, W)`` anomaly map (``[:, k:k+1]``).
        """
        self._check_size(images)
        was_training = self.training
        self.eval()
        try:
            teacher = list(self.encoder(images).values())
            student = self.decoder(self.bottleneck(teacher))
            generator = self.anomaly_map_generator
            blur = GaussianBlur2d(kernel_size=(generator.kernel_size, generator.kernel_size),
                                  sigma=(generator.sigma, generator.sigma)).to(images.device)
            return torch.cat([blur(level) for level in generator.level_maps(student, teacher)], dim=1)
        finally:
            self.train(was_training)
