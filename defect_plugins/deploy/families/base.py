"""What the three family modules share: the loaded-model record, errors and post-processing settings.

Nothing here imports torch at module level: the runtime side (post-processing, overlays) of every
family must import in an install without it (:mod:`defect_plugins.deploy.selfcheck`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..metadata import ModelMetadata
from ..quantify import GradingRule


class ExportError(RuntimeError):
    """The model cannot be exported as asked (bad arguments, missing files)."""


@dataclass
class LoadedModel:
    """A PyTorch model of one family with this package's input contract, ready to convert.

    ``module`` maps a uint8 BGR ``(N, H, W, 3)`` tensor to the outputs named in
    ``metadata.outputs`` (a tensor or a tuple) with the preprocessing written in torch: it is the
    reference the OpenVINO graph is checked against (:func:`defect_plugins.deploy.export.parity`)
    and the PyTorch eager variant of the benchmark. ``converter(dynamic)`` builds the FP32
    ``ov.Model``, whose preprocessing is OpenVINO's ``PrePostProcessor`` (:mod:`..preprocess`).
    """

    module: Any
    metadata: ModelMetadata
    converter: Callable[[bool], Any] = field(repr=False)
    _converted: dict = field(default_factory=dict, repr=False)

    def convert(self, dynamic: bool):
        """The FP32 ``ov.Model`` (converted once per static/dynamic choice, then copied)."""
        if dynamic not in self._converted:
            self._converted[dynamic] = self.converter(dynamic)
        return self._converted[dynamic].clone()

    def torch_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """The reference module's outputs on a uint8 BGR NHWC batch, as numpy arrays in output order."""
        import torch

        with torch.no_grad():
            result = self.module(torch.from_numpy(np.ascontiguousarray(batch)))
        result = result if isinstance(result, (tuple, list)) else (result,)
        return [r.detach().float().numpy() if r.dtype != torch.bool else r.numpy() for r in result]


@dataclass(frozen=True)
class PostSettings:
    """How raw outputs become decisions and regions (``defect-infer`` options).

    ``image_threshold`` / ``pixel_threshold`` override the anomaly thresholds stored in the
    metadata; regions smaller than ``min_area`` pixels are ignored; ``rule`` grades regions.
    ``quantify=False`` skips the classifier's region measurement (the paper's Otsu chain at the
    image's resolution, 1-3 ms on a 200 x 200 image): for a gate that needs only the class.
    """

    rule: GradingRule = field(default_factory=GradingRule)
    min_area: int = 4
    quantify: bool = True
    image_threshold: float | None = None
    pixel_threshold: float | None = None


def check_file(path: str | Path | None, what: str) -> Path:
    """``path`` as a Path, or :class:`ExportError` naming ``what`` is missing."""
    if path is None:
        raise ExportError(f"{what} is required")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{what} {path} not found")
    return path


def checkpoint_classes(checkpoint: Path) -> list[str] | None:
    """Class names stored by mmengine in a checkpoint's ``meta`` (``dataset_meta.classes`` or ``CLASSES``)."""
    import torch

    state = torch.load(str(checkpoint), map_location="cpu", weights_only=False)
    meta = state.get("meta", {}) if isinstance(state, dict) else {}
    classes = (meta.get("dataset_meta") or {}).get("classes") or meta.get("CLASSES")
    return [str(c) for c in classes] if classes else None


def region_rows(regions: Any, class_name: str) -> list[dict[str, Any]]:
    """``DefectRegion`` objects -> result rows (their fields plus ``class``)."""
    return [{**region.to_dict(), "class": class_name} for region in regions]


def region_from_row(row: dict[str, Any]) -> Any:
    """A result row back to a ``DefectRegion`` (for drawing)."""
    from ..quantify import DefectRegion

    fields = {key: value for key, value in row.items() if key in DefectRegion.__dataclass_fields__}
    return DefectRegion(**{**fields, "centroid": tuple(fields["centroid"]), "bbox": tuple(fields["bbox"])})


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """Write a caption scaled to the picture (in place)."""
    import cv2

    scale = max(0.35, min(image.shape[:2]) / 300)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def caption_height(image: np.ndarray) -> int:
    scale = max(0.35, min(image.shape[:2]) / 300)
    return max(12, int(18 * scale))


def convert_network(network: Any, size: tuple[int, int], dynamic: bool, output_names: list[str]) -> Any:
    """``openvino.convert_model`` of a torch network on float ``(N, 3, H, W)`` input, outputs named.

    The batch is always free; height and width are ``size`` or free when ``dynamic``.
    """
    import openvino as ov
    import torch

    height, width = int(size[0]), int(size[1])
    shape = ov.PartialShape([-1, 3, -1, -1] if dynamic else [-1, 3, height, width])
    example = torch.rand(1, 3, height, width) * 255
    with torch.no_grad():
        ov_model = ov.convert_model(network, example_input=example, input=[(shape, ov.Type.f32)])
    if len(ov_model.outputs) != len(output_names):
        raise ExportError(f"the converted graph has {len(ov_model.outputs)} outputs, expected {output_names}")
    for output, name in zip(ov_model.outputs, output_names):
        output.get_tensor().set_names({name})
    return ov_model
