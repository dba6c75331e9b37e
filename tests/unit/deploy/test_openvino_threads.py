"""run_inference (DefectInferencer.predict_many) drives its infer requests from the calling thread:
no Python code on OpenVINO's threads.

The regression: with ``ov.AsyncInferQueue.set_callback`` the Python callback (a closure holding the
compiled model) ran on an OpenVINO thread, and its last reference was sometimes released there,
after ``wait_all`` had returned. The compiled model was then destroyed on a thread of its own
executor, ``CPUStreamsExecutor::~CPUStreamsExecutor`` joined that thread from itself, and the
process aborted: ``terminate called after throwing an instance of 'std::system_error' what():
Resource deadlock avoided`` (SIGABRT, exit 134). The stress run below (many runs in one process,
collection forced at every allocation, OpenVINO objects kept in reference cycles) checks in a
subprocess, so that an abort cannot take pytest down, that the process survives and that the
cyclic collector never ran on a thread that Python did not start, i.e. no Python code ran on
OpenVINO's threads. A tiny IR is built with OpenVINO's opset (no torch), so this takes seconds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.infer import run_inference
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.runtime import compile_model, save_ir

from tests.conftest import REPO_ROOT

CLASSES = ["a", "b", "c"]

STRESS = r"""
import gc, json, sys, threading
from pathlib import Path

import defect_plugins.deploy.infer as infer
import defect_plugins.deploy.inferencer as inferencer

xml, images, out, runs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
main_thread = threading.get_ident()
elsewhere = []  # collections on threads that Python did not start (OpenVINO's): Python code was running there


def started_by_python():  # the outermost frame is threading's bootstrap (telemetry, tqdm and other helpers)
    frame = sys._getframe(1)
    while frame.f_back is not None:
        frame = frame.f_back
    return frame.f_code.co_name == "_bootstrap" and frame.f_code.co_filename == threading.__file__


def on_gc(phase, info):
    if phase == "start" and threading.get_ident() != main_thread and not started_by_python():
        elsewhere.append(threading.get_ident())


class Cycle:
    def __init__(self, obj):
        self.obj, self.me = obj, self


real_compile = inferencer.compile_model


def compile_into_a_cycle(*args, **kwargs):  # garbage that only the cyclic collector frees, as NNCF/anomalib leave
    compiled = real_compile(*args, **kwargs)
    Cycle(compiled)
    return compiled


inferencer.compile_model = compile_into_a_cycle
gc.callbacks.append(on_gc)
gc.set_threshold(1, 1, 1)
summaries = []
for run in range(runs):
    summary = infer.run_inference(xml, [images], out / str(run % 2), progress=False, save_images=run % 4 == 0)
    summaries.append({key: summary[key] for key in ("inputs", "processed", "failed")})
    Cycle(summary)
gc.set_threshold(700, 10, 10)
print(json.dumps({"runs": len(summaries), "summaries": summaries[:2],
                  "all_same": all(s == summaries[0] for s in summaries),
                  "collections_off_main_thread": len(elsewhere)}))
"""


def make_tiny_classifier(path: Path, size=(16, 16), dynamic: bool = False) -> Path:
    """uint8 BGR (1, H, W, 3) -> conv -> global mean -> softmax over 3 classes, with defect_plugins metadata."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    image = ops.parameter([1, size[0], size[1], 3], ov.Type.u8, name="image")
    x = ops.transpose(ops.convert(image, ov.Type.f32), ops.constant(np.array([0, 3, 1, 2], np.int64)))
    x = ops.relu(ops.convolution(x, ops.constant(rng.normal(size=(8, 3, 3, 3)).astype(np.float32) / 64),
                                 [1, 1], [1, 1], [1, 1], [1, 1]))
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), False)
    x = ops.matmul(x, ops.constant(rng.normal(size=(8, len(CLASSES))).astype(np.float32)), False, False)
    probs = ops.softmax(x, 1)
    probs.output(0).get_tensor().set_names({"probs"})
    metadata = ModelMetadata(family="classifier", precision="FP32", input_size=size, dynamic=dynamic,
                             class_names=CLASSES, outputs=["probs"])
    return save_ir(ov.Model([probs], [image], "tiny"), path, metadata)


def _images(folder: Path, count: int, size=(16, 16)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for index in range(count):
        paths.append(folder / f"{index:03d}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return paths


@pytest.fixture(scope="module")
def tiny_xml(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_ir") / "tiny.xml")


def test_stress_many_runs_no_python_on_openvino_threads(tiny_xml, tmp_path):
    images = tmp_path / "images"
    _images(images, 3)
    (images / "broken.png").write_bytes(b"not a png")
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", STRESS, str(tiny_xml), str(images),
                           str(tmp_path / "out"), "30"], capture_output=True, text=True, timeout=240, env=env,
                          cwd=REPO_ROOT)
    if proc.returncode < 0 or proc.returncode == 128 + signal.SIGABRT:
        pytest.fail(f"the process died with signal {abs(proc.returncode)}:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["runs"] == 30 and report["all_same"]
    assert report["summaries"][0] == {"inputs": 4, "processed": 3, "failed": 1}
    assert report["collections_off_main_thread"] == 0, "Python code ran on an OpenVINO thread"


def test_ring_keeps_input_order_and_matches_synchronous_inference(tiny_xml, tmp_path):
    """More images than requests: every result belongs to its own image, in input order."""
    paths = _images(tmp_path / "images", 9)
    summary = run_inference(tiny_xml, [tmp_path / "images"], tmp_path / "out", jobs=2, progress=False)
    assert summary["jobs"] == 2 and summary["processed"] == 9 and summary["failed"] == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["source"] for r in results] == [str(p) for p in paths]
    request = compile_model(tiny_xml, "f32").create_infer_request()
    for path, result in zip(paths, results):
        probs = request.infer({0: cv2.imread(str(path))[None]})[0].reshape(-1)
        assert result["class"] == CLASSES[int(probs.argmax())]
        assert result["confidence"] == pytest.approx(float(probs.max()), abs=1e-5)
        assert (tmp_path / "out" / result["overlay"]).is_file()
    assert not [p for p in (tmp_path / "out").rglob(".*")], "no temporary file may be left behind"


def test_failed_inferences_are_counted_and_do_not_stop_the_run(tmp_path):
    """A model that claims dynamic input but is static: wrong-sized images fail inside OpenVINO, the rest go on."""
    xml = make_tiny_classifier(tmp_path / "liar.xml", dynamic=True)
    _images(tmp_path / "images" / "a", 3)
    _images(tmp_path / "images" / "b", 2, size=(20, 24))
    summary = run_inference(xml, [tmp_path / "images"], tmp_path / "out", jobs=2, progress=False, save_images=False)
    assert summary["inputs"] == 5 and summary["processed"] == 3 and summary["failed"] == 2
    assert all(f["error"].startswith("inference:") and "/b/" in f["source"] for f in summary["failures"])
    statuses = [r["status"] for r in json.loads((tmp_path / "out" / "results.json").read_text())["results"]]
    assert statuses == ["ok", "ok", "ok", "error", "error"]


def test_default_jobs_is_openvinos_optimum(tiny_xml, tmp_path):
    _images(tmp_path / "images", 2)
    summary = run_inference(tiny_xml, [tmp_path / "images"], tmp_path / "out", progress=False, save_images=False)
    compiled = compile_model(tiny_xml, "f32", performance_hint="THROUGHPUT")
    assert summary["jobs"] == int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
