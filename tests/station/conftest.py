"""defect-station tests: IRs of the three families (the session's tiny models, exported), a real server, images.

The tiny models come from tests/model_fixtures.py (shared with tests/deploy); here they are only
exported. :func:`running_station` starts ``python -m defect_plugins.station`` as a separate
process on a free port, the way an operator starts it, and records at its exit which modules it
had imported (the runtime-only check).
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")

# Runs the real CLI; writes the imported modules when the server exits.
LAUNCHER = r"""
import atexit, json, runpy, signal, sys
modules_out = sys.argv.pop(1)
atexit.register(lambda: open(modules_out, "w").write(json.dumps(sorted(sys.modules))))
# uvicorn shuts down on SIGTERM, then raises it again with the handler found before: make that an exit
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
sys.argv[0] = "defect-station"
runpy.run_module("defect_plugins.station", run_name="__main__")
"""


@pytest.fixture(scope="session")
def station_irs(tiny_classifier, tiny_segmentor, anomaly_export, tmp_path_factory) -> dict[str, Path]:
    """``{family: model.xml}``: the tiny NEU classifier, the tiny strip segmentor and the tiny AKF-RD."""
    from defect_plugins.deploy.export import export_model, load_model

    root = tmp_path_factory.mktemp("station_irs")
    classifier = load_model("classifier", config=tiny_classifier.config, checkpoint=tiny_classifier.checkpoint)
    cls_xml, _ = export_model("classifier", root / "neu_cls.xml", loaded=classifier)
    segmentor = load_model("segmentor", config=tiny_segmentor.config, checkpoint=tiny_segmentor.checkpoint,
                           input_size=tiny_segmentor.input_size)
    seg_xml, _ = export_model("segmentor", root / "strip_seg.xml", loaded=segmentor)
    return {"classifier": cls_xml, "segmentor": seg_xml, "anomaly": anomaly_export[1]}


class StationProcess:
    """A running ``defect-station`` with small HTTP helpers."""

    def __init__(self, process: subprocess.Popen, url: str, lines: queue.Queue, modules_file: Path) -> None:
        self.process, self.url, self._lines, self.modules_file = process, url, lines, modules_file

    def request(self, path: str, data: bytes | None = None, *, json_body: dict | None = None,
                method: str | None = None, timeout: float = 60,
                headers: dict[str, str | None] | None = None) -> tuple[int, dict | str]:
        """One HTTP request; writes carry the station's request header, as its page does.

        ``headers`` adds or replaces headers; a value of None removes that header.
        """
        sent = {}
        if json_body is not None:
            data, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif data is not None:
            sent["Content-Type"] = "application/octet-stream"
        if data is not None or method not in (None, "GET", "HEAD"):
            sent["X-Requested-With"] = "defect-station"
        for key, value in (headers or {}).items():
            sent.pop(key, None)
            if value is not None:
                sent[key] = value
        request = urllib.request.Request(self.url + path.lstrip("/"), data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, body, kind = response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, body, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        text = body.decode("utf-8")
        return status, json.loads(text) if kind.startswith("application/json") else text

    def upload(self, data: bytes, name: str) -> tuple[int, dict]:
        return self.request(f"api/inspect?name={urllib.request.quote(name)}", data)

    def output(self) -> str:
        lines = []
        while not self._lines.empty():
            lines.append(self._lines.get_nowait())
        return "".join(lines)

    def stop(self) -> list[str]:
        """Stop the server (SIGTERM, as a service manager does) and return the modules it had imported."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return json.loads(self.modules_file.read_text()) if self.modules_file.is_file() else []


@contextlib.contextmanager
def running_station(models: list[Path], workdir: Path, *args: str) -> Iterator[StationProcess]:
    """Start the station on a free port in ``workdir``; stop it afterwards."""
    modules_file = workdir / f"modules-{len(list(workdir.glob('modules-*')))}.json"
    command = [sys.executable, "-c", LAUNCHER, str(modules_file), "--port", "0"]
    for model in models:
        command += ["--model", str(model)]
    command += list(args)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    try:
        while True:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError(f"defect-station did not start: {''.join(seen)}") from None
            seen.append(line)
            if line.startswith("defect-station: serving "):
                url = line.split("serving ", 1)[1].strip()
                break
            if process.poll() is not None and lines.empty():
                raise AssertionError(f"defect-station exited {process.returncode}: {''.join(seen)}")
        station = StationProcess(process, url, lines, modules_file)
        yield station
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def steel_image(seed: int, size: int = 200, *, defect: str = "blob") -> np.ndarray:
    """A grey textured strip with one dark defect (``blob``, ``scratch``), unique per ``seed``."""
    rng = np.random.default_rng(seed)
    image = rng.normal(150, 6, (size, size)).astype(np.float32)
    image += np.linspace(-8, 8, size)[None, :]  # uneven lighting, as on a line
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    centre = (int(rng.integers(size // 3, 2 * size // 3)), int(rng.integers(size // 3, 2 * size // 3)))
    if defect == "blob":
        cv2.circle(image, centre, int(rng.integers(size // 12, size // 7)), 60.0, -1)
    else:
        cv2.line(image, (centre[0] - size // 4, centre[1] - 5), (centre[0] + size // 4, centre[1] + 5), 70.0, 2)
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def png_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def jpeg_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory) -> bytes:
    """A real 10000 x 10000 PNG (one colour: about 100 kB on disk, 300 MB once decoded)."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    cv2.imwrite(str(path), np.zeros((10000, 10000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path.read_bytes()
