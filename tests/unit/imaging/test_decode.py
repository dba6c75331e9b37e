"""The shared check-and-decode: each break of the security probe reproduced, and good images unchanged.

The probe (defect-station uploads, defect-infer files): a TIFF whose repeated size tags hid
10000 x 10000 pixels, a tiled TIFF whose tile buffer cost 0.9 GB before OpenCV refused it,
concurrent decodes without a bound, JPEGs cut short graded with grey bottoms, 1 x 1 images graded.
Files that would cost gigabytes are decoded only in a child interpreter whose peak RSS is checked.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from defect_plugins.imaging import decode
from defect_plugins.imaging.decode import (
    DecodeBudget,
    ImageRejected,
    check_image,
    decode_image,
    estimate_decode_bytes,
    parse_header,
    read_image,
    sniff_format,
)
from tests.conftest import REPO_ROOT

FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")

# Decodes each file named on the command line; reports the messages, the peak RSS and the toolkits loaded.
# The peak is VmHWM (this process's memory map only): getrusage's ru_maxrss survives execve on Linux,
# so a child of the test process would report the parent's ~600 MB (torch is loaded there).
CHILD = r"""
import json, resource, sys
from defect_plugins.imaging.decode import ImageRejected, decode_image

def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

messages = {}
for path in sys.argv[1:]:
    try:
        image = decode_image(open(path, "rb").read(), path)
        messages[path] = f"decoded {image.shape}"
    except ImageRejected as error:
        messages[path] = str(error)
print(json.dumps({"messages": messages, "peak_mb": peak_mb(), "modules": sorted(sys.modules)}))
"""
CHILD_PEAK_MB = 300


# --------------------------------------------------------------------------- hand-made files


def _tiff(entries: list[tuple[int, int, int, int]], payload: bytes, order: str = "<") -> bytes:
    """A TIFF 6.0 file: header, ``payload`` at byte 8, then one directory of ``(tag, type, count, value)``.

    Entries stay in the given order (duplicates included); a value of type SHORT with count 1 sits in
    the first two bytes of the value field. Offsets in ``entries`` that point into ``payload`` start at 8.
    """
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    directory = 8 + len(payload) + (len(payload) % 2)
    body = bytearray(head + struct.pack(order + "I", directory) + payload)
    body += b"\x00" * (directory - len(body))
    body += struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        if kind == 3 and count == 1:
            body += struct.pack(order + "HHIHH", tag, kind, count, value, 0)
        else:
            body += struct.pack(order + "HHII", tag, kind, count, value)
    return bytes(body + struct.pack(order + "I", 0))


def _grey_strip_tiff(width: int, height: int, pixels: bytes, *, extra: list | None = None,
                     compression: int = 8) -> bytes:
    """One strip of 8-bit grey samples, deflate (8) or uncompressed (1), tags in ascending order."""
    data = zlib.compress(pixels, 9) if compression == 8 else pixels
    return _tiff([(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, compression),
                  (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, len(data))]
                 + (extra or []), data)


def repeated_tag_tiff(big: int, small: int) -> bytes:
    """The probe's TIFF: ImageWidth and ImageLength each twice (``big`` first), one deflate strip of ``big`` rows."""
    data = zlib.compress(bytes(big * big), 9)
    return _tiff([(256, 4, 1, big), (256, 4, 1, small), (257, 4, 1, big), (257, 4, 1, small), (258, 3, 1, 8),
                  (259, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, big),
                  (279, 4, 1, len(data))], data)


def huge_tile_tiff(side: int = 16, tile: int = 15984) -> bytes:
    """The probe's tiled TIFF: a ``side`` x ``side`` image in one ``tile`` x ``tile`` tile (a few bogus bytes)."""
    data = bytes(64)
    return _tiff([(256, 3, 1, side), (257, 3, 1, side), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                  (277, 3, 1, 1), (322, 3, 1, tile), (323, 3, 1, tile), (324, 4, 1, 8), (325, 4, 1, len(data))], data)


def _with_entry_count(tiff: bytes, count: int) -> bytes:
    (directory,) = struct.unpack("<I", tiff[4:8])
    return tiff[:directory] + struct.pack("<H", count) + tiff[directory + 2:]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def texture(height: int = 120, width: int = 90, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 2)


def encoded(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def _child(tmp_path, files: dict[str, bytes]) -> dict:
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    proc = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["messages"] = {os.path.basename(k): v for k, v in report["messages"].items()}
    return report


# --------------------------------------------------------------------------- 1. size limits


def test_repeated_tiff_tags_are_read_like_libtiff_first_one_wins():
    """libtiff ignores duplicated tags (tif_dirread.c); the old parser kept the last: 100 x 100 for 10000 x 10000."""
    small = repeated_tag_tiff(300, 100)  # small enough to let OpenCV show which occurrence libtiff uses
    assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR).shape == (300, 300, 3)
    header = parse_header(small, "tiff")
    assert (header.width, header.height) == (300, 300)
    assert decode_image(small, "small.tif").shape == (300, 300, 3)

    probe = repeated_tag_tiff(10000, 100)
    assert len(probe) < 120_000  # a deflate strip of zeros: 97 KB on disk, 10000 x 10000 for libtiff
    header = parse_header(probe, "tiff")
    assert (header.width, header.height) == (10000, 10000)
    assert estimate_decode_bytes(header) > 1e9
    started = time.perf_counter()
    with pytest.raises(ImageRejected) as error:
        decode_image(probe, "repeated.tif")
    assert time.perf_counter() - started < 0.1  # read from the header, nothing decoded
    assert str(error.value) == "repeated.tif: 10000 x 10000 pixels (100 MP) is above the limit of 50 MP (max_pixels)"


def test_probe_tiffs_are_refused_without_a_large_allocation(tmp_path):
    """In a fresh interpreter: both probe files refused, peak RSS far below what decoding them costs (GBs), no torch."""
    report = _child(tmp_path, {"repeated.tif": repeated_tag_tiff(10000, 100), "tiles.tif": huge_tile_tiff()})
    messages = report["messages"]
    assert "10000 x 10000 pixels (100 MP) is above the limit of 50 MP" in messages["repeated.tif"]
    assert messages["tiles.tif"].endswith(
        "tiles.tif: TIFF tiles of 15984 x 15984 pixels (255.5 MP each, in a 16 x 16 image) are above the limit "
        "of 50 MP (max_pixels): the decoder allocates a whole one at once")
    assert report["peak_mb"] < CHILD_PEAK_MB, report["peak_mb"]
    assert not {name.split(".")[0] for name in report["modules"]} & set(FORBIDDEN)


def test_tile_area_and_estimated_bytes_are_limited_like_the_image():
    with pytest.raises(ImageRejected, match=r"tiles\.tif: TIFF tiles of 512 x 512 pixels \(0\.2621 MP each"):
        decode_image(huge_tile_tiff(16, 512), "tiles.tif", max_pixels=200_000)
    # a small tile within the limits decodes
    tile = zlib.compress(bytes(256))
    ok = _tiff([(256, 3, 1, 16), (257, 3, 1, 16), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1), (277, 3, 1, 1),
                (322, 3, 1, 16), (323, 3, 1, 16), (324, 4, 1, 8), (325, 4, 1, len(tile))], tile)
    assert decode_image(ok, "tile.tif").shape == (16, 16, 3)
    header = parse_header(huge_tile_tiff(16, 4096), "tiff")
    assert header.tiled and header.buffer_bytes == 4096 * 4096 * (1 + 4)  # native samples + OpenCV's RGBA
    with pytest.raises(ImageRejected, match=r"would allocate about 83\.89 MB, above the per-decode limit of 50 MB"):
        decode_image(huge_tile_tiff(16, 4096), "tiles.tif", max_decode_bytes=50_000_000)


def test_16_bit_png_estimate_counts_double_and_the_output_too():
    image = (texture(100, 50).astype(np.uint16) * 257)
    data = encoded(".png", image)
    header = parse_header(data, "png")
    assert (header.width, header.height, header.channels, header.bits) == (50, 100, 3, 16)
    # native 16-bit RGB (6 bytes a pixel), then the 8-bit BGR output (3)
    assert estimate_decode_bytes(header) == 50 * 100 * 6 + 50 * 100 * 3
    rgba = encoded(".png", np.dstack([image, image[..., :1]]))
    assert estimate_decode_bytes(parse_header(rgba, "png")) == 50 * 100 * 8 + 50 * 100 * 3
    assert decode_image(rgba, "rgba.png", max_decode_bytes=55_000).shape == (100, 50, 3)
    with pytest.raises(ImageRejected) as error:
        decode_image(rgba, "rgba.png", max_decode_bytes=40_000)
    assert str(error.value) == ("rgba.png: decoding this 50 x 100 16-bit 4-channel PNG would allocate about 55 kB, "
                                "above the per-decode limit of 40 kB (max_decode_bytes)")
    # the default cap follows the pixel limit: 10 bytes a pixel
    _, estimate = check_image(encoded(".png", texture(100, 50)), "x.png", max_pixels=5000)
    assert estimate == 50 * 100 * 6 <= 5000 * decode.DECODE_BYTES_PER_PIXEL
    with pytest.raises(ImageRejected, match="per-decode limit of 50 kB"):
        check_image(rgba, "rgba.png", max_pixels=5000)


def test_header_bombs_are_refused_in_milliseconds():
    """Sizes come from the header: a few bytes that claim 60000 x 60000 pixels cost nothing to refuse."""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + bytes(64) + _png_chunk(b"IEND", b"")
    frame = struct.pack(">HBHHB", 17, 8, 60000, 60000, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    jpeg = b"\xff\xd8\xff\xc0" + frame + b"\xff\xd9"
    bmp = b"BM" + struct.pack("<I4xII", 54, 54, 40) + struct.pack("<iiHHI", 60000, -60000, 1, 24, 0) + bytes(20)
    tiff = _grey_strip_tiff(60000, 60000, bytes(16))
    for name, data in (("bomb.png", png), ("bomb.jpg", jpeg), ("bomb.bmp", bmp), ("bomb.tif", tiff)):
        started = time.perf_counter()
        with pytest.raises(ImageRejected, match=rf"^{name}: 60000 x 60000 pixels \(3600 MP\) is above the limit"):
            decode_image(data, name)
        assert time.perf_counter() - started < 0.05


def test_malformed_tiff_directories_are_refused():
    good = _grey_strip_tiff(16, 16, bytes(256))
    assert decode_image(good, "good.tif").shape == (16, 16, 3)
    cases = {
        # ImageWidth as BYTE: only SHORT or LONG are read
        "byte.tif": (_tiff([(256, 1, 1, 16), (257, 3, 1, 16), (273, 4, 1, 8), (279, 4, 1, 1)], b"\x00"),
                     "tag 256 has type 1 (expected SHORT or LONG)"),
        "ifd.tif": (good[:4] + struct.pack("<I", 10**6) + good[8:], "the directory offset 1000000 is outside"),
        "count.tif": (_with_entry_count(good, 500), "a directory of 500 entries"),
        # BitsPerSample with 3 values stored past the end of the file
        "values.tif": (_grey_strip_tiff(16, 16, bytes(256), extra=[]).replace(
            struct.pack("<HHIHH", 258, 3, 1, 8, 0), struct.pack("<HHII", 258, 3, 3, 10**6)),
            "the values of tag 258 (bytes 1000000 to 1000006) are outside"),
        "nowidth.tif": (_tiff([(257, 3, 1, 16), (273, 4, 1, 8), (279, 4, 1, 1)], b"\x00"),
                        "the required tag 256 is missing"),
    }
    for name, (data, detail) in cases.items():
        with pytest.raises(ImageRejected) as error:
            decode_image(data, name)
        assert str(error.value).startswith(f"{name}: TIFF header is cut short or malformed ("), str(error.value)
        assert detail in str(error.value), str(error.value)


# --------------------------------------------------------------------------- 3. truncated and corrupt files


def test_jpeg_cut_in_half_with_its_end_marker_is_refused():
    data = encoded(".jpg", texture(400, 300), cv2.IMWRITE_JPEG_QUALITY, 90)
    cut = data[: len(data) // 2] + b"\xff\xd9"
    grey = cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR)
    assert grey is not None and grey.shape == (400, 300, 3)  # what OpenCV alone does: a grey bottom, graded
    with pytest.raises(ImageRejected) as error:
        decode_image(cut, "cut.jpg")
    assert str(error.value) == ("cut.jpg: truncated or corrupt JPEG: Corrupt JPEG data: premature end of data "
                                "segment (libjpeg-turbo, strict check)")
    progressive = encoded(".jpg", texture(400, 300), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    with pytest.raises(ImageRejected, match="progressive.jpg: truncated or corrupt JPEG"):
        decode_image(progressive[: len(progressive) // 2] + b"\xff\xd9", "progressive.jpg")


def test_jpeg_cut_without_end_marker_is_refused_by_read_image(tmp_path):
    data = encoded(".jpg", texture(400, 300))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(path), cv2.IMREAD_COLOR) is not None  # defect-infer's old read: graded
    with pytest.raises(ImageRejected) as error:
        read_image(path)
    assert str(error.value) == (f"{path}: truncated JPEG: the end-of-image marker (FF D9) is missing, "
                                "the file was cut short")
    path.write_bytes(data[: len(data) * 3 // 4] + b"\xff\xd9")  # cut, with a marker put back
    with pytest.raises(ImageRejected, match="truncated or corrupt JPEG"):
        read_image(path)


def test_png_with_short_image_data_is_refused_by_libpng():
    """IDAT stops halfway, valid CRCs and IEND: libpng errors ("Not enough image data"), OpenCV returns None."""
    data = encoded(".png", texture(200, 200))
    idat = data.index(b"IDAT") - 4
    half = texture(200, 200)[:100]
    rows = b"".join(b"\x00" + row.tobytes() for row in half)
    short = data[:idat] + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")
    assert cv2.imdecode(np.frombuffer(short, np.uint8), cv2.IMREAD_COLOR) is None
    with pytest.raises(ImageRejected, match=r"^short.png: the PNG data cannot be decoded \(corrupt file\)$"):
        decode_image(short, "short.png")
    with pytest.raises(ImageRejected, match="^cut.png: truncated PNG: the final IEND chunk is missing"):
        decode_image(data[:-30], "cut.png")


def test_truncated_tiff_and_bmp_are_refused_before_decoding():
    pixels = texture(64, 64)[..., 0].tobytes()
    tiff = _grey_strip_tiff(64, 64, pixels, compression=1)  # the strip sits before the directory
    assert np.array_equal(decode_image(tiff, "ok.tif")[..., 0], texture(64, 64)[..., 0])
    # the directory kept, the strip cut: OpenCV returns None (libtiff cannot read the strip); refused earlier here
    start = 8 + len(pixels) // 2
    cut = tiff[:start] + tiff[8 + len(pixels):]
    directory = struct.unpack("<I", tiff[4:8])[0] - len(pixels) // 2
    cut = cut[:4] + struct.pack("<I", directory) + cut[8:]
    assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is None
    with pytest.raises(ImageRejected) as error:
        decode_image(cut, "cut.tif")
    assert str(error.value) == (f"cut.tif: truncated TIFF: strip 0 ends at byte {8 + len(pixels)}, past the end of "
                                f"the {len(cut)}-byte file")
    empty = _tiff([(256, 3, 1, 16), (257, 3, 1, 16), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                   (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 16), (279, 4, 1, 0)], bytes(256))
    with pytest.raises(ImageRejected, match="empty.tif: corrupt TIFF: strip 0 has no data"):
        decode_image(empty, "empty.tif")
    bmp = encoded(".bmp", texture(40, 40))
    with pytest.raises(ImageRejected, match=rf"^cut.bmp: truncated BMP: {len(bmp) - 100} bytes of the {len(bmp)}"):
        decode_image(bmp[:-100], "cut.bmp")


# --------------------------------------------------------------------------- 4. minimum size


def test_tiny_images_are_refused():
    for side, ext in ((1, ".png"), (8, ".png"), (8, ".bmp"), (1, ".jpg")):
        with pytest.raises(ImageRejected) as error:
            decode_image(encoded(ext, texture(side, side)), f"tiny{ext}")
        assert str(error.value) == (f"tiny{ext}: {side} x {side} pixels is below the minimum of 16 x 16 pixels "
                                    "(min_side): too small to inspect")
    with pytest.raises(ImageRejected, match=r"strip.png: 200 x 15 pixels is below the minimum"):
        decode_image(encoded(".png", texture(15, 200)), "strip.png")
    assert decode_image(encoded(".png", texture(16, 16)), "ok.png").shape == (16, 16, 3)
    assert decode_image(encoded(".png", texture(8, 8)), "ok.png", min_side=8).shape == (8, 8, 3)


# --------------------------------------------------------------------------- good files


def test_good_images_of_every_format_decode_as_opencv_does():
    image = texture()
    files = {
        "png": encoded(".png", image),
        "png16": encoded(".png", image.astype(np.uint16) * 257),
        "png-grey": encoded(".png", image[..., 0]),
        "jpeg": encoded(".jpg", image, cv2.IMWRITE_JPEG_QUALITY, 90),
        "jpeg-progressive": encoded(".jpg", image, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "jpeg-grey": encoded(".jpg", image[..., 0]),
        "bmp": encoded(".bmp", image),
        "bmp-grey": encoded(".bmp", image[..., 0]),
        "tiff": encoded(".tiff", image),
        "tiff16": encoded(".tiff", image.astype(np.uint16) * 257),
        "tiff-deflate": _grey_strip_tiff(90, 120, image[..., 0].tobytes()),
        "tiff-big-endian": _tiff([(256, 3, 1, 16), (257, 3, 1, 16), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                                  (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 16), (279, 4, 1, 256)],
                                 image[:16, :16, 0].tobytes(), order=">"),
    }
    for name, data in files.items():
        expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        decoded = decode_image(data, name)
        assert decoded.dtype == np.uint8 and decoded.shape == expected.shape, name
        assert np.array_equal(decoded, expected), name
        assert sniff_format(data) == name.split("-")[0].rstrip("16")
    assert parse_header(files["jpeg-progressive"], "jpeg").buffer_bytes > 0  # the coefficient buffer


def test_read_image_reads_files_and_names_every_failure(tmp_path):
    path = tmp_path / "part.png"
    path.write_bytes(encoded(".png", texture()))
    assert np.array_equal(read_image(path), texture())
    with pytest.raises(ImageRejected, match=f"^{tmp_path / 'missing.png'}: no such file$"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageRejected, match=f"^{tmp_path}: not a regular file$"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageRejected, match=f"^{tmp_path / 'empty.png'}: empty file"):
        read_image(tmp_path / "empty.png")
    assert issubclass(ImageRejected, ValueError)


def test_too_large_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:  # sparse: 8 GB on paper, nothing on disk
        handle.write(encoded(".png", texture()))
        handle.truncate(8 * 2**30)
    reads = []
    real_open = open

    def tracking_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        reads.append(file)
        return handle

    monkeypatch.setattr("builtins.open", tracking_open)
    with pytest.raises(ImageRejected) as error:
        read_image(big)
    assert str(error.value) == (f"{big}: 8.59 GB (8589934592 bytes) is above the file limit of 64 MB "
                                "(max_file_bytes)")
    assert reads == []  # refused from its size: never opened
    monkeypatch.undo()

    # a file that grows after its size was read: only limit + 1 bytes are read, then it is refused
    grown = tmp_path / "grown.png"
    grown.write_bytes(encoded(".png", texture()) + bytes(3_000_000))
    real_stat = os.stat
    monkeypatch.setattr(decode.os, "stat", lambda p: os.stat_result(
        (*real_stat(p)[:6], 1000, *real_stat(p)[7:])))
    with pytest.raises(ImageRejected, match=rf"^{grown}: more than 1 MB \(max_file_bytes\): the file grew"):
        read_image(grown, max_file_bytes=1_000_000)


# --------------------------------------------------------------------------- 2. the decode budget


def test_budget_bounds_concurrent_decodes(monkeypatch):
    data = encoded(".png", texture())
    state = {"now": 0, "most": 0}
    lock = threading.Lock()
    real_imdecode = cv2.imdecode

    def slow_imdecode(buffer, flags):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return real_imdecode(buffer, flags)

    monkeypatch.setattr(decode.cv2, "imdecode", slow_imdecode)

    def run(budget: DecodeBudget, count: int = 6) -> list:
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(decode_image(data, "part.png", budget=budget)))
                   for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    two = DecodeBudget(max_concurrent=2, max_bytes=10**9)
    assert len(run(two)) == 6
    assert state["most"] == 2 and two.peak_in_flight == 2 and two.in_flight == 0 and two.bytes_in_flight == 0

    # bytes bound too: room for one decode's estimate at a time, slots for eight
    state["most"] = 0
    estimate = check_image(data, "part.png")[1]
    one = DecodeBudget(max_concurrent=8, max_bytes=estimate * 3 // 2)
    assert len(run(one)) == 6
    assert state["most"] == 1 and one.peak_in_flight == 1 and one.peak_bytes == estimate


def test_budget_refuses_after_waiting_and_refuses_what_can_never_fit():
    budget = DecodeBudget(max_concurrent=1, max_bytes=1000, wait_s=0.1)
    with budget.reserve(10, "first.png"):
        started = time.perf_counter()
        with pytest.raises(ImageRejected) as error:
            with budget.reserve(10, "second.png"):
                pass
        assert 0.09 < time.perf_counter() - started < 2
    assert str(error.value) == ("second.png: the decoder is busy: 1 decode(s) in flight hold 10 bytes and this one "
                                "needs 10 bytes; waited 0.1 s (decode budget: 1 at a time, 1000 bytes in all). "
                                "Try again")
    with pytest.raises(ImageRejected, match="big.png: decoding would allocate about 2000 bytes, more than the whole "
                                            r"decode budget: 1 at a time, 1000 bytes in all"):
        with budget.reserve(2000, "big.png"):
            pass
    with budget.reserve(10, "after.png"):  # everything was given back
        assert budget.in_flight == 1
    with pytest.raises(ImageRejected, match="more than the whole decode budget"):
        decode_image(encoded(".png", texture()), "part.png", budget=budget)


def test_the_default_budget_is_shared_and_bounds_the_defaults():
    assert decode.DEFAULT_BUDGET.max_concurrent == 2
    # two of the largest decodes the defaults allow fit in it
    assert decode.DEFAULT_BUDGET.max_bytes >= 2 * decode.default_decode_bytes(decode.DEFAULT_MAX_PIXELS)
    from defect_plugins.station import imaging

    assert imaging.ImageRejected is ImageRejected
    with pytest.raises(ImageRejected, match="is above the station's limit of 0.001 MP \\(--max-pixels\\)"):
        imaging.decode_upload(encoded(".png", texture()), "part.png", max_pixels=1000)
