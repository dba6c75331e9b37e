"""Exports of every family load, carry their metadata and match PyTorch at f32; INT8 and its guard."""
from __future__ import annotations

import json

import numpy as np
import pytest

from defect_plugins.deploy.export import ExportError, export_model, load_model, main, parity
from defect_plugins.deploy.export.int8 import QuantizationToleranceError
from defect_plugins.deploy.metadata import sidecar_path
from defect_plugins.deploy.runtime import openvino_predict, read_metadata, verify_ir
from defect_plugins.imaging import list_images, read_bgr
from defect_plugins.imaging.geometry import to_input

F32_TOLERANCE = 1e-4  # OpenVINO compiled with INFERENCE_PRECISION_HINT=f32


def _batch(folder, size, count=2):
    return np.concatenate([to_input(read_bgr(path), size) for path in list_images(folder)[:count]])


@pytest.mark.parametrize("dynamic", [False, True])
def test_classifier_export_matches_pytorch_at_f32(tiny_classifier, tmp_path, dynamic):
    loaded = load_model("classifier", config=tiny_classifier.config, checkpoint=tiny_classifier.checkpoint)
    xml, metadata = export_model("classifier", tmp_path / "cls.xml", loaded=loaded, dynamic=dynamic)
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and sidecar_path(xml).is_file()
    stored = read_metadata(xml)
    assert stored.family == "classifier" and stored.precision == "FP32" and stored.dynamic is dynamic
    assert stored.class_names[0] == "crazing" and len(stored.class_names) == 6
    assert stored.input_size == (32, 32)
    assert json.loads(sidecar_path(xml).read_text())["class_names"] == stored.class_names
    assert set(verify_ir(xml)) == {"xml_sha256", "bin_sha256"}  # hashes recorded; the files match them
    size = (48, 40) if dynamic else (32, 32)  # a dynamic export accepts another size
    diffs = parity(loaded, xml, _batch(tiny_classifier.data, size))
    assert diffs["probs"] < F32_TOLERANCE


def test_segmentor_export_matches_pytorch_at_f32(tiny_segmentor, tmp_path):
    loaded = load_model("segmentor", config=tiny_segmentor.config, checkpoint=tiny_segmentor.checkpoint,
                        input_size=tiny_segmentor.input_size)
    xml, _ = export_model("segmentor", tmp_path / "seg.xml", loaded=loaded)
    stored = read_metadata(xml)
    assert stored.family == "segmentor" and stored.outputs == ["seg_probs"]
    assert stored.class_names == ["background", "fold_mark", "edge_crack"]
    diffs = parity(loaded, xml, _batch(tiny_segmentor.data / "img_dir" / "val", tiny_segmentor.input_size))
    assert diffs["seg_probs"] < F32_TOLERANCE


def test_anomaly_export_matches_pytorch_at_f32(anomaly_export, tiny_anomaly):
    loaded, xml, metadata = anomaly_export
    stored = read_metadata(xml)
    assert stored.family == "anomaly" and stored.thresholds["image"] == 0.5
    assert stored.outputs == ["pred_score", "pred_label", "anomaly_map", "pred_mask"]
    diffs = parity(loaded, xml, _batch(tiny_anomaly.data / "test" / "good", (32, 32)))
    assert diffs["pred_score"] < F32_TOLERANCE and diffs["anomaly_map"] < F32_TOLERANCE


def test_int8_export_of_a_tiny_model_says_int8(tiny_classifier, tmp_path):
    loaded = load_model("classifier", config=tiny_classifier.config, checkpoint=tiny_classifier.checkpoint)
    fp32, _ = export_model("classifier", tmp_path / "fp32.xml", loaded=loaded)
    int8, metadata = export_model("classifier", tmp_path / "int8.xml", loaded=loaded, precision="INT8",
                                  calib_dir=tiny_classifier.data, tolerance=1.0)
    stored = read_metadata(int8)
    assert stored.precision == "INT8"
    report = stored.quantization
    assert report["metric"] == "accuracy" and report["calibration_images"] == 12
    assert 0.0 <= report["fp32"] <= 1.0 and 0.0 <= report["int8"] <= 1.0
    assert report["drop"] == pytest.approx(report["fp32"] - report["int8"])
    assert int8.with_suffix(".bin").stat().st_size < 0.5 * fp32.with_suffix(".bin").stat().st_size


def _constant_class_model(size, num_classes):
    """A stand-in for a broken quantization: always answers class 0."""
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter(ov.PartialShape([-1, *size, 3]), ov.Type.u8, name="image")
    mean = ops.reduce_mean(ops.convert(image, "f32"), ops.constant(np.array([1, 2], np.int64)), False)
    zero = ops.multiply(mean, ops.constant(np.float32(0.0)))
    probs = ops.add(ops.matmul(zero, ops.constant(np.zeros((3, num_classes), np.float32)), False, False),
                    ops.constant(np.eye(1, num_classes, dtype=np.float32)))
    return ov.Model([probs], [image], "constant")


def test_tolerance_guard_refuses_a_bad_quantization(tiny_classifier, tmp_path, monkeypatch):
    loaded = load_model("classifier", config=tiny_classifier.config, checkpoint=tiny_classifier.checkpoint)
    fp32, metadata = export_model("classifier", tmp_path / "fp32.xml", loaded=loaded)
    # Label a folder with the FP32 model's own answers: FP32 accuracy is then exactly 1.
    predict = openvino_predict(fp32)
    labelled = tmp_path / "labelled"
    predicted = set()
    for index, path in enumerate(list_images(tiny_classifier.data)):
        name = metadata.class_names[int(predict(to_input(read_bgr(path), (32, 32)))[0].argmax())]
        predicted.add(name)
        (labelled / name).mkdir(parents=True, exist_ok=True)
        (labelled / name / f"{index}.png").write_bytes(path.read_bytes())
    if predicted == {metadata.class_names[0]}:
        pytest.skip("the random tiny model answers class 0 for everything; the constant model would be right")
    import defect_plugins.deploy.export.int8 as int8

    # both INT8 routes (plain PTQ, then NNCF's accuracy control) give a useless model
    monkeypatch.setattr(int8, "quantize", lambda model, items, **kw: _constant_class_model((32, 32), 6))
    monkeypatch.setattr(int8, "quantize_accuracy_control",
                        lambda model, items, *args, **kw: _constant_class_model((32, 32), 6))
    out = tmp_path / "bad" / "int8.xml"
    with pytest.raises(QuantizationToleranceError, match="Nothing was written"):
        export_model("classifier", out, loaded=loaded, precision="INT8", calib_dir=labelled, tolerance=0.01)
    assert not out.exists() and not out.with_suffix(".bin").exists() and not sidecar_path(out).exists()
    # --force keeps it, and the metadata says it was forced
    export_model("classifier", out, loaded=loaded, precision="INT8", calib_dir=labelled, tolerance=0.01, force=True)
    report = read_metadata(out).quantization
    assert report["fp32"] == pytest.approx(1.0) and report["forced"] is True and report["drop"] > 0.01


def test_bad_arguments_are_named(tiny_classifier, tmp_path, capsys):
    with pytest.raises(ExportError, match="calibration folder"):
        export_model("classifier", tmp_path / "x.xml", config=tiny_classifier.config,
                     checkpoint=tiny_classifier.checkpoint, precision="INT8")
    with pytest.raises(ExportError, match="not found"):
        load_model("classifier", config=tiny_classifier.config, checkpoint=tmp_path / "missing.pth")
    assert main(["classifier", "--config", str(tiny_classifier.config), "--checkpoint", str(tmp_path / "none.pth"),
                 "--out", str(tmp_path / "m.xml")]) == 1
    assert "none.pth not found" in capsys.readouterr().err
    assert not (tmp_path / "m.xml").exists()


def test_command_line_exports_fp16(tiny_classifier, tmp_path, capsys):
    out = tmp_path / "fp16" / "model.xml"
    assert main(["classifier", "--config", str(tiny_classifier.config), "--checkpoint",
                 str(tiny_classifier.checkpoint), "--out", str(out), "--precision", "FP16",
                 "--eval-dir", str(tiny_classifier.data), "--parity", "1"]) == 0
    text = capsys.readouterr().out
    assert "INFERENCE_PRECISION_HINT=f32" in text
    assert read_metadata(out).precision == "FP16"
