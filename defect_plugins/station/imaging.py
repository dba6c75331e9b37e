"""Uploaded bytes -> a checked BGR image, and images -> data URLs for the page.

Uploads go through the package's one check-and-decode, :func:`defect_plugins.imaging.decode.decode_image`
(shared with ``defect-infer``): signature, header sizes read as the decoders read them, the
station's pixel limit (``--max-pixels``), a minimum size, an estimate of the decode's memory, a
truncated or corrupt file refused before it is graded, and a process-wide budget of concurrent
decodes. :class:`ImageRejected` (message starting with the file's name) is re-exported here for
the existing imports, with :func:`sniff_format` and :func:`header_size`.

numpy and OpenCV only (and :mod:`defect_plugins.imaging.decode`).
"""
from __future__ import annotations

import base64

import cv2
import numpy as np

from defect_plugins.imaging.decode import ImageRejected, decode_image, header_size, sniff_format

__all__ = ["ImageRejected", "data_url", "decode_upload", "fit", "header_size", "sniff_format"]


def decode_upload(data: bytes, name: str, *, max_pixels: int) -> np.ndarray:
    """Check and decode an uploaded file to uint8 BGR ``(H, W, 3)``; :class:`ImageRejected` says why not."""
    return decode_image(data, name, max_pixels=max_pixels, limit_label="the station's limit",
                        limit_option="--max-pixels")


def fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so that the longer side is at most ``max_side`` (area interpolation); small images stay as they are."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def data_url(image: np.ndarray, max_side: int = 640, *, lossless: bool = False) -> str:
    """A ``data:`` URL of ``image`` (BGR or grey) shrunk to ``max_side`` (the page needs no image route).

    JPEG at quality 92 for pictures (five times faster to encode than PNG here, and smaller);
    PNG when ``lossless`` (masks: JPEG would blur their edges).
    """
    picture = fit(image, max_side)
    if lossless:
        ok, encoded = cv2.imencode(".png", picture, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        kind = "png"
    else:
        ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 92])
        kind = "jpeg"
    if not ok:
        raise ValueError(f"{kind.upper()} encoding failed")
    return f"data:image/{kind};base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
