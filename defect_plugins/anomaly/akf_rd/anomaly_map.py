"""Anomaly map of AKF reverse distillation.

The AKF paper (Zhao et al., 2025) scores exactly as reverse distillation does
(Deng & Li, CVPR 2022): per level ``1 - cos(teacher, student)`` over channels,
upsampled to the input size, combined over levels (sum by default), smoothed
with a Gaussian (sigma 4); the image score is the map's maximum. anomalib's
``reverse_distillation.anomaly_map.AnomalyMapGenerator`` implements that, so
it is reused as is; this module only validates the YAML-facing options.
"""

from __future__ import annotations

from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode, AnomalyMapGenerator

__all__ = ["AnomalyMapGenerationMode", "AnomalyMapGenerator", "build_anomaly_map_generator"]


def build_anomaly_map_generator(
    image_size: tuple[int, int],
    mode: AnomalyMapGenerationMode | str = AnomalyMapGenerationMode.ADD,
    sigma: int = 4,
) -> AnomalyMapGenerator:
    """Return RD's anomaly-map generator; ``mode`` may be the enum or ``"add"``/``"multiply"``."""
    try:
        mode = AnomalyMapGenerationMode(mode)
    except ValueError as exc:
        msg = f"anomaly_map_mode must be one of {[m.value for m in AnomalyMapGenerationMode]}, got {mode!r}."
        raise ValueError(msg) from exc
    if sigma <= 0:
        msg = f"anomaly map sigma must be positive, got {sigma}."
        raise ValueError(msg)
    return AnomalyMapGenerator(image_size=tuple(image_size), sigma=sigma, mode=mode)
