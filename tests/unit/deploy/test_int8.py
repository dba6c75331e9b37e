"""INT8 guard: plain PTQ, then NNCF accuracy control, then refusal; on tiny OpenVINO graphs built here.

The graphs are classifiers on uint8 BGR 16x16 images whose answer depends on the brightness of a
colour channel (0..1 after /255). Next to that signal each sensitive layer's input carries a
constant channel of 1000, so NNCF's per-tensor activation range is [0, 1000]: one 8-bit step is
about 3.9 and the signal rounds to 0. Plain PTQ therefore loses the decision, and only reverting
that layer's quantizers restores it; the layers without the constant channel quantize losslessly.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.export import LoadedModel, export_model
from defect_plugins.deploy.export.evaluation import evaluate
from defect_plugins.deploy.export.int8 import QuantizationToleranceError, count_float_layers, quantize_with_guard
from defect_plugins.deploy.metadata import ModelMetadata, sidecar_path
from defect_plugins.deploy.runtime import openvino_predict, read_metadata

SIZE = (16, 16)
CONSTANT = 1000.0


def _ops():
    import openvino.opset13 as ops

    return ops


def _const(array) -> object:
    return _ops().constant(np.asarray(array, dtype=np.float32))


def _image_input():
    """uint8 BGR NHWC -> float NCHW on 0..1 (what the defect_plugins contract hands a graph)."""
    import openvino as ov

    ops = _ops()
    image = ops.parameter(ov.PartialShape([-1, *SIZE, 3]), ov.Type.u8, name="image")
    image.output(0).get_tensor().set_names({"image"})
    nchw = ops.transpose(ops.convert(image, "f32"), ops.constant(np.array([0, 3, 1, 2], np.int64)))
    return image, ops.multiply(nchw, _const(1.0 / 255.0))


def _conv(x, weights, bias):
    ops = _ops()
    weights = np.asarray(weights, np.float32)
    conv = ops.convolution(x, _const(weights.reshape(*weights.shape, 1, 1)), [1, 1], [0, 0], [0, 0], [1, 1])
    return ops.add(conv, _const(np.asarray(bias, np.float32).reshape(1, -1, 1, 1)))


def _branch(x, channel: int):
    """conv1 (lossless: 0..1 input) adds the constant channel; conv2 reads signal next to it: ``brightness - 0.5``."""
    pick = np.zeros((2, 3), np.float32)
    pick[0, channel] = 1.0
    with_constant = _conv(x, pick, [0.0, CONSTANT])
    return _conv(with_constant, [[1.0, 0.0]], [-0.5])


def _finish(image, logits, name: str):
    """Global mean -> ``probs``, plus a boolean output like anomalib's labels (NNCF must not compare it)."""
    import openvino as ov

    ops = _ops()
    probs = ops.softmax(logits, 1)
    probs.output(0).get_tensor().set_names({"probs"})
    confident = ops.greater(ops.reduce_max(probs, ops.constant(np.array([1], np.int64)), False), _const(0.5))
    confident.output(0).get_tensor().set_names({"confident"})
    return ov.Model([probs.output(0), confident.output(0)], [image], name)


def two_branch_model():
    """4 classes ``2 * [blue > 0.5] + [red > 0.5]``: each branch's conv2 must stay float, the rest can be INT8."""
    ops = _ops()
    image, x = _image_input()
    z = ops.concat([_branch(x, 0), _branch(x, 2)], 1)
    pooled = ops.reduce_mean(z, ops.constant(np.array([2, 3], np.int64)), False)
    signs = np.array([[-1, -1, 1, 1], [-1, 1, -1, 1]], np.float32)  # class (i, j): (2i - 1) z_blue + (2j - 1) z_red
    return _finish(image, ops.matmul(pooled, _const(signs), False, False), "two_branch")


def one_layer_model():
    """2 classes ``[blue > 0.5]`` from a single conv whose input carries the constant channel itself."""
    ops = _ops()
    image, x = _image_input()
    constant = ops.add(ops.multiply(ops.split(x, ops.constant(np.int64(1)), 3).output(0), _const(0.0)),
                       _const(CONSTANT))
    logits = _conv(ops.concat([x, constant], 1), [[-1.0, 0, 0, 0], [1.0, 0, 0, 0]], [0.5, -0.5])
    return _finish(image, ops.reduce_mean(logits, ops.constant(np.array([2, 3], np.int64)), False), "one_layer")


def write_images(root, classes: int, per_class: int = 4):
    """``root/c<k>/*.png``: flat images, blue (and red for 4 classes) at 0.2 or 0.8 by the class bits."""
    rng = np.random.default_rng(0)
    for k in range(classes):
        folder = root / f"c{k}"
        folder.mkdir(parents=True)
        blue, red = (k >> 1, k & 1) if classes == 4 else (k, 0)
        for index in range(per_class):
            image = np.zeros((*SIZE, 3), np.uint8)
            image[..., 0] = int(255 * (0.8 if blue else 0.2)) + rng.integers(-20, 20)
            image[..., 1] = rng.integers(0, 255)
            image[..., 2] = int(255 * (0.8 if red else 0.2)) + rng.integers(-20, 20)
            assert cv2.imwrite(str(folder / f"{index}.png"), image)
    return root


def metadata_for(classes: int) -> ModelMetadata:
    return ModelMetadata(family="classifier", precision="FP32", input_size=SIZE,
                         class_names=[f"c{k}" for k in range(classes)], outputs=["probs", "confident"])


def test_fp32_models_are_right_and_plain_ptq_is_not(tmp_path):
    """The premise of the other tests: FP32 accuracy 1, PTQ far below it."""
    for model, classes in ((two_branch_model(), 4), (one_layer_model(), 2)):
        data = write_images(tmp_path / model.get_friendly_name(), classes)
        metadata = metadata_for(classes)
        assert evaluate(openvino_predict(model), metadata, data).value == pytest.approx(1.0)
        with pytest.raises(QuantizationToleranceError) as refused:
            quantize_with_guard(model, metadata, data, tolerance=0.05, accuracy_control=False)
        assert "ptq:" in str(refused.value) and "accuracy_control" not in str(refused.value)


def test_accuracy_control_recovers_what_ptq_lost_and_says_so(tmp_path):
    model = two_branch_model()
    data = write_images(tmp_path / "data", 4)
    metadata = metadata_for(4)
    int8_model, report = quantize_with_guard(model, metadata, data, tolerance=0.05)
    ptq, control = report["attempts"]
    assert ptq["path"] == "ptq" and ptq["drop"] > 0.05 and ptq["float_layers"] == 0
    assert control["path"] == "accuracy_control" and report["path"] == "accuracy_control"
    assert report["fp32"] == pytest.approx(1.0) and report["drop"] == control["drop"] <= 0.05
    assert report["forced"] is False
    # Exactly the two layers reading the constant channel went back to float (NNCF ranked them by our
    # metric); the three others stayed INT8. The report counts the model it returns.
    counts = count_float_layers(int8_model)
    assert report["float_layers"] == counts["float_layers"] == 2 and report["int8_layers"] == counts["int8_layers"] == 3
    assert set(report["float_layer_names"]) == set(counts["float_layer_names"])
    assert evaluate(openvino_predict(int8_model), metadata, data).value == pytest.approx(report["int8"])
    # The report travels in the IR's rt_info and sidecar through the one export path.
    loaded = LoadedModel(None, metadata, lambda dynamic: model.clone())
    out = tmp_path / "export" / "int8.xml"
    export_model("classifier", out, loaded=loaded, precision="INT8", calib_dir=data, tolerance=0.05)
    stored = read_metadata(out).quantization
    assert stored["path"] == "accuracy_control" and stored["float_layers"] >= 1 and stored["int8_layers"] >= 1
    assert stored == read_metadata(out.with_suffix(".xml")).quantization and sidecar_path(out).is_file()


def test_ptq_within_tolerance_takes_the_plain_path(tmp_path):
    model = two_branch_model()
    data = write_images(tmp_path / "data", 4)
    _, report = quantize_with_guard(model, metadata_for(4), data, tolerance=1.0)
    assert report["path"] == "ptq" and [a["path"] for a in report["attempts"]] == ["ptq"]
    assert report["float_layers"] == 0 and report["int8_layers"] == 5


def test_both_attempts_fail_and_nothing_is_written(tmp_path):
    """The only layer must go back to float for accuracy control to reach the tolerance: no INT8 is left."""
    model = one_layer_model()
    data = write_images(tmp_path / "data", 2)
    metadata = metadata_for(2)
    loaded = LoadedModel(None, metadata, lambda dynamic: model.clone())
    out = tmp_path / "export" / "int8.xml"
    with pytest.raises(QuantizationToleranceError, match="Nothing was written") as refused:
        export_model("classifier", out, loaded=loaded, precision="INT8", calib_dir=data, tolerance=0.05)
    assert "ptq:" in str(refused.value) and "accuracy_control:" in str(refused.value)
    assert "0 layers INT8" in str(refused.value)
    assert not out.exists() and not out.with_suffix(".bin").exists() and not sidecar_path(out).exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary file left either
    # --force keeps the INT8 candidate with the smaller drop (PTQ: the accuracy-control one is all float)
    export_model("classifier", out, loaded=loaded, precision="INT8", calib_dir=data, tolerance=0.05, force=True)
    stored = read_metadata(out).quantization
    assert stored["forced"] is True and stored["path"] == "ptq" and stored["drop"] > 0.05
    assert [a["path"] for a in stored["attempts"]] == ["ptq", "accuracy_control"]
    assert stored["attempts"][1]["int8_layers"] == 0 and stored["attempts"][1]["drop"] <= 0.05
