"""``defect-station --check``: is this install able to run the station? (for a line PC and for CI).

Serves the real application on a free loopback port in a background thread, loads the page, sends
a synthetic 200 x 200 image through every model, re-thresholds the anomaly models' maps, and
checks that no training stack was imported (torch, the OpenMMLab toolkits, anomalib: the
runtime-only install has none of them). Prints one line per check; exit status 0 when all pass.
The database is a temporary file, not the station's.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import cv2
import numpy as np

FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")


def synthetic_part(size: int = 200) -> bytes:
    """A grey textured strip with a dark blob, as PNG bytes."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.normal(150, 6, (size, size)).astype(np.float32), (0, 0), 1.0)
    cv2.circle(image, (size // 2, size // 3), size // 10, 60.0, -1)
    ok, encoded = cv2.imencode(".png", np.clip(image, 0, 255).astype(np.uint8))
    return encoded.tobytes()


def _call(url: str, data: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    # writes carry the station's request header, as its page does (defect_plugins/station/guard.py)
    headers = {"Content-Type": content_type, "X-Requested-With": "defect-station"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            body, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        body, status, kind = error.read(), error.code, error.headers.get("Content-Type", "")
    return status, json.loads(body) if kind.startswith("application/json") else body.decode("utf-8", "replace")


def run_check(app: Any, sock: Any, url: str) -> int:
    """Serve ``app`` on ``sock`` in a thread, exercise it through ``url``; 0 when every check passes."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    failures = []

    def report(ok: bool, text: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}", flush=True)
        if not ok:
            failures.append(text)

    try:
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        status, page = _call(url)
        report(status == 200 and "Operator station" in str(page), f"page {url} ({status})")
        started = time.perf_counter()
        status, result = _call(url + "api/inspect?name=check.png", synthetic_part(), "application/octet-stream")
        elapsed = (time.perf_counter() - started) * 1000
        ok = status == 200 and all(m.get("status") == "ok" for m in result.get("models", []))
        report(ok, f"synthetic image through every model: grade {result.get('grade') if ok else result} "
                   f"({elapsed:.0f} ms)")
        for model in result.get("models", []) if ok else []:
            report(True, f"{model['name']} ({model['family']}): grade {model['grade']}, "
                         f"{model['num_regions']} regions, {model['latency_ms']:.1f} ms")
            if model["family"] == "anomaly":
                status, moved = _call(url + "api/threshold", json.dumps(
                    {"inspection_id": result["inspection_id"], "token": result["token"], "model": model["index"],
                     "threshold": 0.0}).encode())
                report(status == 200 and moved["model"]["decision"] == "defect",
                       f"{model['name']}: threshold slider re-thresholds the kept map ({status})")
        status, bad = _call(url + "api/inspect?name=empty.png", b"", "application/octet-stream")
        report(status == 400 and "empty file" in str(bad), f"a bad upload gets its message ({status})")
        status, _ = _call(url + "api/decision", json.dumps({"inspection_id": 1, "decision": "accept"}).encode(),
                          "text/plain")
        report(status == 415, f"a write that is not JSON (what a cross-site form sends) is refused ({status})")
        loaded = sorted({name.split(".")[0] for name in sys.modules} & set(FORBIDDEN))
        report(not loaded, f"no training stack imported{': ' + ', '.join(loaded) if loaded else ''}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"defect-station --check: {'all passed' if not failures else f'{len(failures)} failed'}", flush=True)
    return 0 if not failures else 1
