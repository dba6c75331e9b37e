"""Exported models are checked against the hashes recorded at export, and replaced in one rename.

Tiny IRs are built with OpenVINO's opset (no torch), each with its own weights (``seed``) and its
seed in the metadata, so that a loaded model shows whether metadata and weights belong together.
A kill is simulated by ``os.replace`` raising ``KeyboardInterrupt`` at its k-th call, before or
after renaming, for every k of an export that overwrites an earlier one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from defect_plugins.deploy import DefectInferencer
from defect_plugins.deploy.metadata import ModelMetadata, sha256_file, sidecar_path
from defect_plugins.deploy.runtime import (ModelIntegrityError, compile_model, read_metadata, read_model, save_ir,
                                           verify_ir, versions_dir)

SIZE = (16, 16)
IMAGE = np.random.default_rng(123).integers(0, 256, size=(1, *SIZE, 3), dtype=np.uint8)


def tiny_model(seed: int):
    """uint8 BGR (1, H, W, 3) -> conv -> mean -> matmul -> softmax over 3 classes; weights drawn from ``seed``."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(seed)
    image = ops.parameter([1, *SIZE, 3], ov.Type.u8, name="image")
    x = ops.transpose(ops.convert(image, ov.Type.f32), ops.constant(np.array([0, 3, 1, 2], np.int64)))
    x = ops.relu(ops.convolution(x, ops.constant(rng.normal(size=(8, 3, 3, 3)).astype(np.float32) / 64),
                                 [1, 1], [1, 1], [1, 1], [1, 1]))
    x = ops.reduce_mean(x, ops.constant(np.array([2, 3], np.int64)), False)
    x = ops.matmul(x, ops.constant(rng.normal(size=(8, 3)).astype(np.float32)), False, False)
    return ov.Model([ops.softmax(x, 1)], [image], f"tiny{seed}")


def tiny_metadata(seed: int) -> ModelMetadata:
    return ModelMetadata(family="classifier", precision="FP32", input_size=SIZE, class_names=["a", "b", "c"],
                         outputs=["probs"], source={"seed": seed})


EXPECTED = {seed: compile_model(tiny_model(seed), "f32").create_infer_request().infer({0: IMAGE})[0]
            for seed in (1, 2, 3)}


def export(xml: Path, seed: int, **kwargs) -> Path:
    return save_ir(tiny_model(seed), xml, tiny_metadata(seed), **kwargs)


def export_before_hashes(xml: Path, seed: int) -> Path:
    """An export as this package wrote it before hashes and versions: plain files, metadata without hashes."""
    import openvino as ov

    model = tiny_model(seed)
    model.set_rt_info(tiny_metadata(seed).to_json(), ["defect_plugins", "metadata"])
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    sidecar_path(xml).write_text(tiny_metadata(seed).to_json() + "\n")
    return xml


def loaded_seed(xml: Path) -> int:
    """Which export ``xml`` is, after checking that its metadata (rt_info and sidecar) and weights all say the same."""
    inferencer = DefectInferencer(xml)
    seed = inferencer.metadata.source["seed"]
    if sidecar_path(xml).exists():
        assert json.loads(sidecar_path(xml).read_text())["source"]["seed"] == seed
    probs = inferencer.compiled.create_infer_request().infer({0: IMAGE})[0]
    np.testing.assert_allclose(probs, EXPECTED[seed], rtol=1e-5, atol=1e-6)
    return seed


def versions(xml: Path) -> list[str]:
    """The version folders of a versioned export (``current`` is a link to one of them)."""
    store = versions_dir(xml)
    return sorted(p.name for p in store.iterdir() if p.name != "current") if store.is_dir() else []


def temporary_leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp-" in p.name)


class KillAtRename:
    """``os.replace`` raising ``KeyboardInterrupt`` at call ``at`` (1-based), before or after renaming; counts calls."""

    def __init__(self, at: int | None = None, after: bool = False) -> None:
        self.at, self.after, self.calls = at, after, 0
        self.real = os.replace

    def __call__(self, src, dst, **kwargs):
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise KeyboardInterrupt(f"killed before rename {self.calls}")
        self.real(src, dst, **kwargs)
        if self.calls == self.at:
            raise KeyboardInterrupt(f"killed after rename {self.calls}")


def renames_of(monkeypatch, action) -> int:
    counter = KillAtRename()
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counter)
        action()
    return counter.calls


# --------------------------------------------------------------------------- integrity


def test_hashes_are_recorded_in_rt_info_and_sidecar(tmp_path):
    xml = export(tmp_path / "exp" / "model.xml", 1)
    sidecar = json.loads(sidecar_path(xml).read_text())
    checked = verify_ir(xml)
    assert sidecar["integrity"] == checked and set(checked) == {"xml_sha256", "bin_sha256"}
    ov_model = read_model(xml)
    assert json.loads(ov_model.get_rt_info(["defect_plugins", "integrity"]).astype(str)) == {
        "bin_sha256": checked["bin_sha256"]}  # the .xml cannot hold its own hash: only the sidecar has it
    assert read_metadata(xml) == tiny_metadata(1)  # the integrity record is not part of the metadata


def test_a_zeroed_bin_is_refused_naming_the_file_and_both_hashes(tmp_path):
    xml = export(tmp_path / "exp" / "model.xml", 1)
    expected = verify_ir(xml)["bin_sha256"]
    weights = xml.with_suffix(".bin")
    weights.write_bytes(bytes(weights.stat().st_size))  # what the QA probe did: zeros over the weights
    found = sha256_file(weights)
    for load in (DefectInferencer, read_metadata, read_model, verify_ir):
        with pytest.raises(ModelIntegrityError) as error:
            load(xml)
        message = str(error.value)
        assert str(weights) in message and expected in message and found in message, message


def test_the_xml_and_bin_alone_still_check_the_weights(tmp_path):
    """Copied without the sidecar (cp follows the links): the .bin's hash in the rt_info still guards it."""
    xml = export(tmp_path / "exp" / "model.xml", 1)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(xml, copy / "model.xml")
    shutil.copy(xml.with_suffix(".bin"), copy / "model.bin")
    assert loaded_seed(copy / "model.xml") == 1
    data = bytearray((copy / "model.bin").read_bytes())
    data[-4:] = b"\0\0\0\0"
    (copy / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="recorded in the rt_info of model.xml"):
        DefectInferencer(copy / "model.xml")


def test_an_old_xml_beside_a_new_sidecar_is_refused(tmp_path):
    """The mixture the QA probe found after a killed in-place export: old .xml, new .meta.json."""
    old = export_before_hashes(tmp_path / "old" / "model.xml", 1)
    new = export(tmp_path / "new" / "model.xml", 2)
    shutil.copy(sidecar_path(new), sidecar_path(old))
    with pytest.raises(ModelIntegrityError, match=r"model\.xml does not match its export.*model\.meta\.json"):
        DefectInferencer(old)


def test_irs_without_hashes_load_unchecked(tmp_path):
    xml = export_before_hashes(tmp_path / "exp" / "model.xml", 1)
    assert verify_ir(xml) == {} and loaded_seed(xml) == 1


# --------------------------------------------------------------------------- atomic replacement


def test_an_export_is_three_links_into_one_version(tmp_path):
    import openvino as ov

    xml = export(tmp_path / "exp" / "model.xml", 1)
    export(xml, 2)
    for name in (xml, xml.with_suffix(".bin"), sidecar_path(xml)):
        assert name.is_symlink() and name.is_file()
    assert versions(xml) == [os.readlink(versions_dir(xml) / "current")]
    assert loaded_seed(xml) == 2
    assert ov.Core().read_model(str(xml)).get_rt_info(["defect_plugins", "metadata"])  # plain OpenVINO reads it too
    assert sorted(p.name for p in xml.parent.iterdir()) == ["model.bin", "model.meta.json", "model.versions",
                                                             "model.xml"]


@pytest.mark.parametrize("earlier", ["versioned", "before_hashes"])
def test_a_kill_at_any_rename_leaves_the_old_or_the_new_export_whole(tmp_path, monkeypatch, earlier):
    """Overwrite an earlier export (this layout, or plain files from before it) and kill at every rename."""
    write_old = export if earlier == "versioned" else export_before_hashes
    write_old(tmp_path / "count" / "model.xml", 1)
    total = renames_of(monkeypatch, lambda: export(tmp_path / "count" / "model.xml", 2))
    assert total >= 2
    seen = set()
    for at in range(1, total + 1):
        for after in (False, True):
            folder = tmp_path / f"{at}{'after' if after else 'before'}"
            xml = write_old(folder / "model.xml", 1)
            with monkeypatch.context() as patch:
                patch.setattr(os, "replace", KillAtRename(at, after))
                with pytest.raises(KeyboardInterrupt):
                    export(xml, 2)
            seed = loaded_seed(xml)
            seen.add(seed)
            if at < total or not after:  # the last rename is the switch: before it, the old model stands
                assert seed == 1, (at, after)
            else:
                assert seed == 2
            assert temporary_leftovers(folder) == [], (at, after)
            assert versions(xml) == ([os.readlink(versions_dir(xml) / "current")]
                                     if (versions_dir(xml) / "current").is_symlink() else []), (at, after)
            export(xml, 3)  # and the next export goes through
            assert loaded_seed(xml) == 3 and temporary_leftovers(folder) == []
    assert seen == {1, 2}


def test_without_links_a_mixture_is_refused_not_loaded(tmp_path, monkeypatch):
    """Plain files (no symbolic links: Windows, FAT): a kill between renames is detected on load."""
    export(tmp_path / "count" / "model.xml", 1, versioned=False)
    total = renames_of(monkeypatch, lambda: export(tmp_path / "count" / "model.xml", 2, versioned=False))
    assert total == 3 and not (tmp_path / "count" / "model.xml").is_symlink()
    outcomes = []
    for at in range(1, total + 1):
        for after in (False, True):
            folder = tmp_path / f"{at}{'after' if after else 'before'}"
            xml = export(folder / "model.xml", 1, versioned=False)
            with monkeypatch.context() as patch:
                patch.setattr(os, "replace", KillAtRename(at, after))
                with pytest.raises(KeyboardInterrupt):
                    export(xml, 2, versioned=False)
            try:
                outcomes.append(loaded_seed(xml))
            except ModelIntegrityError as error:
                assert "does not match its export" in str(error)
                outcomes.append("refused")
            assert temporary_leftovers(folder) == []
    assert outcomes[0] == 1 and outcomes[-1] == 2 and "refused" in outcomes


def test_leftovers_of_killed_exports_are_removed_by_the_next(tmp_path):
    xml = export(tmp_path / "exp" / "model.xml", 1)
    store = versions_dir(xml)
    (tmp_path / "exp" / ".model.xml.tmp-0123abcd").mkdir()  # an in-place export killed
    (store / ".version.tmp-0123abcd").mkdir()  # a version killed while being written
    stale = store / "20200101T000000-deadbeef"  # a version killed between its switch and its removal
    stale.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    recent = store / "20200101T000000-feedbeef"  # might be another export's, about to switch: kept
    recent.mkdir()
    export(xml, 2)
    assert temporary_leftovers(tmp_path) == [] and not stale.exists() and recent.exists()
    assert loaded_seed(xml) == 2


def test_a_reader_racing_a_switch_reads_the_new_export_whole(tmp_path, monkeypatch):
    """Links resolved, then a new export switches in and removes that version: the reader resolves again."""
    from defect_plugins.deploy import ir_files

    xml = export(tmp_path / "exp" / "model.xml", 1)
    real = ir_files._resolve_ir
    raced = []

    def resolve_then_switch(path):
        resolved = real(path)
        if not raced:
            raced.append(resolved)
            export(xml, 2)
        return resolved

    monkeypatch.setattr(ir_files, "_resolve_ir", resolve_then_switch)
    assert loaded_seed(xml) == 2 and not raced[0][0].exists()
