"""The input contract of every exported model, written with OpenVINO's ``PrePostProcessor``.

Every IR of this package takes ``uint8`` images ``(N, H, W, 3)`` in BGR order, exactly what
``cv2.imread`` returns. The networks themselves are converted with the input their toolkit feeds
them (float NCHW, channel order and normalisation already applied); the steps in between are
added here as OpenVINO preprocessing, which the CPU plugin fuses into the first layers:

* tensor: ``u8``, layout ``NHWC``, colour ``BGR``; model: layout ``NCHW``;
* ``convert_element_type(f32)``, then ``convert_color(RGB)`` when the toolkit's preprocessor
  swaps channels (mmpretrain ``to_rgb``, mmseg ``bgr_to_rgb``, anomalib always: it reads RGB);
* ``mean`` and ``scale`` (division) per channel, in the order *after* the colour conversion,
  which is how mmpretrain's ``ClsDataPreprocessor`` and mmseg's ``SegDataPreProcessor`` apply
  their ``mean``/``std``; anomalib's graph only needs ``/ 255`` (its own normalisation is inside).

Resizing stays outside (see :mod:`defect_plugins.imaging.geometry`). Upstream reference: OpenVINO's
preprocessing guide (``docs/articles_en/openvino-workflow/running-inference/optimize-inference/optimize-preprocessing``)
and ``openvino.preprocess.PrePostProcessor``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INPUT_NAME = "image"


def uint8_bgr_input(ov_model: Any, *, to_rgb: bool, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, divide: float | None = None) -> Any:
    """Return ``ov_model`` with a uint8 BGR NHWC input in front of its float NCHW input.

    ``mean`` / ``std`` (per channel, 0-255 scale, in the model's channel order) or ``divide``
    (one factor, e.g. 255 for anomalib's ``[0, 1]`` input) are applied after the colour
    conversion. The input tensor is named ``image``.
    """
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    if len(ov_model.inputs) != 1:
        raise ValueError(f"expected a model with one image input, got {len(ov_model.inputs)} inputs")
    shape = ov_model.input(0).get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4 or (shape[1].is_static and shape[1].get_length() != 3):
        raise ValueError(f"expected a float (N, 3, H, W) model input, got {shape}")
    ppp = PrePostProcessor(ov_model)
    tensor = ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    if to_rgb:
        tensor.set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    if to_rgb:
        steps.convert_color(ColorFormat.RGB)
    if mean is not None:
        steps.mean([float(v) for v in mean])
    if std is not None:
        steps.scale([float(v) for v in std])
    if divide is not None:
        steps.scale(float(divide))
    ov_model = ppp.build()
    ov_model.input(0).get_tensor().set_names({INPUT_NAME})
    return ov_model
