"""Inference over folders, lists and videos: corrupt files are skipped and counted; regions are measured.

Also what makes ``defect-infer``'s results trustworthy: the exit status says when inputs failed,
``--out`` is new or empty (or ``--overwrite``), the outputs of one run are switched in together
(a kill at any rename leaves the earlier or the new results whole), every path that gives no
image is counted.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.export import export_model, load_model
from defect_plugins.deploy.families import PostSettings, get_family
from defect_plugins.deploy.infer import main, run_inference
from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.grading import parse_rules
from defect_plugins.imaging.quantify import quantify_mask


@pytest.fixture(scope="module")
def classifier_ir(tiny_classifier, tmp_path_factory):
    loaded = load_model("classifier", config=tiny_classifier.config, checkpoint=tiny_classifier.checkpoint)
    xml, _ = export_model("classifier", tmp_path_factory.mktemp("cls_ir") / "cls.xml", loaded=loaded)
    return xml


def test_folder_with_a_corrupt_file_finishes_and_reports_it(classifier_ir, tiny_classifier, tmp_path, capsys):
    images = tmp_path / "images"
    shutil.copytree(tiny_classifier.data / "crazing", images)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = len(list(images.glob("*.png"))) - 1
    out = tmp_path / "out"
    assert main([str(classifier_ir), str(images), str(tmp_path / "missing.jpg"), "--out", str(out), "--quiet"]) == 1
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["inputs"] == good + 2 and summary["processed"] == good and summary["failed"] == 2
    assert summary["inference_precision_hint"] == "f32" and summary["weights"] == "FP32"
    failed = {f["source"].split("/")[-1] for f in summary["failures"]}
    assert failed == {"broken.png", "missing.jpg"}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sum(row["status"] == "error" for row in rows) == 2
    ok = [row for row in rows if row["status"] == "ok"]
    assert all(row["decision"] in summary["class_names"] and 0.0 <= float(row["confidence"]) <= 1.0 for row in ok)
    assert len(list((out / "overlays").glob("*.png"))) == good
    err = capsys.readouterr().err
    assert "skipped" in err and f"defect-infer: 2 of {good + 2} inputs failed" in err


def _copy_images(tiny_classifier, folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for path in sorted(tiny_classifier.data.rglob("*.png"), key=lambda p: p.name)[:count]:
        shutil.copy(path, folder / path.name)
    return folder


def _results(out: Path) -> list[str]:
    """The sources of the run in ``out``, after checking that its outputs all describe that one run."""
    data = json.loads((out / "results.json").read_text())
    rows = list(csv.DictReader((out / "results.csv").open()))
    sources = [row["source"] for row in rows]
    assert sources == [result["source"] for result in data["results"]] and data["summary"]["inputs"] == len(rows)
    region_rows = list(csv.DictReader((out / "regions.csv").open()))
    assert len(region_rows) == sum(len(result.get("regions", [])) for result in data["results"])
    assert {row["source"] for row in region_rows} <= set(sources)
    overlays = sorted(path.name for path in (out / "overlays").iterdir())
    assert overlays == sorted(Path(result["overlay"]).name for result in data["results"] if result.get("overlay"))
    assert sorted(os.listdir(out)) == ["overlays", "regions.csv", "results.csv", "results.json"]
    return [Path(source).name for source in sources]


def _temporary_leftovers(folder: Path) -> list[str]:
    return sorted(str(path) for path in folder.rglob("*") if ".tmp-" in path.name)


def test_a_cut_jpeg_is_refused_by_defect_infer_and_the_inferencer(classifier_ir, tiny_classifier, tmp_path, capsys):
    """A JPEG cut in half (with and without its end marker put back) is refused, not graded with a grey bottom."""
    from defect_plugins.deploy import DefectInferencer

    image = cv2.imread(str(sorted((tiny_classifier.data / "crazing").glob("*.png"))[0]))
    image = cv2.resize(image, (256, 256))
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    images = tmp_path / "images"
    images.mkdir()
    (images / "whole.jpg").write_bytes(jpeg)
    (images / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (images / "cut_marked.jpg").write_bytes(jpeg[: len(jpeg) // 2] + b"\xff\xd9")
    assert cv2.imread(str(images / "cut_marked.jpg")) is not None  # what OpenCV alone would have graded
    out = tmp_path / "out"
    assert main([str(classifier_ir), str(images), "--out", str(out), "--quiet"]) == 1
    assert "2 of 3 inputs failed" in capsys.readouterr().err
    rows = {Path(r["source"]).name: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert rows["whole.jpg"]["status"] == "ok"
    for name in ("cut.jpg", "cut_marked.jpg"):
        assert rows[name]["status"] == "error" and rows[name]["error"].startswith(str(images / name)), rows[name]
    inferencer = DefectInferencer(classifier_ir)
    result = inferencer.predict(images / "cut_marked.jpg")
    assert not result.ok and "JPEG" in result.error


def test_exit_status_is_1_when_any_input_failed(classifier_ir, tiny_classifier, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.png"):
        (bad / name).write_bytes(b"not an image")
    assert main([str(classifier_ir), str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert "defect-infer: 2 of 2 inputs failed" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["summary"]["processed"] == 0
    good = _copy_images(tiny_classifier, tmp_path / "good", 2)
    assert main([str(classifier_ir), str(good), "--out", str(tmp_path / "out2"), "--quiet"]) == 0
    assert "failed" not in capsys.readouterr().err


def test_out_must_be_new_or_empty_unless_overwrite(classifier_ir, tiny_classifier, tmp_path, capsys):
    three = _copy_images(tiny_classifier, tmp_path / "three", 3)
    one = _copy_images(tiny_classifier, tmp_path / "one", 1)
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    assert main([str(classifier_ir), str(three), "--out", str(out), "--quiet"]) == 0
    assert len(_results(out)) == 3
    assert main([str(classifier_ir), str(one), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"defect-infer: error: --out {out} is not empty" in err and "--overwrite" in err
    assert len(_results(out)) == 3  # untouched
    assert main([str(classifier_ir), str(one), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert len(_results(out)) == 1  # no stale overlays or rows of the earlier run
    (out / "notes.txt").write_text("mine")
    assert main([str(classifier_ir), str(one), "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine" and (out / "results.json").is_file()
    assert _temporary_leftovers(tmp_path) == []


def test_out_naming_a_file_is_a_one_line_error(classifier_ir, tiny_classifier, tmp_path, capsys):
    images = _copy_images(tiny_classifier, tmp_path / "images", 1)
    target = tmp_path / "results.csv"
    target.write_text("keep me")
    assert main([str(classifier_ir), str(images), "--out", str(target), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"defect-infer: error: --out {target} is a file, expected a folder\n"
    assert captured.out == "" and target.read_text() == "keep me"


def test_every_path_that_gives_no_image_is_counted(classifier_ir, tiny_classifier, tmp_path, capsys):
    images = _copy_images(tiny_classifier, tmp_path / "images", 2)
    (images / "gone.png").symlink_to(tmp_path / "missing.png")  # a broken link: was skipped silently
    os.mkfifo(images / "pipe.png")  # not a regular file
    (images / "notes.txt").write_text("not an input")
    (tmp_path / "elsewhere").mkdir()
    (images / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    assert main([str(classifier_ir), str(images), str(empty), "--out", str(out), "--quiet"]) == 1
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["inputs"] == 5 and summary["processed"] == 2 and summary["failed"] == 3
    reasons = {Path(f["source"]).name: f["error"] for f in summary["failures"]}
    assert "broken symbolic link" in reasons["gone.png"] and "missing.png" in reasons["gone.png"]
    assert "not a regular file" in reasons["pipe.png"] and "no image files" in reasons["empty"]
    assert summary["ignored"] == {"files without an image suffix": 1, "links to folders (not followed)": 1}
    captured = capsys.readouterr()
    assert "defect-infer: 3 of 5 inputs failed" in captured.err and "ignored 1 files without" in captured.out
    assert len(_results(out)) == 5


class _KillAtRename:
    """``os.replace`` that raises ``KeyboardInterrupt`` at call ``at``, before or after renaming; counts calls."""

    def __init__(self, at: int | None = None, after: bool = False) -> None:
        self.at, self.after, self.calls, self.real = at, after, 0, os.replace

    def __call__(self, src, dst, **kwargs):
        self.calls += 1
        if self.calls == self.at and not self.after:
            raise KeyboardInterrupt
        self.real(src, dst, **kwargs)
        if self.calls == self.at:
            raise KeyboardInterrupt


def test_a_kill_at_any_rename_leaves_the_earlier_or_the_new_results_whole(classifier_ir, tiny_classifier, tmp_path,
                                                                          monkeypatch):
    old = _copy_images(tiny_classifier, tmp_path / "old", 1)
    new = _copy_images(tiny_classifier, tmp_path / "new", 2)
    run_inference(classifier_ir, [old], tmp_path / "count", progress=False)
    counter = _KillAtRename()
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", counter)
        run_inference(classifier_ir, [new], tmp_path / "count", progress=False, overwrite=True)
    total = counter.calls  # one per overlay, the earlier results set aside, the switch
    assert total == 2 + 2 and len(_results(tmp_path / "count")) == 2
    for at in range(1, total + 1):
        for after in (False, True):
            out = tmp_path / f"out{at}{after}"
            run_inference(classifier_ir, [old], out, progress=False)
            with monkeypatch.context() as patch:
                patch.setattr(os, "replace", _KillAtRename(at, after))
                with pytest.raises(KeyboardInterrupt):
                    run_inference(classifier_ir, [new], out, progress=False, overwrite=True)
            switched = at == total and after
            assert len(_results(out)) == (2 if switched else 1), (at, after)
            assert _temporary_leftovers(tmp_path) == [], (at, after)


def test_video_and_list_sources(classifier_ir, tiny_classifier, tmp_path):
    frames = [cv2.imread(str(p)) for p in sorted((tiny_classifier.data / "patches").glob("*.png"))]
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    for frame in frames * 2:
        writer.write(frame)
    writer.release()
    listing = tmp_path / "list.txt"
    listing.write_text("# inspection list\n"
                       + "\n".join(str(p) for p in (tiny_classifier.data / "inclusion").glob("*.png")))
    summary = run_inference(classifier_ir, [video, listing], tmp_path / "out", progress=False, max_frames=3,
                            save_images=False)
    sources = [r["source"] for r in json.loads((tmp_path / "out" / "results.json").read_text())["results"]]
    assert [s for s in sources if "#" in s] == [f"{video}#{i:06d}" for i in range(3)]
    assert summary["processed"] == 3 + 2 and summary["failed"] == 0


def test_segmentor_inference_writes_regions(tiny_segmentor, tmp_path):
    loaded = load_model("segmentor", config=tiny_segmentor.config, checkpoint=tiny_segmentor.checkpoint,
                        input_size=tiny_segmentor.input_size)
    xml, _ = export_model("segmentor", tmp_path / "seg.xml", loaded=loaded)
    summary = run_inference(xml, [tiny_segmentor.data / "img_dir" / "val"], tmp_path / "out", progress=False)
    assert summary["processed"] == 2 and summary["family"] == "segmentor"
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    region_rows = list(csv.DictReader((tmp_path / "out" / "regions.csv").open()))
    assert len(region_rows) == sum(len(r["regions"]) for r in results)
    for row in region_rows:
        assert row["class"] in ("fold_mark", "edge_crack") and float(row["area"]) >= 4
        assert "grade" not in row  # regions are measured; the image is graded (results.csv)
    for row in csv.DictReader((tmp_path / "out" / "results.csv").open()):
        assert row["grade"] in ("ok", "minor", "major", "reject")
        assert row["grade"] == "ok" or row["is_defect"] == "True"


def test_anomaly_inference_draws_heatmaps(anomaly_export, tiny_anomaly, tmp_path):
    _, xml, _ = anomaly_export
    summary = run_inference(xml, [tiny_anomaly.data / "test"], tmp_path / "out", progress=False)
    assert summary["processed"] == 4 and summary["inference_precision_hint"] == "f32"
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    for result in results:
        assert result["decision"] == ("defect" if result["score"] >= 0.5 else "good")
        assert result["is_defect"] is (result["score"] >= 0.5) and result["grade"] in ("ok", "minor", "major", "reject")
        if not result["is_defect"]:
            assert result["grade"] == "ok" and result["regions"] == []
        overlay = cv2.imread(str(tmp_path / "out" / result["overlay"]))
        assert overlay.shape == (32, 32, 3)


def _probs_from_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels].transpose(2, 0, 1)[None]


def test_segmentation_regions_match_hand_drawn_masks():
    """A square of class 1 and a ring of class 2: the results carry quantify_mask's numbers, the rules' grade."""
    labels = np.zeros((64, 96), np.int64)
    labels[10:30, 10:30] = 1  # 20 x 20 square
    labels[20:60, 50:90] = 2
    labels[30:50, 60:80] = 0  # ring with a 20 x 20 hole
    metadata = ModelMetadata(family="segmentor", precision="FP32", input_size=(64, 96),
                             class_names=["background", "fold_mark", "edge_crack"], outputs=["seg_probs"])
    steps = [{"grade": "minor", "when": {"regions": {"min": 1}}, "why": "found"},
             {"grade": "major", "when": {"area_ratio": {"min": 0.1}}, "why": "10 % or more"},
             {"grade": "reject", "when": {"area_ratio": {"min": 0.3}}, "why": "30 % or more"}]
    rules = parse_rules({"grades": ["ok", "minor", "major", "reject"], "families": {"segmentor": {"default": steps}}})
    found = get_family("segmentor").postprocess(np.zeros((64, 96, 3), np.uint8), [_probs_from_labels(labels, 3)],
                                                metadata, PostSettings(rules=rules), "hand-drawn")
    result, overlay = found.to_dict(), found.overlay()
    # each class on its own regions: fold_mark 400/6144 = 0.065 (minor), edge_crack 1200/6144 = 0.195 (major)
    assert found.grade == "major" and found.grade_reasons == ["edge_crack: 10 % or more"]
    assert found.is_defect and found.label == "edge_crack" and found.class_map.shape == (64, 96)
    by_class = {region["class"]: region for region in result["regions"]}
    square, ring = by_class["fold_mark"], by_class["edge_crack"]
    assert square["area"] == 400 and square["perimeter"] == pytest.approx(76.0)
    assert ring["area"] == 40 * 40 - 20 * 20
    expected = quantify_mask(labels == 2).regions[0]
    assert ring["perimeter"] == pytest.approx(expected.perimeter) and ring["k"] == pytest.approx(expected.k)
    assert "grade" not in square and "grade" not in ring  # regions are measured; the image is graded
    assert result["grade"] == "major" and result["decision"] == "defect" and result["is_defect"] is True
    assert "worst_grade" not in result
    assert overlay.shape == (64, 96, 3) and overlay.any()


def test_anomaly_map_regions_use_the_pixel_threshold():
    """Two blobs above the pixel threshold become two regions; the image threshold decides."""
    heat = np.zeros((48, 48), np.float32)
    heat[5:15, 5:15] = 0.9
    heat[30:40, 28:44] = 0.7
    heat[20:22, 20:22] = 0.4  # below the 0.5 pixel threshold
    metadata = ModelMetadata(family="anomaly", precision="FP32", input_size=(48, 48), class_names=["good", "defect"],
                             outputs=["pred_score", "pred_label", "anomaly_map", "pred_mask"],
                             thresholds={"image": 0.5, "pixel": 0.5})
    family = get_family("anomaly")
    outputs = [np.array([[0.8]]), np.array([[True]]), heat[None, None], heat[None, None] > 0.5]
    found = family.postprocess(np.zeros((48, 48, 3), np.uint8), outputs, metadata, PostSettings(), "blobs")
    result = found.to_dict()
    assert result["decision"] == "defect" and result["num_regions"] == 2 and found.score == pytest.approx(0.8)
    assert sorted(r["area"] for r in result["regions"]) == [100, 160]
    # the packaged rules: 260 / 2304 = 11 % of the image is anomalous, 5 % or more rejects
    assert result["is_defect"] is True and result["grade"] == "reject"
    assert found.overlay().shape == (48, 48, 3)
    outputs[0] = np.array([[0.3]])
    result = family.postprocess(np.zeros((48, 48, 3), np.uint8), outputs, metadata, PostSettings(), "blobs").to_dict()
    assert result["decision"] == "good" and result["regions"] == []
    assert result["is_defect"] is False and result["grade"] == "ok"  # under the image threshold: the first grade


def test_pad_square_geometry_round_trip():
    """ARCD strips are padded to a square and resized; predictions map back onto the strip."""
    from defect_plugins.imaging.geometry import from_model_grid, to_input, to_model_grid

    strip = np.zeros((32, 64, 3), np.uint8)
    strip[8:16, 40:56] = 255
    batch = to_input(strip, (32, 32), "pad_square")
    assert batch.shape == (1, 32, 32, 3) and batch[0, 16:].max() == 0  # bottom half is padding
    labels = (batch[0, ..., 0] > 127).astype(np.uint8)
    back = from_model_grid(labels, strip.shape[:2], "pad_square")
    assert back.shape == (32, 64) and back[8:16, 40:56].all() and back.sum() == 8 * 16
    ground_truth = to_model_grid(np.ones((32, 64), np.uint8), (32, 32), "pad_square")
    assert (ground_truth[16:] == 255).all() and (ground_truth[:16] == 1).all()  # padding is ignored
