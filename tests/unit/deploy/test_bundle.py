"""Model bundles (defect_plugins.deploy.bundle): writing, checking, archives, and the runtime that takes them.

The bundles are made of tiny IRs built with OpenVINO's opset (no torch, milliseconds): a classifier
and an anomaly model whose image score is the image's mean brightness (so a threshold can be put on
either side of a given image's score).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.deploy import bundle as bundle_module
from defect_plugins.deploy.bundle import (MANIFEST, Bundle, BundleError, BundleIntegrityError, bundle_settings,
                                          is_bundle, load_bundle, pack, staging_dir, write_bundle)
from defect_plugins.deploy.families import PostSettings
from defect_plugins.deploy.grading.rules import DEFAULT_RULES, default_rules, load_rules
from defect_plugins.deploy.inferencer import DefectInferencer
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.runtime import save_ir
from defect_plugins.fileio import temp_sibling
from tests.conftest import REPO_ROOT

SIZE = (16, 16)
CLASSES = ["good", "scratch", "patch"]
GREY = 100  # the test image's grey level: the tiny anomaly model scores it 100 / 255 = 0.392
FORBIDDEN = ("torch", "torchvision", "mmengine", "mmcv", "mmpretrain", "mmseg", "anomalib", "lightning", "nncf")


# --------------------------------------------------------------------------- tiny IRs and bundles


def tiny_anomaly_ir(path: Path, precision: str = "FP32", threshold: float = 0.5) -> Path:
    """uint8 BGR (1, H, W, 3) -> anomaly_map = grey / 255 per pixel, pred_score = its mean."""
    import openvino as ov
    from openvino import opset13 as ops

    image = ops.parameter([1, *SIZE, 3], ov.Type.u8, name="image")
    grey = ops.divide(ops.reduce_mean(ops.convert(image, ov.Type.f32), ops.constant(np.array([3], np.int64)), False),
                      ops.constant(np.float32(255.0)))
    score = ops.reduce_mean(grey, ops.constant(np.array([1, 2], np.int64)), False)
    grey.output(0).get_tensor().set_names({"anomaly_map"})
    score.output(0).get_tensor().set_names({"pred_score"})
    metadata = ModelMetadata(family="anomaly", precision=precision, input_size=SIZE, class_names=["good", "defect"],
                             outputs=["pred_score", "anomaly_map"], thresholds={"image": threshold, "pixel": 0.5})
    return save_ir(ov.Model([score, grey], [image], "tiny_anomaly"), path, metadata, versioned=False)


def tiny_classifier_ir(path: Path, precision: str = "FP32") -> Path:
    """uint8 BGR (1, H, W, 3) -> conv -> global mean -> softmax over :data:`CLASSES`."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    image = ops.parameter([1, *SIZE, 3], ov.Type.u8, name="image")
    x = ops.transpose(ops.convert(image, ov.Type.f32), ops.constant(np.array([0, 3, 1, 2], np.int64)))
    x = ops.relu(ops.convolution(x, ops.constant(rng.normal(size=(8, 3, 3, 3)).astype(np.float32) / 64),
                                 [1, 1], [1, 1], [1, 1], [1, 1]))
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), False)
    probs = ops.softmax(ops.matmul(x, ops.constant(rng.normal(size=(8, 3)).astype(np.float32)), False, False), 1)
    probs.output(0).get_tensor().set_names({"probs"})
    metadata = ModelMetadata(family="classifier", precision=precision, input_size=SIZE, class_names=CLASSES,
                             outputs=["probs"])
    return save_ir(ov.Model([probs], [image], "tiny_cls"), path, metadata, versioned=False)


def make_bundle(out: Path, family: str = "anomaly", *, thresholds: dict | None = None, int8: bool = False,
                overwrite: bool = False, rules: Path = DEFAULT_RULES, files: dict[str, str] | None = None,
                **manifest: object) -> Bundle:
    """Assemble a bundle the way defect-fit does: every file into a staging folder, then write_bundle.

    ``files``: more files for the staging folder, ``{name: text}`` (a drift reference, say).
    """
    stage = staging_dir(out)
    for name, content in (files or {}).items():
        (stage / name).write_text(content, encoding="utf-8")
    build = tiny_anomaly_ir if family == "anomaly" else tiny_classifier_ir
    build(stage / "model" / "fp32.xml")
    models = {"FP32": "model/fp32.xml"}
    if int8:  # the same graph recorded as INT8: enough to choose between precisions
        build(stage / "model" / "int8.xml", "INT8")
        models["INT8"] = "model/int8.xml"
    shutil.copyfile(rules, stage / "rules.yaml")
    (stage / "card.md").write_text("# tiny model\n", encoding="utf-8")
    (stage / "card.json").write_text(json.dumps({"family": family, "threshold": thresholds}), encoding="utf-8")
    (stage / "split.json").write_text(json.dumps({"calibration": ["a.png"], "test": ["b.png"]}), encoding="utf-8")
    (stage / "predictions.csv").write_text("file,part,group,label,score,decision\nb.png,test,good,good,0.1,good\n",
                                           encoding="utf-8")
    labels = ["good", "defect"] if family == "anomaly" else CLASSES
    full = {"family": family, "models": models, "default_precision": "FP32",
            "thresholds": thresholds if thresholds is not None else ({"image": 0.3, "pixel": 0.5}
                                                                     if family == "anomaly" else {"ok": 0.9}),
            "ok_class": None if family == "anomaly" else "good", "labels": labels, "max_false_reject": 0.01,
            "rules": "rules.yaml", "card": "card.md", "card_json": "card.json", "split": "split.json",
            "predictions": "predictions.csv", "input_size": list(SIZE), "resize": "stretch", **manifest}
    return write_bundle(stage, full, out, overwrite=overwrite)


def grey_image(path: Path | None = None, level: int = GREY) -> np.ndarray:
    image = np.full((*SIZE, 3), level, np.uint8)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
    return image


def leftovers(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.name.startswith("."))


@pytest.fixture
def anomaly_bundle(tmp_path) -> Bundle:
    return make_bundle(tmp_path / "steel")


# --------------------------------------------------------------------------- writing and reading


def test_round_trip(anomaly_bundle, tmp_path):
    out = tmp_path / "steel"
    assert sorted(p.name for p in (out / "model").iterdir()) == ["fp32.bin", "fp32.meta.json", "fp32.xml"]
    assert leftovers(tmp_path) == []  # the staging folder became the bundle
    loaded = load_bundle(out)
    assert loaded.family == "anomaly" and loaded.name == "steel" and loaded.default_precision == "FP32"
    assert loaded.thresholds == {"image": 0.3, "pixel": 0.5} and loaded.max_false_reject == 0.01
    assert loaded.model_xml() == out / "model" / "fp32.xml" == loaded.model_xml("fp32")
    assert loaded.rules_path == out / "rules.yaml" and loaded.card() == {"family": "anomaly",
                                                                        "threshold": None}
    assert loaded.read_predictions() == [{"file": "b.png", "part": "test", "group": "good", "label": "good",
                                          "score": 0.1, "decision": "good"}]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == "defect-plugins-bundle" and manifest["format_version"] == 1
    assert set(manifest["files"]) == {"model/fp32.xml", "model/fp32.bin", "model/fp32.meta.json", "rules.yaml",
                                      "card.md", "card.json", "split.json", "predictions.csv"}
    assert manifest["created"].endswith("Z") and manifest["package_version"]
    assert is_bundle(out) and is_bundle(out / MANIFEST) and not is_bundle(out / "model" / "fp32.xml")
    assert load_bundle(out / MANIFEST).root == out
    with pytest.raises(BundleError, match=r"no INT8 model in this bundle \(it has FP32"):
        loaded.model_xml("INT8")


@pytest.mark.parametrize("name", ["model/fp32.bin", "rules.yaml"])
def test_a_changed_file_is_named_with_both_hashes(anomaly_bundle, tmp_path, name):
    path = tmp_path / "steel" / name
    expected = anomaly_bundle.files[name]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError) as error:
        load_bundle(tmp_path / "steel")
    message = str(error.value)
    assert str(path) in message and expected in message and bundle_module.sha256_file(path) in message
    load_bundle(tmp_path / "steel", verify=False)  # without the hashes it loads (the caller's choice)


def test_a_missing_file_is_named(anomaly_bundle, tmp_path):
    (tmp_path / "steel" / "card.md").unlink()
    with pytest.raises(BundleError, match=r"card\.md: listed in .*bundle\.json but missing"):
        load_bundle(tmp_path / "steel")


def test_an_unlisted_file_in_model_means_an_interrupted_replacement(anomaly_bundle, tmp_path):
    extra = tmp_path / "steel" / "model" / "int8.bin"
    extra.write_bytes(b"half of another model")
    with pytest.raises(BundleError, match=r"int8\.bin: in model/ but not listed .*interrupted half-way"):
        load_bundle(tmp_path / "steel")
    extra.unlink()
    (tmp_path / "steel" / "notes.txt").write_text("the line's own notes")  # outside model/: tolerated
    load_bundle(tmp_path / "steel")


@pytest.mark.parametrize("change, message", [
    ({"format_version": 2}, r"'format_version' 2 is newer than this defect-plugins reads \(1\): upgrade"),
    ({"format": "something-else"}, r"'format': expected 'defect-plugins-bundle'"),
    ({"family": "detector"}, r"'family': expected one of"),
    ({"default_precision": "INT8"}, r"'default_precision': expected one of the precisions in 'models' \(FP32\)"),
    ({"thresholds": {"ok": 0.5}}, r"'thresholds.ok': a bundle of the anomaly family has no such threshold"),
    ({"thresholds": {"image": "high"}}, r"'thresholds': expected an object of name -> number"),
    ({"input_size": [16]}, r"'input_size': expected \[height, width\]"),
    ({"rules": "../rules.yaml"}, r"'rules': expected a relative path inside the bundle"),
    ({"card": "other.md"}, r"'card' names other.md, which 'files' does not list"),
])
def test_a_manifest_that_is_not_the_format_is_refused_naming_the_key(anomaly_bundle, tmp_path, change, message):
    path = tmp_path / "steel" / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(BundleError, match=message) as error:
        load_bundle(tmp_path / "steel")
    assert str(path) in str(error.value)


def test_a_missing_key_is_named(anomaly_bundle, tmp_path):
    path = tmp_path / "steel" / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["input_size"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"missing keys \['input_size'\]"):
        load_bundle(tmp_path / "steel")


def test_overwrite_replaces_a_bundle_only_when_asked(anomaly_bundle, tmp_path):
    out = tmp_path / "steel"
    with pytest.raises(BundleError, match="holds a bundle already; pass overwrite"):
        make_bundle(out, thresholds={"image": 0.2})
    assert load_bundle(out).thresholds["image"] == 0.3 and leftovers(tmp_path) == []
    make_bundle(out, thresholds={"image": 0.2}, overwrite=True)
    assert load_bundle(out).thresholds == {"image": 0.2} and leftovers(tmp_path) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.png").write_bytes(b"x")
    with pytest.raises(BundleError, match="holds no bundle.json: not replacing it"):
        make_bundle(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "photo.png").read_bytes() == b"x"


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_interrupted_write_leaves_the_old_bundle_whole_and_no_staging_folder(anomaly_bundle, tmp_path,
                                                                                monkeypatch, overwrite):
    out = tmp_path / "steel"
    if not overwrite:
        shutil.rmtree(out)
    real_replace, calls = bundle_module.replace, []

    def interrupted(src, dst, **kwargs):
        if Path(dst) == out and not calls:  # the switch itself, once (Ctrl-C)
            calls.append(src)
            raise KeyboardInterrupt
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(bundle_module, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_bundle(out, thresholds={"image": 0.2}, overwrite=overwrite)
    assert calls and leftovers(tmp_path) == []
    if overwrite:
        assert load_bundle(out).thresholds["image"] == 0.3  # the old one, whole
    else:
        assert not out.exists()


def test_staging_must_be_next_to_the_bundle(tmp_path):
    stage = staging_dir(tmp_path / "a" / "steel")
    with pytest.raises(BundleError, match="must be next to"):
        write_bundle(stage, {}, tmp_path / "b" / "steel")
    assert not stage.exists()  # consumed


def test_links_are_refused_in_a_bundle(tmp_path):
    stage = staging_dir(tmp_path / "steel")
    (stage / "real.txt").write_text("x")
    (stage / "link.txt").symlink_to("real.txt")
    with pytest.raises(BundleError, match="plain files only, found a link"):
        write_bundle(stage, {}, tmp_path / "steel")
    assert leftovers(tmp_path) == [] and not (tmp_path / "steel").exists()


def test_a_killed_run_s_staging_folder_is_removed_by_the_next(tmp_path):
    killed = staging_dir(tmp_path / "steel")
    (killed / "half.bin").write_bytes(b"x")
    make_bundle(tmp_path / "steel")
    assert not killed.exists() and leftovers(tmp_path) == []


def test_a_bundle_set_aside_by_a_killed_overwrite_is_put_back(anomaly_bundle, tmp_path):
    out = tmp_path / "steel"
    aside = temp_sibling(out, directory=True)  # killed between its two renames: the old bundle aside, no new one
    os.replace(out, aside)
    half = staging_dir(out)
    assert load_bundle(out).thresholds["image"] == 0.3 and leftovers(tmp_path) == [half.name]


# --------------------------------------------------------------------------- archives


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_archive_round_trip(anomaly_bundle, tmp_path, suffix):
    archive = pack(tmp_path / "steel", tmp_path / f"steel-v1{suffix}")
    cache = tmp_path / "cache"
    assert is_bundle(archive)
    loaded = load_bundle(archive, cache_dir=cache)
    assert loaded.name == "steel-v1" and loaded.root.parent == cache and loaded.thresholds["image"] == 0.3
    assert loaded.files == anomaly_bundle.files
    assert load_bundle(archive, cache_dir=cache).root == loaded.root and len(list(cache.iterdir())) == 1


def _archive(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


@pytest.mark.parametrize("member", ["../x", "/tmp/x", "link"])
def test_a_malicious_archive_is_refused(tmp_path, member):
    info = tarfile.TarInfo(member)
    if member == "link":
        info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
    else:
        info.size = 1
    archive = _archive(tmp_path / "evil.tar", [tarfile.TarInfo(MANIFEST), info])
    with pytest.raises(BundleError, match=f"member '{member}'"):
        load_bundle(archive, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "x").exists() and not any((tmp_path / "cache").iterdir())


# --------------------------------------------------------------------------- settings and the inferencer


def test_bundle_settings_fill_only_what_the_caller_left_unset(tmp_path):
    anomaly = make_bundle(tmp_path / "ad")
    settings = bundle_settings(anomaly, PostSettings())
    assert (settings.image_threshold, settings.pixel_threshold) == (0.3, 0.5)
    assert settings.rules.source == str(tmp_path / "ad" / "rules.yaml")
    mine = load_rules(DEFAULT_RULES)
    kept = bundle_settings(anomaly, PostSettings(image_threshold=0.7, rules=mine))
    assert (kept.image_threshold, kept.pixel_threshold) == (0.7, 0.5) and kept.rules is mine
    classifier = make_bundle(tmp_path / "cls", "classifier")
    settings = bundle_settings(classifier, PostSettings())
    assert (settings.ok_class, settings.ok_threshold) == ("good", 0.9)


def test_the_inferencer_judges_with_the_bundle_s_threshold(tmp_path):
    bundle = make_bundle(tmp_path / "ad", thresholds={"image": 0.3, "pixel": 0.5})
    image = grey_image()
    bare = DefectInferencer(bundle.model_xml())
    assert bare.bundle is None and bare.predict(image).decision == "good"  # 0.392 < the IR's own 0.5
    fitted = DefectInferencer(tmp_path / "ad")
    result = fitted.predict(image)
    assert fitted.bundle.name == "ad" and fitted.path == bundle.model_xml()
    assert result.decision == "defect" and result.image_threshold == pytest.approx(0.3)
    assert result.score == pytest.approx(GREY / 255, abs=1e-4)
    assert DefectInferencer(tmp_path / "ad", image_threshold=0.45).predict(image).decision == "good"  # caller wins
    assert "bundle='ad'" in repr(fitted)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no bundle.json"):
        DefectInferencer(tmp_path / "empty")


def test_weights_choose_a_bundle_s_model_and_its_thresholds(tmp_path):
    make_bundle(tmp_path / "ad", int8=True, default_precision="INT8",
                thresholds={"image": 0.45}, thresholds_by_precision={"INT8": {"image": 0.45}, "FP32": {"image": 0.3}})
    default = DefectInferencer(tmp_path / "ad")
    assert default.metadata.precision == "INT8" and default.settings.image_threshold == 0.45
    fp32 = DefectInferencer(tmp_path / "ad", weights="FP32")
    assert fp32.metadata.precision == "FP32" and fp32.settings.image_threshold == 0.3
    assert fp32.predict(grey_image()).decision == "defect"
    bare = tmp_path / "ad" / "model" / "fp32.xml"
    assert DefectInferencer(bare, weights="fp32").bundle is None
    with pytest.raises(ValueError, match="an IR with FP32 weights, not INT8"):
        DefectInferencer(bare, weights="INT8")


def test_runtime_only_import_and_load_with_torch_blocked(anomaly_bundle, tmp_path):
    """A fresh interpreter where torch and the toolkits cannot be imported loads and runs a bundle."""
    code = f"""
import importlib.abc, json, sys
FORBIDDEN = {sorted(FORBIDDEN)!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"{{name}} is blocked: the runtime must not import it")
sys.meta_path.insert(0, Block())
import defect_plugins.deploy.bundle
from defect_plugins.deploy.inferencer import DefectInferencer
import numpy as np
result = DefectInferencer(sys.argv[1]).predict(np.full((16, 16, 3), {GREY}, np.uint8))
print(json.dumps({{"decision": result.decision, "loaded": sorted(set(m.split(".")[0] for m in sys.modules)
                                                                 & set(FORBIDDEN))}}))
"""
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "steel")], capture_output=True, text=True,
                          timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"decision": "defect", "loaded": []}


# --------------------------------------------------------------------------- the station


def test_the_station_loads_a_bundle_with_its_threshold_and_rules(tmp_path):
    from defect_plugins.station.models import load_models, station_rules

    make_bundle(tmp_path / "ad")
    bare = tiny_classifier_ir(tmp_path / "irs" / "cls.xml")
    models = load_models([bare, tmp_path / "ad"], precision="f32", min_area=4)
    assert [m.name for m in models] == ["cls", "ad"]
    assert models[0].describe()["bundle"] is None and "bundle" not in models[0].record()
    info = models[1].describe()["bundle"]
    assert info["name"] == "ad" and info["thresholds"] == {"image": 0.3, "pixel": 0.5} and info["created"]
    assert models[1].record()["bundle"]["name"] == "ad"
    result, _ = models[1].predict(grey_image(), "grey.png")
    assert result.decision == "defect" and result.image_threshold == pytest.approx(0.3)

    assert station_rules(None, [bare, tmp_path / "ad"])[0] == tmp_path / "ad" / "rules.yaml"
    assert station_rules(DEFAULT_RULES, [tmp_path / "ad"]) == (DEFAULT_RULES, "--rules")
    path, origin = station_rules(None, [bare])
    assert path is None and "packaged default" in origin
    assert default_rules().source == str(DEFAULT_RULES)
