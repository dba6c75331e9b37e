"""Uploaded bytes -> a checked BGR image, and images -> data URLs for the page.

An upload is checked before OpenCV decodes it, so that a bad file gets a message that says what
is wrong instead of a crash or a silent grey image:

* an empty file, or bytes that are no PNG, JPEG, BMP or TIFF (their signatures are checked);
* an image larger than the station's pixel limit, read from the header without decoding (a
  10000 x 10000 PNG of one colour is a few hundred kilobytes and 300 MB once decoded);
* a truncated file: OpenCV decodes a JPEG without its end-of-image marker into an image whose
  missing part is grey, with only a warning on stderr, so the marker is checked here; PNG
  files must end with their IEND chunk;
* data that OpenCV still cannot decode (a corrupt body behind a valid header).

numpy and OpenCV only.
"""
from __future__ import annotations

import base64
import struct

import cv2
import numpy as np

FORMATS = "PNG, JPEG, BMP or TIFF"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageRejected(ValueError):
    """An upload that is not a usable image; the message starts with the file's name."""


def sniff_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``bmp``, ``tiff`` from the first bytes, or None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` from the header, or None when the header is cut short or malformed."""
    try:
        if fmt == "png":
            if data[12:16] != b"IHDR":
                return None
            return struct.unpack(">II", data[16:24])
        if fmt == "jpeg":
            return _jpeg_size(data)
        if fmt == "bmp":
            width, height = struct.unpack("<ii", data[18:26])
            return width, abs(height)
        if fmt == "tiff":
            return _tiff_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG markers to the first start-of-frame segment (height and width are in it)."""
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            index += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[index + 2:index + 4])
        if marker in JPEG_SOF:
            height, width = struct.unpack(">HH", data[index + 5:index + 9])
            return width, height
        index += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset:offset + 2])
    found = {}
    for entry in range(count):
        start = offset + 2 + 12 * entry
        tag, kind = struct.unpack(order + "HH", data[start:start + 4])
        if tag in (256, 257):
            fmt = order + ("H" if kind == 3 else "I")
            size = 2 if kind == 3 else 4
            (found[tag],) = struct.unpack(fmt, data[start + 8:start + 8 + size])
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _truncated(data: bytes, fmt: str) -> str | None:
    """Why the file looks cut short, or None."""
    if fmt == "jpeg" and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return "truncated JPEG: the end-of-image marker (FF D9) is missing, the file was cut short"
    if fmt == "png" and b"IEND" not in data[-12:]:
        return "truncated PNG: the final IEND chunk is missing, the file was cut short"
    if fmt == "bmp":
        (declared,) = struct.unpack("<I", data[2:6])
        if len(data) < declared:
            return f"truncated BMP: {len(data)} bytes of the {declared} its header declares"
    return None


def decode_upload(data: bytes, name: str, *, max_pixels: int) -> np.ndarray:
    """Check and decode an uploaded file to uint8 BGR ``(H, W, 3)``; :class:`ImageRejected` says why not."""
    if not data:
        raise ImageRejected(f"{name}: empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(f"{name}: not an image: expected {FORMATS} (the file starts with {data[:8]!r})")
    size = header_size(data, fmt)
    if size is None or min(size) < 1:
        raise ImageRejected(f"{name}: {fmt.upper()} header is cut short or malformed")
    width, height = size
    if width * height > max_pixels:
        raise ImageRejected(f"{name}: {width} x {height} pixels ({width * height / 1e6:.0f} MP) is above the "
                            f"station's limit of {max_pixels / 1e6:g} MP (--max-pixels)")
    problem = _truncated(data, fmt)
    if problem:
        raise ImageRejected(f"{name}: {problem}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageRejected(f"{name}: the {fmt.upper()} data cannot be decoded (corrupt file)")
    return image


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
