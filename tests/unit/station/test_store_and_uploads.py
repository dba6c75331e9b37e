"""The SQLite store (WAL, one transaction per write, filters, CSV) and the upload checks."""
from __future__ import annotations

import csv
import io
import sqlite3
import struct
import zlib

import cv2
import numpy as np
import pytest

from defect_plugins.station.imaging import ImageRejected, decode_upload, header_size, sniff_format
from defect_plugins.station.store import Store, StoreError
from tests.fixtures.station import jpeg_bytes, png_bytes, steel_image

MAX_PIXELS = 50_000_000


def _inspection(store: Store, sha: str, grade: str = "minor", class_name: str = "crazing") -> int:
    return store.add_inspection(source=f"upload:{sha}.png", image_sha256=sha, width=200, height=200,
                                models=[{"name": "cls", "family": "classifier", "version": "abc"}],
                                results=[{"model": "cls", "grade": grade}], grade=grade, class_name=class_name,
                                score=None)


def test_store_is_wal_and_keeps_inspections_with_their_latest_decision(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    with sqlite3.connect(tmp_path / "station.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    first, second = _inspection(store, "a" * 64), _inspection(store, "b" * 64, "ok", "patches")
    store.add_decision(first, decision="accept", operator="Ana", system_grade="minor", final_grade="minor",
                       thresholds={"cls": None})
    row = store.add_decision(first, decision="regrade", operator="Ben", system_grade="minor", final_grade="major",
                             thresholds={"cls": None}, comment="deeper than it looks")
    assert row["inspection_id"] == first and row["final_grade"] == "major"
    history = store.history()
    assert [r["id"] for r in history] == [second, first]
    assert history[1]["decision"] == "regrade" and history[1]["current_grade"] == "major"
    assert history[0]["decision"] is None and history[0]["current_grade"] == "ok"
    assert [r["id"] for r in store.history(grade="major")] == [first]
    assert [r["id"] for r in store.history(class_name="patches")] == [second]
    assert [r["id"] for r in store.history(decision="none")] == [second]
    today = history[0]["created_at"][:10]
    assert len(store.history(date_from=today, date_to=today)) == 2 and store.history(date_to="2000-01-01") == []
    assert store.classes() == ["crazing", "patches"]
    rows = list(csv.DictReader(io.StringIO(store.history_csv(grade="major"))))
    assert [(r["id"], r["operator"], r["decision"], r["final_grade"], r["comment"]) for r in rows] == [
        (str(first), "Ana", "accept", "minor", ""), (str(first), "Ben", "regrade", "major", "deeper than it looks")]


def test_bad_writes_leave_nothing_behind(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    with pytest.raises(StoreError, match="inspection 7 does not exist"):
        store.add_decision(7, decision="accept", operator="Ana", system_grade="ok", final_grade="ok", thresholds={})
    first = _inspection(store, "c" * 64)
    with pytest.raises(StoreError, match="decision must be one of"):
        store.add_decision(first, decision="maybe", operator="Ana", system_grade="ok", final_grade="ok", thresholds={})
    with pytest.raises(TypeError):  # not JSON: the insert fails inside its transaction
        store.add_inspection(source="x", image_sha256="d" * 64, width=1, height=1, models=[object()], results=[],
                             grade="ok", class_name="x", score=None)
    with pytest.raises(StoreError, match="YYYY-MM-DD"):
        store.history(date_from="yesterday")
    with sqlite3.connect(tmp_path / "station.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_store_refuses_a_foreign_database_and_a_missing_folder(tmp_path):
    with sqlite3.connect(tmp_path / "other.sqlite") as conn:
        conn.execute("CREATE TABLE parts (id INTEGER)")
    with pytest.raises(StoreError, match="not a defect-station database"):
        Store(tmp_path / "other.sqlite")
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing" / "station.sqlite")


def test_good_uploads_decode_in_every_format(tmp_path):
    image = steel_image(1)
    for data in (png_bytes(image), jpeg_bytes(image), cv2.imencode(".bmp", image)[1].tobytes(),
                 cv2.imencode(".tiff", image)[1].tobytes()):
        assert header_size(data, sniff_format(data)) == (200, 200)
        assert decode_upload(data, "part", max_pixels=MAX_PIXELS).shape == (200, 200, 3)


def test_bad_uploads_get_a_message_naming_the_file(huge_png):
    image = steel_image(2)
    jpeg = jpeg_bytes(image)
    png = png_bytes(image)
    cases = {
        b"": "empty.png: empty file (0 bytes)",
        b"name,grade\nx,ok\n": "notes.png: not an image: expected PNG, JPEG, BMP or TIFF",
        jpeg[: len(jpeg) // 2]: "cut.jpg: truncated JPEG: the end-of-image marker (FF D9) is missing",
        png[:-30]: "cut.png: truncated PNG",
        huge_png: "huge.png: 10000 x 10000 pixels (100 MP) is above the station's limit of 50 MP",
        png[:20]: "stub.png: PNG header is cut short",
    }
    names = ["empty.png", "notes.png", "cut.jpg", "cut.png", "huge.png", "stub.png"]
    for (data, message), name in zip(cases.items(), names):
        with pytest.raises(ImageRejected) as error:
            decode_upload(data, name, max_pixels=MAX_PIXELS)
        assert str(error.value).startswith(message), str(error.value)
    # a valid header in front of a corrupt body: OpenCV's verdict, named
    body = bytearray(png)
    body[60:400] = bytes(340)
    with pytest.raises(ImageRejected, match="corrupt.png: the PNG data cannot be decoded"):
        decode_upload(bytes(body), "corrupt.png", max_pixels=MAX_PIXELS)


def test_pixel_limit_is_read_from_the_header_before_decoding():
    """A PNG whose header claims 60000 x 60000 is refused without decoding its (bogus) data."""
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + b"\x00" * 64 + b"IEND\xaeB`\x82")
    with pytest.raises(ImageRejected, match="60000 x 60000 pixels"):
        decode_upload(data, "claims.png", max_pixels=MAX_PIXELS)
    assert decode_upload(png_bytes(np.zeros((30, 40, 3), np.uint8)), "ok.png", max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(ImageRejected, match="above the station's limit"):
        decode_upload(png_bytes(np.zeros((30, 41, 3), np.uint8)), "big.png", max_pixels=1200)
