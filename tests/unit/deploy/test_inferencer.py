"""DefectInferencer: one result type for every family, input order and bad images in predict_many, anomalib IRs."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from defect_plugins.deploy import DefectInferencer, InferenceResult
from defect_plugins.deploy.runtime import compile_model
from defect_plugins.imaging import list_images
from tests.unit.deploy.test_openvino_threads import CLASSES, _images, make_tiny_classifier


@pytest.fixture(scope="module")
def tiny_xml(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny_ir") / "tiny.xml")


def test_predict_takes_a_path_or_an_array_and_matches_the_ir(tiny_xml, tmp_path):
    (path,) = _images(tmp_path, 1)
    inferencer = DefectInferencer(tiny_xml, device="CPU", precision="f32")
    from_path, from_array = inferencer.predict(path), inferencer.predict(cv2.imread(str(path)))
    probs = compile_model(tiny_xml, "f32").create_infer_request().infer({0: cv2.imread(str(path))[None]})[0][0]
    for result in (from_path, from_array):
        assert isinstance(result, InferenceResult) and result.ok and result.family == "classifier"
        assert result.label == CLASSES[int(probs.argmax())] and result.decision == result.label
        assert result.confidence == pytest.approx(float(probs.max()), abs=1e-6)
        assert list(result.probabilities) == CLASSES
    assert from_path.source == str(path) and from_array.source == "image[0]"
    row = from_path.to_dict()
    assert json.loads(json.dumps(row)) == row and row["class"] == from_path.label
    # the paper's Otsu regions of the image, labelled with the class, and their per-image totals
    assert row["num_regions"] == len(row["regions"]) == len(from_path.regions)
    assert all(region["class"] == from_path.label for region in row["regions"])
    assert row["totals"]["area"] == sum(region["area"] for region in row["regions"]) == from_path.defect_mask.sum()
    assert from_path.overlay().shape == (16, 16, 3)


def test_predict_reports_unreadable_input_as_an_error_result(tiny_xml, tmp_path):
    inferencer = DefectInferencer(tiny_xml)
    missing = inferencer.predict(tmp_path / "missing.png")
    assert missing.status == "error" and "no such file" in missing.error
    assert missing.to_dict() == {"source": str(tmp_path / "missing.png"), "status": "error", "error": missing.error}
    floats = inferencer.predict(np.zeros((16, 16, 3), np.float32))
    assert floats.status == "error" and floats.error.startswith("resize:") and "uint8" in floats.error
    with pytest.raises(ValueError, match="failed result"):
        floats.overlay()


def test_predict_many_keeps_input_order_and_continues_after_a_corrupt_image(tiny_xml, tmp_path):
    paths = _images(tmp_path / "images", 7)
    corrupt = tmp_path / "images" / "003_corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    inputs = [*paths[:3], corrupt, cv2.imread(str(paths[3])), ("camera#000001", cv2.imread(str(paths[4]))),
              ("camera#000002", OSError("camera: frame lost")), *paths[5:]]
    inferencer = DefectInferencer(tiny_xml, performance_hint="THROUGHPUT")
    results = list(inferencer.predict_many(inputs, jobs=2))
    assert [r.source for r in results] == [*map(str, paths[:3]), str(corrupt), "image[4]", "camera#000001",
                                           "camera#000002", *map(str, paths[5:])]
    assert [r.status for r in results] == ["ok"] * 3 + ["error", "ok", "ok", "error"] + ["ok"] * 2
    assert (results[3].error.startswith(f"{corrupt}: PNG header is cut short")
            and results[6].error == "camera: frame lost")
    one_by_one = [inferencer.predict(path) for path in paths]
    ok = [r for r in results if r.ok]
    assert [r.label for r in ok] == [r.label for r in one_by_one]
    assert [r.confidence for r in ok] == pytest.approx([r.confidence for r in one_by_one], abs=1e-6)


def test_predict_many_stopped_early_leaves_the_inferencer_usable(tiny_xml, tmp_path):
    paths = _images(tmp_path, 6)
    inferencer = DefectInferencer(tiny_xml)
    stream = inferencer.predict_many(paths, jobs=3)
    first = next(stream)
    stream.close()  # requests still in flight are waited for, not dropped
    assert first.source == str(paths[0])
    assert [r.source for r in inferencer.predict_many(paths[:2])] == [str(p) for p in paths[:2]]


def test_start_from_several_threads_shares_a_bounded_pool_and_matches_predict(tiny_xml, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    paths = _images(tmp_path, 8)
    inferencer = DefectInferencer(tiny_xml, performance_hint="THROUGHPUT", max_requests=2)
    one_by_one = [inferencer.predict(path) for path in paths]
    with ThreadPoolExecutor(4) as pool:  # four callers, two requests: the others wait for a free one
        results = list(pool.map(lambda path: inferencer.start(path).result(), paths))
    assert inferencer._created == 2 and inferencer._pool.qsize() == 2  # every request back in the pool
    assert [r.source for r in results] == [str(p) for p in paths]
    assert [r.label for r in results] == [r.label for r in one_by_one]
    assert [r.confidence for r in results] == pytest.approx([r.confidence for r in one_by_one], abs=1e-6)
    jobs = [inferencer.start(paths[0]), inferencer.start(tmp_path / "missing.png")]  # started side by side
    first, missing = (job.result() for job in jobs)
    assert first.ok and missing.status == "error" and "missing.png" in missing.error
    with pytest.raises(ValueError, match="max_requests must be at least 1"):
        DefectInferencer(tiny_xml, max_requests=-1)


@pytest.fixture(scope="module")
def anomalib_ir(tiny_anomaly, tmp_path_factory):
    """The tiny AKF-RD checkpoint exported by anomalib itself (Engine.export, as `anomalib export` does)."""
    from anomalib.deploy import ExportType
    from anomalib.engine import Engine

    from defect_plugins.anomaly import AkfReverseDistillation

    root = tmp_path_factory.mktemp("anomalib_export")
    model = AkfReverseDistillation.load_from_checkpoint(tiny_anomaly.checkpoint, map_location="cpu").eval()
    xml = Engine(default_root_dir=root / "engine", logger=False).export(
        model=model, export_type=ExportType.OPENVINO, export_root=root / "export")
    return model, xml


def test_anomalib_export_runs_through_defect_inferencer(anomalib_ir, anomaly_export, tiny_anomaly):
    """An `anomalib export` IR (float RGB NCHW, no metadata of ours) gives the PyTorch model's figures."""
    import torch

    model, xml = anomalib_ir
    adopted = DefectInferencer(xml)
    assert adopted.metadata.family == "anomaly" and adopted.metadata.source["framework"] == "anomalib"
    assert adopted.metadata.input_size == (32, 32) and adopted.metadata.thresholds["image"] == 0.5
    ours = DefectInferencer(anomaly_export[1])
    images = list_images(tiny_anomaly.data / "test")
    results = list(adopted.predict_many(images))
    for path, result in zip(images, results):
        rgb = cv2.imread(str(path))[..., ::-1].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        with torch.no_grad():
            reference = model(torch.from_numpy(np.ascontiguousarray(rgb)))
        assert result.ok and result.score == pytest.approx(float(reference.pred_score.reshape(-1)[0]), abs=1e-4)
        np.testing.assert_allclose(result.anomaly_map, reference.anomaly_map[0, 0].numpy(), atol=1e-4)
        assert result.decision == ("defect" if result.score >= 0.5 else "good")
        same = ours.predict(path)  # defect-export's IR of the same checkpoint agrees
        assert same.score == pytest.approx(result.score, abs=1e-4) and same.grade == result.grade
    assert results[0].overlay().shape == (32, 32, 3)


def test_defect_infer_runs_an_anomalib_export(anomalib_ir, tiny_anomaly, tmp_path):
    from defect_plugins.deploy.infer import run_inference

    summary = run_inference(anomalib_ir[1], [tiny_anomaly.data / "test"], tmp_path / "out", progress=False)
    assert summary["family"] == "anomaly" and summary["processed"] == 4 and summary["failed"] == 0
