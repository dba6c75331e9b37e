"""Anomaly map of AKF reverse distillation.

The AKF paper (Zhao et al., 2025) scores exactly as reverse distillation does
(Deng & Li, CVPR 2022, section 3.4): per level ``M_k = 1 - cos(teacher_k, student_k)``
over channels, upsampled to the input size, combined over the levels (sum by default),
smoothed with a Gaussian (sigma 4); the image score is the map's maximum. anomalib's
``reverse_distillation.anomaly_map.AnomalyMapGenerator`` implements that, and is what
runs with the default settings.

:class:`LevelWeightedAnomalyMapGenerator` adds one option: a weight per level
(``level_weights``), the per-level maps being the paper's Fig. 6 (M1-M3). RD's
equal-weight sum is the default. A weight of 0 drops a level from the map (it is still
distilled during training, since the loss uses every level). Why it exists: on large,
low-contrast defects the shallow level's ``1 - cos`` is high on the defect's border and on
normal texture alike, so it dilutes the deeper levels, which cover the defect's inside
(docs/RESULTS.md, "README demo": per-level pixel AUROC of the demo's model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from anomalib.models.components import GaussianBlur2d
from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode, AnomalyMapGenerator
from torch.nn import functional as F  # noqa: N812

__all__ = [
    "AnomalyMapGenerationMode",
    "AnomalyMapGenerator",
    "LevelWeightedAnomalyMapGenerator",
    "build_anomaly_map_generator",
    "normalize_anomaly_map_mode",
]


def normalize_anomaly_map_mode(mode: AnomalyMapGenerationMode | str) -> AnomalyMapGenerationMode:
    """``mode`` as anomalib's enum: the member, its name (any case: ``"ADD"``, ``"Multiply"``) or its value (``"add"``).

    anomalib's example configs write the member name (``anomaly_map_mode: ADD``, what jsonargparse
    accepts for an enum), older AKF-RD configs and checkpoints the value (``"add"``).
    """
    if isinstance(mode, AnomalyMapGenerationMode):
        return mode
    if isinstance(mode, str):
        key = mode.strip()
        by_name = {m.name.lower(): m for m in AnomalyMapGenerationMode}
        by_value = {m.value.lower(): m for m in AnomalyMapGenerationMode}
        found = by_name.get(key.lower()) or by_value.get(key.lower())
        if found is not None:
            return found
    names = ", ".join(m.name for m in AnomalyMapGenerationMode)
    values = ", ".join(repr(m.value) for m in AnomalyMapGenerationMode)
    msg = f"anomaly_map_mode must be one of {names} (or their values {values}; any case), got {mode!r}."
    raise ValueError(msg)


class LevelWeightedAnomalyMapGenerator(AnomalyMapGenerator):
    """anomalib's RD anomaly map with a weight per level.

    ``add``: ``sum_k w_k M_k``; ``multiply``: ``prod_k M_k ** w_k``; then anomalib's Gaussian
    blur. With every weight 1 this is anomalib's generator, unchanged (its ``forward`` runs).
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        sigma: int = 4,
        mode: AnomalyMapGenerationMode = AnomalyMapGenerationMode.ADD,
        level_weights: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__(image_size=image_size, sigma=sigma, mode=mode)
        self.level_weights = tuple(float(w) for w in level_weights)

    def level_maps(self, student_features: list[torch.Tensor],
                   teacher_features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The per-level maps ``M_k`` (``(N, 1, H, W)`` each, not blurred), as anomalib computes them."""
        maps = []
        for student, teacher in zip(student_features, teacher_features, strict=True):
            distance = (1 - F.cosine_similarity(student, teacher)).unsqueeze(1)
            maps.append(F.interpolate(distance, size=self.image_size, mode="bilinear", align_corners=True))
        return maps

    def forward(self, student_features: list[torch.Tensor], teacher_features: list[torch.Tensor]) -> torch.Tensor:
        """Blurred, level-weighted anomaly map ``(N, 1, H, W)``."""
        if len(self.level_weights) != len(student_features):
            msg = f"level_weights has {len(self.level_weights)} entries for {len(student_features)} feature levels."
            raise ValueError(msg)
        # float32 even under bf16 autocast (Lightning's "bf16-mixed"): 1 - cos needs more than 8 bits near 1
        student_features = [f.float() for f in student_features]
        teacher_features = [f.float() for f in teacher_features]
        if all(w == 1.0 for w in self.level_weights):
            return super().forward(student_features, teacher_features)
        anomaly_map: torch.Tensor | None = None
        for weight, level in zip(self.level_weights, self.level_maps(student_features, teacher_features), strict=True):
            if weight == 0.0:
                continue
            if self.mode == AnomalyMapGenerationMode.MULTIPLY:
                level = level.clamp_min(0).pow(weight)
                anomaly_map = level if anomaly_map is None else anomaly_map * level
            else:
                anomaly_map = weight * level if anomaly_map is None else anomaly_map + weight * level
        blur = GaussianBlur2d(kernel_size=(self.kernel_size, self.kernel_size), sigma=(self.sigma, self.sigma))
        return blur.to(anomaly_map.device)(anomaly_map)


def build_anomaly_map_generator(
    image_size: tuple[int, int],
    mode: AnomalyMapGenerationMode | str = AnomalyMapGenerationMode.ADD,
    sigma: int = 4,
    level_weights: Sequence[float] = (1.0, 1.0, 1.0),
) -> LevelWeightedAnomalyMapGenerator:
    """Return RD's anomaly-map generator; ``mode`` as :func:`normalize_anomaly_map_mode` takes it."""
    mode = normalize_anomaly_map_mode(mode)
    if sigma <= 0:
        msg = f"anomaly map sigma must be positive, got {sigma}."
        raise ValueError(msg)
    weights = [float(w) for w in level_weights]
    if len(weights) != 3 or any(w < 0 for w in weights) or not any(w > 0 for w in weights):  # noqa: PLR2004
        msg = f"anomaly_map_level_weights must be 3 non-negative numbers, not all 0, got {list(level_weights)!r}."
        raise ValueError(msg)
    return LevelWeightedAnomalyMapGenerator(image_size=tuple(image_size), sigma=sigma, mode=mode, level_weights=weights)
