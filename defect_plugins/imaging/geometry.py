"""Image geometry between a camera frame and a model's input grid (numpy and OpenCV only).

Every exported model has a fixed input size (``ModelMetadata.input_size``) unless it was exported
dynamic. A frame is brought to it in one of two ways (``ModelMetadata.resize``):

* ``stretch``: bilinear ``cv2.resize`` to ``(height, width)``;
* ``pad_square``: pad at the bottom/right to a square, then resize, so that long strips keep
  their aspect ratio (the ARCD strip configs' ``PadSquareResize`` transform,
  :class:`defect_plugins.seg.transforms.PadSquareResize`, uses :func:`pad_square_resize` from here).

Per-pixel results come back to the frame by the inverse geometry (:func:`from_model_grid`), and
ground-truth label maps go to the model grid by the same one (:func:`to_model_grid`, padding set
to the ignore index). The resize stays outside the graph on purpose: ``pad_square`` cannot be
written as an OpenVINO ``PrePostProcessor`` step, and the maps must be mapped back with the very
geometry that produced the input.
"""
from __future__ import annotations

import cv2
import numpy as np

# How a frame is brought to a model's input size (``ModelMetadata.resize`` of every export names one).
RESIZE_MODES = ("stretch", "pad_square")


def pad_square_resize(image: np.ndarray, scale: int, pad_val: float | int = 0,
                      interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad ``image`` (H, W[, C]) at the bottom/right to a square, then resize it to ``scale``.

    Returns the square image and the padding ``(pad_bottom, pad_right)`` in input pixels.
    """
    h, w = image.shape[:2]
    side = max(h, w)
    pad_b, pad_r = side - h, side - w
    padded = cv2.copyMakeBorder(image, 0, pad_b, 0, pad_r, cv2.BORDER_CONSTANT, value=pad_val)
    if padded.ndim < image.ndim:  # cv2 drops a trailing singleton channel
        padded = padded[..., None]
    if side != scale:
        resized = cv2.resize(padded, (scale, scale), interpolation=interpolation)
        if resized.ndim < padded.ndim:
            resized = resized[..., None]
    else:
        resized = padded
    return resized, (pad_b, pad_r)


def _check_mode(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")


def to_input(image_bgr: np.ndarray, size: tuple[int, int] | None, resize: str = "stretch") -> np.ndarray:
    """uint8 BGR ``(H, W, 3)`` -> model input ``(1, h, w, 3)``, resized when ``size`` is given."""
    _check_mode(resize)
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 BGR image (H, W, 3), got {image_bgr.dtype} {image_bgr.shape}")
    if size is not None and resize == "pad_square":
        if size[0] != size[1]:
            raise ValueError(f"pad_square needs a square input size, got {tuple(size)}")
        image_bgr, _ = pad_square_resize(image_bgr, int(size[0]))
    elif size is not None and tuple(image_bgr.shape[:2]) != tuple(size):
        image_bgr = cv2.resize(image_bgr, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image_bgr[None], dtype=np.uint8)


def from_model_grid(label_map: np.ndarray, shape: tuple[int, int], resize: str = "stretch") -> np.ndarray:
    """Map a per-pixel label map at the model's resolution back to an image of ``shape`` (nearest)."""
    _check_mode(resize)
    height, width = int(shape[0]), int(shape[1])
    label_map = label_map.astype(np.uint8)
    if resize == "pad_square":
        side = max(height, width)
        return cv2.resize(label_map, (side, side), interpolation=cv2.INTER_NEAREST)[:height, :width]
    return cv2.resize(label_map, (width, height), interpolation=cv2.INTER_NEAREST)


def heat_to_image(heat: np.ndarray, shape: tuple[int, int], resize: str = "stretch") -> np.ndarray:
    """Map a float map at the model's resolution back to an image of ``shape`` (bilinear)."""
    _check_mode(resize)
    height, width = int(shape[0]), int(shape[1])
    heat = np.asarray(heat, dtype=np.float32)
    if resize == "pad_square":
        side = max(height, width)
        return cv2.resize(heat, (side, side), interpolation=cv2.INTER_LINEAR)[:height, :width]
    return cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)


def to_model_grid(label_map: np.ndarray, size: tuple[int, int], resize: str = "stretch",
                  ignore_index: int = 255) -> np.ndarray:
    """Bring a ground-truth label map to the model's resolution as the image was (nearest)."""
    _check_mode(resize)
    if resize == "pad_square":
        out, _ = pad_square_resize(label_map, int(size[0]), pad_val=ignore_index, interpolation=cv2.INTER_NEAREST)
        return out
    return cv2.resize(label_map, (int(size[1]), int(size[0])), interpolation=cv2.INTER_NEAREST)
