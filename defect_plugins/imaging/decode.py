"""The one check-and-decode for every image this package reads (defect-station uploads, defect-infer files).

Why a check before ``cv2.imdecode``: OpenCV decodes whatever a header claims, with only a warning
on stderr when the data is short. A security probe of defect-station found four ways through the
earlier checks (``station/imaging.py`` before this module):

1. **Size limits bypassed or paid for anyway.** A TIFF may repeat a tag; libtiff keeps the *first*
   occurrence and ignores the rest (libtiff ``tif_dirread.c``, ``TIFFReadDirectory``: "Mark
   duplicates of any tag to be ignored (bugzilla 1994)"), while the old parser kept the last: a
   97 KB TIFF with ImageWidth 10000, 100 decoded as 10000 x 10000 pixels (gigabytes). A 16 x 16 TIFF with
   15984 x 15984 tiles was refused by OpenCV only after it had allocated the tile buffer (0.9 GB).
   Here the TIFF directory is read as libtiff reads it, the tile area is limited like the image,
   and what the decoder will allocate is estimated (:func:`estimate_decode_bytes`) and capped.
2. **No bound on concurrent decodes.** Four concurrent 60 KB PNGs of 49 MP took 4.5 GB. Every
   decode now holds a slot and its estimated bytes of a :class:`DecodeBudget` (one per process by
   default, :data:`DEFAULT_BUDGET`), waiting for both or refusing after a timeout.
3. **Truncated or corrupt JPEGs graded.** libjpeg fills what is missing with grey and only warns
   ("Corrupt JPEG data: premature end of data segment"). JPEGs are therefore decoded once by
   simplejpeg (libjpeg-turbo's TurboJPEG API) with ``strict=True``, which turns those warnings into
   errors; the check decodes at 1/8 scale (libjpeg-turbo still reads the whole entropy-coded
   stream, the inverse DCT is what shrinks), then OpenCV decodes as before (EXIF orientation and
   the same pixels as in training). PNG: libpng errors on short image data ("Not enough image
   data") and OpenCV returns None; the IEND chunk must end the file. BMP: the declared file size
   and pixel data must be present. TIFF: OpenCV returns None when libtiff cannot read a strip,
   and every strip or tile must lie inside the file (checked here, so that no partial image gets
   through a codec that fills missing data).
4. **Images too small to inspect were graded** (a 1 x 1 image): both sides must be at least
   ``min_side`` (:data:`MIN_SIDE`, 16 px).

What the decoder allocates (:func:`estimate_decode_bytes`), measured with OpenCV 5.1 on 16 MP
images (peak RSS): every format peaked at about twice the 8-bit BGR output, 16-bit sources
included (``cv2.IMREAD_COLOR`` converts while decoding); TIFF adds libtiff's buffers for one strip
or tile (the native samples plus OpenCV's RGBA buffer, ``grfmt_tiff.cpp`` ``TiffDecoder::readData``),
progressive JPEG a coefficient buffer for the whole image, animated PNG its frame buffers. The
estimate is ``max(native image, output) + output + those buffers``, where the native image is
``width * height * channels * bytes per sample`` (16-bit samples count double). In bytes per
pixel: 8-bit PNG, JPEG, BMP, striped TIFF 6-7; progressive 4:2:0 JPEG 9; 16-bit RGB PNG 9;
16-bit RGBA PNG 11; single-strip 8-bit RGB TIFF 13; 8-bit APNG 14. The default cap
(:data:`DECODE_BYTES_PER_PIXEL` = 10 bytes per allowed pixel, 500 MB for the 50 MP default) lets
every ordinary 8-bit image and 16-bit RGB PNG through up to the pixel limit; the costliest layouts
are refused somewhat below it, with a message naming the estimate and the cap.

numpy, OpenCV, simplejpeg and the standard library only (:mod:`defect_plugins.imaging`): this runs
in the runtime-only install (no torch) and under training alike. The header parsers follow the
format specifications: PNG (ISO/IEC 15948, IHDR, acTL of APNG), JPEG (ITU-T T.81 B.2.2 frame
header), BMP (BITMAPCOREHEADER / BITMAPINFOHEADER), TIFF 6.0 (image file directory; fields as
libtiff reads them).
"""
from __future__ import annotations

import math
import os
import stat
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg

FORMATS = "PNG, JPEG, BMP or TIFF"
# The file suffixes of FORMATS: the package's one list of what an image file is called
# (:func:`defect_plugins.imaging.files.list_images`, defect-infer, the station's watched folder, training folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MIN_SIDE = 16  # px: smaller images carry no inspectable surface (and 1 x 1 files were graded)
DEFAULT_MAX_PIXELS = 50_000_000  # defect-station's --max-pixels default
DEFAULT_MAX_FILE_BYTES = 64_000_000
DECODE_BYTES_PER_PIXEL = 10  # default per-decode cap: max_pixels * this (bytes per pixel: module docstring)
DEFAULT_WAIT_S = 30.0  # how long a decode waits for the budget before it is refused

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ITU-T T.81 table B.1: start-of-frame markers (C4 DHT, C8 JPG, CC DAC are not frames)
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
JPEG_LOSSLESS = {0xC3, 0xC7, 0xCB, 0xCF}
JPEG_MAX_MARKERS = 4096  # segments and fill bytes walked before the frame header (real files: a few dozen)
# PNG colour type -> channels after libpng's expansion (ISO/IEC 15948 11.2.2; palette -> RGB)
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
PNG_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
BMP_BITS = (1, 4, 8, 16, 24, 32)
# TIFF 6.0 tags read here
TIFF_WIDTH, TIFF_LENGTH, TIFF_BITS = 256, 257, 258
TIFF_STRIP_OFFSETS, TIFF_SAMPLES, TIFF_ROWS_PER_STRIP, TIFF_STRIP_BYTES = 273, 277, 278, 279
TIFF_PLANAR = 284
TIFF_TILE_WIDTH, TIFF_TILE_LENGTH, TIFF_TILE_OFFSETS, TIFF_TILE_BYTES = 322, 323, 324, 325
TIFF_TYPES = {3: ("H", 2), 4: ("I", 4)}  # SHORT, LONG: the types TIFF 6.0 allows for these tags


class ImageRejected(ValueError):
    """A file that is not a usable image; the message starts with the file's name and says what was expected."""


class _Malformed(Exception):
    """A header that cannot be parsed; becomes ImageRejected with the file's name."""


@dataclass(frozen=True)
class ImageHeader:
    """What the header says the decoder will produce and need.

    ``tile_width`` x ``tile_height`` is the unit libtiff decodes at once (a tile, or a strip of
    ``RowsPerStrip`` rows clamped to the image); ``buffer_bytes`` the decoder's working buffers
    besides the images (TIFF strip or tile buffers, a progressive JPEG's coefficients, an animated
    PNG's frames); ``data_end`` the byte where the image data is declared to end (BMP, TIFF);
    ``problem`` what is wrong with the data layout (a TIFF strip past the end of the file), found
    while parsing but reported after the size limits.
    """

    format: str
    width: int
    height: int
    channels: int
    bits: int
    tile_width: int = 0
    tile_height: int = 0
    tiled: bool = False
    buffer_bytes: int = 0
    data_end: int = 0
    problem: str = ""
    detail: str = ""

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        """``16-bit colour PNG``, ``8-bit grey TIFF (tiled)`` ... for messages."""
        kind = {1: "grey", 2: "grey+alpha", 3: "colour", 4: "4-channel"}.get(self.channels, f"{self.channels}-channel")
        return f"{self.bits}-bit {kind} {self.format.upper()}{' ' + self.detail if self.detail else ''}"


# --------------------------------------------------------------------------- formats and headers


def sniff_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``bmp``, ``tiff`` from the signature in the first bytes, or None (BigTIFF included)."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


def parse_header(data: bytes, fmt: str, name: str = "image") -> ImageHeader:
    """The header of ``data`` (format ``fmt`` from :func:`sniff_format`).

    :class:`ImageRejected` (message starting with ``name``) when it is cut short or malformed.
    """
    parser = {"png": _png_header, "jpeg": _jpeg_header, "bmp": _bmp_header, "tiff": _tiff_header}[fmt]
    try:
        header = parser(data)
    except (_Malformed, struct.error, IndexError, ValueError) as error:
        detail = str(error) if isinstance(error, _Malformed) else "it ends inside the header"
        raise ImageRejected(f"{name}: {fmt.upper()} header is cut short or malformed ({detail})") from None
    if header.width < 1 or header.height < 1:
        raise ImageRejected(f"{name}: {fmt.upper()} header is cut short or malformed "
                            f"(it declares {header.width} x {header.height} pixels)")
    return header


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` from the header, or None when it is cut short or malformed (the old station API)."""
    try:
        header = parse_header(data, fmt)
    except ImageRejected:
        return None
    return header.width, header.height


def _png_header(data: bytes) -> ImageHeader:
    """IHDR (ISO/IEC 15948 11.2.2) must be the first chunk; an acTL before IDAT makes an animated PNG."""
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise _Malformed("the first chunk must be a 13-byte IHDR")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in PNG_CHANNELS or depth not in PNG_BIT_DEPTHS[colour]:
        raise _Malformed(f"bit depth {depth} with colour type {colour} is not a PNG combination")
    channels = PNG_CHANNELS[colour]
    sample_bytes = 2 if depth == 16 else 1
    buffer_bytes, detail = 0, ""
    if _png_animated(data):
        # OpenCV's APNG reader keeps the current and the next frame as RGBA (grfmt_png.cpp)
        buffer_bytes, detail = 2 * width * height * 4 * sample_bytes, "(animated)"
    return ImageHeader("png", width, height, channels, depth, buffer_bytes=buffer_bytes, detail=detail)


def _png_animated(data: bytes) -> bool:
    """Whether an acTL chunk comes before the first IDAT (APNG 1.0)."""
    index = 8
    for _ in range(64):  # chunks before IDAT are few; a long run of them is not worth walking
        if index + 8 > len(data):
            return False
        length, kind = struct.unpack(">I4s", data[index:index + 8])
        if kind == b"acTL":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        index += 12 + length
    return False


def _jpeg_header(data: bytes) -> ImageHeader:
    """Walk the markers to the first start-of-frame segment (ITU-T T.81 B.2.2: P, Y, X, Nf, components).

    The walk is bounded (:data:`JPEG_MAX_MARKERS`): a file of tiny segments must not cost seconds.
    """
    index = 2
    for _ in range(JPEG_MAX_MARKERS):
        if index + 4 > len(data):
            break
        if data[index] != 0xFF:
            raise _Malformed(f"byte {index} should start a marker (FF)")
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            index += 2
            continue
        if marker in (0xD9, 0xDA):
            raise _Malformed("no frame header before the image data")
        (length,) = struct.unpack(">H", data[index + 2:index + 4])
        if marker in JPEG_SOF:
            return _jpeg_frame(data, index, marker)
        index += 2 + length
    else:
        raise _Malformed(f"no frame header within the first {JPEG_MAX_MARKERS} markers")
    raise _Malformed("no frame header")


def _jpeg_frame(data: bytes, index: int, marker: int) -> ImageHeader:
    precision, height, width, count = struct.unpack(">BHHB", data[index + 4:index + 10])
    if count not in (1, 3, 4):
        raise _Malformed(f"{count} components (expected 1, 3 or 4)")
    sampling = [data[index + 11 + 3 * c] for c in range(count)]  # IndexError when cut short
    if precision != 8 or marker in JPEG_LOSSLESS:
        raise _Malformed(f"{'lossless' if marker in JPEG_LOSSLESS else f'{precision}-bit'} JPEG: "
                         "only 8-bit baseline or progressive JPEG can be checked")
    buffer_bytes, detail = 0, ""
    # FF DA in entropy-coded data is always a marker (data FF bytes are stuffed as FF 00): a second SOS
    first_scan = data.find(b"\xff\xda", index)
    multi_scan = first_scan >= 0 and data.find(b"\xff\xda", first_scan + 2) >= 0
    if marker in JPEG_PROGRESSIVE or multi_scan:
        # libjpeg keeps every DCT coefficient (16 bits) of the whole image until the last scan
        h_max = max(s >> 4 for s in sampling) or 1
        v_max = max(s & 15 for s in sampling) or 1
        for s in sampling:
            blocks_x = math.ceil(width * (s >> 4) / h_max / 8)
            blocks_y = math.ceil(height * (s & 15) / v_max / 8)
            buffer_bytes += blocks_x * blocks_y * 64 * 2
        detail = "(progressive)" if marker in JPEG_PROGRESSIVE else "(several scans)"
    return ImageHeader("jpeg", width, height, count, 8, buffer_bytes=buffer_bytes, detail=detail)


def _bmp_header(data: bytes) -> ImageHeader:
    """BITMAPFILEHEADER, then BITMAPCOREHEADER (12 bytes, 16-bit sizes) or BITMAPINFOHEADER and later (40+)."""
    declared, offset, info = struct.unpack("<I4xII", data[2:18])
    if info == 12:
        width, height, _, bits = struct.unpack("<HHHH", data[18:26])
        compression = 0
    elif info >= 40:
        width, height, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
    else:
        raise _Malformed(f"info header of {info} bytes (expected 12 or at least 40)")
    if width < 0:
        raise _Malformed(f"negative width {width}")
    if bits not in BMP_BITS:
        raise _Malformed(f"{bits} bits per pixel (expected one of {BMP_BITS})")
    height = abs(height)  # negative: rows stored top-down
    data_end = declared
    if compression in (0, 3):  # BI_RGB, BI_BITFIELDS: rows padded to 4 bytes
        data_end = max(declared, offset + ((width * bits + 31) // 32) * 4 * height)
    channels = 1 if bits <= 8 else 4 if bits == 32 else 3  # palette indices, or packed colour
    return ImageHeader("bmp", width, height, channels, min(bits, 8), data_end=data_end)


def _tiff_header(data: bytes) -> ImageHeader:
    """The first image file directory, read as libtiff reads it.

    The first occurrence of a tag wins (libtiff ignores duplicates, ``tif_dirread.c``); sizes and
    strip fields must be SHORT or LONG with one value (``TIFFReadDirEntryLong`` refuses other
    counts); every offset must lie inside the file.
    """
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd < 8 or ifd + 2 > len(data):
        raise _Malformed(f"the directory offset {ifd} is outside the {len(data)}-byte file")
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    if count == 0 or ifd + 2 + 12 * count > len(data):
        raise _Malformed(f"a directory of {count} entries at byte {ifd} does not fit in the {len(data)}-byte file")
    entries: dict[int, tuple[int, int, int]] = {}
    for number in range(count):
        start = ifd + 2 + 12 * number
        tag, kind, values = struct.unpack(order + "HHI", data[start:start + 8])
        entries.setdefault(tag, (kind, values, start + 8))  # first occurrence wins, as in libtiff

    def array(tag: int) -> np.ndarray | None:
        if tag not in entries:
            return None
        kind, values, where = entries[tag]
        if kind not in TIFF_TYPES:
            raise _Malformed(f"tag {tag} has type {kind} (expected SHORT or LONG)")
        code, size = TIFF_TYPES[kind]
        if values == 0:
            raise _Malformed(f"tag {tag} has no value")
        start = where
        if values * size > 4:
            (start,) = struct.unpack(order + "I", data[where:where + 4])
        if start + values * size > len(data):
            raise _Malformed(f"the values of tag {tag} (bytes {start} to {start + values * size}) "
                             f"are outside the {len(data)}-byte file")
        return np.frombuffer(data, np.dtype(order + code), values, start).astype(np.int64)

    def scalar(tag: int, default: int | None = None) -> int:
        values = array(tag)
        if values is None:
            if default is None:
                raise _Malformed(f"the required tag {tag} is missing")
            return default
        if len(values) != 1:
            raise _Malformed(f"tag {tag} has {len(values)} values (expected 1)")
        return int(values[0])

    width, height = scalar(TIFF_WIDTH), scalar(TIFF_LENGTH)
    samples = scalar(TIFF_SAMPLES, 1)
    bits_values = array(TIFF_BITS)
    bits = int(bits_values.max()) if bits_values is not None else 1  # bi-level images may omit it
    planar = scalar(TIFF_PLANAR, 1)
    if not 1 <= samples <= 4 or not 1 <= bits <= 64:
        raise _Malformed(f"{samples} samples of {bits} bits per pixel (OpenCV reads 1 to 4 samples of up to 64 bits)")
    tiled = TIFF_TILE_WIDTH in entries or TIFF_TILE_LENGTH in entries
    if tiled:
        tile_width, tile_height = scalar(TIFF_TILE_WIDTH), scalar(TIFF_TILE_LENGTH)
        if tile_width < 1 or tile_height < 1:
            raise _Malformed(f"tiles of {tile_width} x {tile_height} pixels")
        units = math.ceil(width / tile_width) * math.ceil(height / tile_height)
        offsets_tag, counts_tag, unit = TIFF_TILE_OFFSETS, TIFF_TILE_BYTES, "tile"
    else:
        rows = scalar(TIFF_ROWS_PER_STRIP, 0xFFFFFFFF)
        if rows < 1:
            raise _Malformed("RowsPerStrip is 0")
        # libtiff decodes only the rows of a strip that are inside the image
        tile_width, tile_height = width, min(rows, max(height, 1))
        units = math.ceil(height / tile_height)
        offsets_tag, counts_tag, unit = TIFF_STRIP_OFFSETS, TIFF_STRIP_BYTES, "strip"
    if planar == 2:
        units *= samples
    sample_bytes = math.ceil(bits / 8)
    # per strip or tile: libtiff's buffer of native samples, and OpenCV's RGBA buffer (grfmt_tiff.cpp)
    buffer_bytes = tile_width * tile_height * (samples * sample_bytes + 4)
    data_end, problem = _tiff_data_end(array(offsets_tag), array(counts_tag), units, unit, len(data))
    return ImageHeader("tiff", width, height, samples, bits, tile_width, tile_height, tiled, buffer_bytes,
                       data_end, problem, "(tiled)" if tiled else "")


def _tiff_data_end(offsets: np.ndarray | None, counts: np.ndarray | None, units: int, unit: str,
                   size: int) -> tuple[int, str]:
    """Where the last strip or tile ends, and what is wrong with them ("" when nothing)."""
    if offsets is None or counts is None:
        return 0, f"corrupt TIFF: the {unit} offsets or byte counts are missing"
    if len(offsets) < units or len(counts) < units:
        return 0, (f"corrupt TIFF: {min(len(offsets), len(counts))} {unit} offsets or byte counts for the "
                   f"{units} {unit}s of the image")
    offsets, counts = offsets[:units], counts[:units]
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        return 0, f"corrupt TIFF: {unit} {int(empty[0])} has no data (byte count 0)"
    ends = offsets + counts
    last = int(np.argmax(ends))
    if ends[last] > size:
        return int(ends[last]), (f"truncated TIFF: {unit} {last} ends at byte {int(ends[last])}, past the end of "
                                 f"the {size}-byte file")
    return int(ends[last]), ""


# --------------------------------------------------------------------------- limits


def estimate_decode_bytes(header: ImageHeader) -> int:
    """Bytes the decode will allocate at its peak: ``max(native, output) + output + buffer_bytes``.

    native: ``width * height * channels * bytes per sample`` (16-bit samples count double); output:
    the 8-bit BGR image ``cv2.IMREAD_COLOR`` returns; buffers: see :class:`ImageHeader`. Measured
    against peak RSS in the module docstring; it errs on the high side for 16-bit sources.
    """
    native = header.pixels * header.channels * math.ceil(header.bits / 8)
    output = header.pixels * 3
    return max(native, output) + output + header.buffer_bytes


def check_limits(header: ImageHeader, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE,
                 max_decode_bytes: int | None = None, limit_label: str = "the limit",
                 limit_option: str = "max_pixels") -> int:
    """Refuse sizes outside the limits (:class:`ImageRejected`); the estimated decode bytes otherwise.

    ``limit_label`` and ``limit_option`` name the pixel limit in messages (defect-station: "the
    station's limit", ``--max-pixels``).
    """
    width, height = header.width, header.height
    if width < min_side or height < min_side:
        raise ImageRejected(f"{name}: {width} x {height} pixels is below the minimum of {min_side} x {min_side} "
                            f"pixels (min_side): too small to inspect")
    if header.pixels > max_pixels:
        raise ImageRejected(f"{name}: {width} x {height} pixels ({_mp(header.pixels)} MP) is above {limit_label} "
                            f"of {_mp(max_pixels)} MP ({limit_option})")
    tile_area = header.tile_width * header.tile_height
    if tile_area > max_pixels:
        raise ImageRejected(f"{name}: TIFF {'tiles' if header.tiled else 'strips'} of "
                            f"{header.tile_width} x {header.tile_height} pixels ({_mp(tile_area)} MP each, in a "
                            f"{width} x {height} image) are above {limit_label} of {_mp(max_pixels)} MP "
                            f"({limit_option}): the decoder allocates a whole one at once")
    cap = default_decode_bytes(max_pixels) if max_decode_bytes is None else int(max_decode_bytes)
    estimate = estimate_decode_bytes(header)
    if estimate > cap:
        raise ImageRejected(f"{name}: decoding this {width} x {height} {header.describe()} would allocate about "
                            f"{_bytes(estimate)}, above the per-decode limit of {_bytes(cap)} (max_decode_bytes)")
    return estimate


def default_decode_bytes(max_pixels: int) -> int:
    """The per-decode memory cap that goes with a pixel limit: ``max_pixels * DECODE_BYTES_PER_PIXEL``."""
    return int(max_pixels) * DECODE_BYTES_PER_PIXEL


def check_complete(data: bytes, header: ImageHeader, name: str) -> None:
    """Refuse a file whose data is cut short (before decoding; the JPEG stream is checked by :func:`_check_jpeg`)."""
    fmt = header.format
    if fmt == "jpeg" and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise ImageRejected(f"{name}: truncated JPEG: the end-of-image marker (FF D9) is missing, "
                            "the file was cut short")
    if fmt == "png" and b"IEND" not in data[-12:]:
        raise ImageRejected(f"{name}: truncated PNG: the final IEND chunk is missing, the file was cut short")
    if fmt == "bmp" and len(data) < header.data_end:
        raise ImageRejected(f"{name}: truncated BMP: {len(data)} bytes of the {header.data_end} its header declares")
    if header.problem:
        raise ImageRejected(f"{name}: {header.problem}")


def check_image(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE,
                max_decode_bytes: int | None = None, limit_label: str = "the limit",
                limit_option: str = "max_pixels") -> tuple[ImageHeader, int]:
    """Every check that needs no decoding (milliseconds, whatever the header claims): the header and the estimate."""
    if not data:
        raise ImageRejected(f"{name}: empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(f"{name}: not an image: expected {FORMATS} (the file starts with {bytes(data[:8])!r})")
    header = parse_header(data, fmt, name)
    estimate = check_limits(header, name, max_pixels=max_pixels, min_side=min_side,
                            max_decode_bytes=max_decode_bytes, limit_label=limit_label, limit_option=limit_option)
    check_complete(data, header, name)
    return header, estimate


# --------------------------------------------------------------------------- the budget


class DecodeBudget:
    """At most ``max_concurrent`` decodes and ``max_bytes`` estimated bytes in flight at once, per process.

    :meth:`reserve` waits (up to ``wait_s``) until a slot and the bytes are free, then holds them
    for the decode; a decode larger than ``max_bytes`` alone is refused at once. ``peak_in_flight``
    and ``peak_bytes`` record the most seen at once (monitoring, tests).
    """

    def __init__(self, max_concurrent: int = 2, max_bytes: int = 2 * DEFAULT_MAX_PIXELS * DECODE_BYTES_PER_PIXEL,
                 *, wait_s: float = DEFAULT_WAIT_S) -> None:
        self._condition = threading.Condition()
        self.in_flight = 0
        self.bytes_in_flight = 0
        self.peak_in_flight = 0
        self.peak_bytes = 0
        self.configure(max_concurrent=max_concurrent, max_bytes=max_bytes, wait_s=wait_s)

    def configure(self, *, max_concurrent: int | None = None, max_bytes: int | None = None,
                  wait_s: float | None = None) -> None:
        """Change the limits (a server sets them from its options); waiting decodes see them at once."""
        with self._condition:
            if max_concurrent is not None:
                if int(max_concurrent) < 1:
                    raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
                self.max_concurrent = int(max_concurrent)
            if max_bytes is not None:
                if int(max_bytes) < 1:
                    raise ValueError(f"max_bytes must be positive, got {max_bytes}")
                self.max_bytes = int(max_bytes)
            if wait_s is not None:
                self.wait_s = float(wait_s)
            self._condition.notify_all()

    def _describe(self) -> str:
        return f"decode budget: {self.max_concurrent} at a time, {_bytes(self.max_bytes)} in all"

    @contextmanager
    def reserve(self, nbytes: int, name: str) -> Iterator[None]:
        """Hold a slot and ``nbytes`` for the ``with`` block; :class:`ImageRejected` when they do not come in time."""
        nbytes = int(nbytes)
        with self._condition:
            if nbytes > self.max_bytes:
                raise ImageRejected(f"{name}: decoding would allocate about {_bytes(nbytes)}, more than the whole "
                                    f"{self._describe()}")
            deadline = time.monotonic() + self.wait_s
            while self.in_flight >= self.max_concurrent or self.bytes_in_flight + nbytes > self.max_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ImageRejected(
                        f"{name}: the decoder is busy: {self.in_flight} decode(s) in flight hold "
                        f"{_bytes(self.bytes_in_flight)} and this one needs {_bytes(nbytes)}; waited {self.wait_s:g} s "
                        f"({self._describe()}). Try again")
                self._condition.wait(left)
            self.in_flight += 1
            self.bytes_in_flight += nbytes
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self.peak_bytes = max(self.peak_bytes, self.bytes_in_flight)
        try:
            yield
        finally:
            with self._condition:
                self.in_flight -= 1
                self.bytes_in_flight -= nbytes
                self._condition.notify_all()


DEFAULT_BUDGET = DecodeBudget()  # shared by every caller in the process (station threads, defect-infer)


# --------------------------------------------------------------------------- decoding


def _check_jpeg(data: bytes, name: str) -> None:
    """Decode at 1/8 scale with libjpeg-turbo in strict mode: any libjpeg warning (a cut or corrupt stream) refuses."""
    try:
        colorspace = simplejpeg.decode_jpeg_header(data, strict=True)[2]
        simplejpeg.decode_jpeg(data, colorspace="CMYK" if colorspace in ("CMYK", "YCCK") else "RGB",
                               fastdct=True, fastupsample=True, min_height=1, min_width=1, min_factor=8, strict=True)
    except Exception as error:  # simplejpeg raises ValueError; anything else from bad data is refused alike
        raise ImageRejected(f"{name}: truncated or corrupt JPEG: {str(error).strip() or type(error).__name__} "
                            "(libjpeg-turbo, strict check)") from None


def decode_image(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE,
                 max_decode_bytes: int | None = None, budget: DecodeBudget | None = DEFAULT_BUDGET,
                 limit_label: str = "the limit", limit_option: str = "max_pixels") -> np.ndarray:
    """Check ``data`` and decode it to uint8 BGR ``(H, W, 3)``; :class:`ImageRejected` says why not.

    Order: signature, header, sizes (``min_side``, ``max_pixels``, TIFF tile area, estimated bytes
    against ``max_decode_bytes``, by default ``max_pixels * DECODE_BYTES_PER_PIXEL``), truncation;
    then, holding ``budget`` (None: no wait, for tools that bound themselves), the strict JPEG
    check and ``cv2.imdecode``; the decoded size must be the header's. Messages start with ``name``.
    """
    header, estimate = check_image(data, name, max_pixels=max_pixels, min_side=min_side,
                                   max_decode_bytes=max_decode_bytes, limit_label=limit_label,
                                   limit_option=limit_option)
    with budget.reserve(estimate, name) if budget is not None else nullcontext():
        if header.format == "jpeg":
            _check_jpeg(data, name)
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            image = None
    if image is None or image.size == 0:
        raise ImageRejected(f"{name}: the {header.format.upper()} data cannot be decoded (corrupt file)")
    if image.shape[:2] not in ((header.height, header.width), (header.width, header.height)) or image.ndim != 3:
        raise ImageRejected(f"{name}: the decoder produced {image.shape[1]} x {image.shape[0]} pixels where the "
                            f"{header.format.upper()} header declares {header.width} x {header.height}")
    return image


def read_image(path: str | os.PathLike[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE, max_decode_bytes: int | None = None,
               budget: DecodeBudget | None = DEFAULT_BUDGET, limit_label: str = "the limit",
               limit_option: str = "max_pixels") -> np.ndarray:
    """Read a file and :func:`decode_image` it; files over ``max_file_bytes`` are refused before they are read.

    Every failure, a missing file and OS errors included, is an :class:`ImageRejected` naming the path.
    """
    name = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (opening it would block), a device
            raise ImageRejected(f"{name}: not a regular file")
        if info.st_size > max_file_bytes:
            raise ImageRejected(f"{name}: {_bytes(info.st_size)} ({info.st_size} bytes) is above the file limit of "
                                f"{_bytes(max_file_bytes)} (max_file_bytes)")
        with open(path, "rb") as handle:
            data = handle.read(max_file_bytes + 1)  # never more, even if the file grew since stat
    except FileNotFoundError:
        raise ImageRejected(f"{name}: no such file") from None
    except OSError as error:
        raise ImageRejected(f"{name}: cannot be read ({error.strerror or error})") from None
    if len(data) > max_file_bytes:
        raise ImageRejected(f"{name}: more than {_bytes(max_file_bytes)} (max_file_bytes): the file grew while "
                            "it was being read")
    return decode_image(data, name, max_pixels=max_pixels, min_side=min_side, max_decode_bytes=max_decode_bytes,
                        budget=budget, limit_label=limit_label, limit_option=limit_option)


# --------------------------------------------------------------------------- message helpers


def _mp(pixels: int) -> str:
    """Megapixels for messages: ``100``, ``49.98``, ``0.0012``."""
    return f"{pixels / 1e6:.4g}"


def _bytes(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.3g} GB"
    if count >= 1e6:
        return f"{count / 1e6:.4g} MB"
    if count >= 1e4:
        return f"{count / 1e3:.4g} kB"
    return f"{count} bytes"


__all__ = ["DECODE_BYTES_PER_PIXEL", "DEFAULT_BUDGET", "DEFAULT_MAX_FILE_BYTES", "DEFAULT_MAX_PIXELS", "FORMATS",
           "IMAGE_SUFFIXES", "MIN_SIDE", "DecodeBudget", "ImageHeader", "ImageRejected", "check_complete",
           "check_image", "check_limits", "decode_image", "default_decode_bytes", "estimate_decode_bytes",
           "header_size", "parse_header", "read_image", "sniff_format"]
