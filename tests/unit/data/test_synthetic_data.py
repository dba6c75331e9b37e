"""Tests for the synthetic steel data sets (defect_plugins.data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defect_plugins.data import (
    NEU_CLASSES,
    SEG_CLASSES,
    DataGenerationError,
    make_anomaly_dataset,
    make_classification_dataset,
    make_segmentation_dataset,
)
from defect_plugins.data import cli, layouts
from defect_plugins.data.steel import to_uint8

REPO = Path(__file__).resolve().parents[3]
DEFECTS = ("scratch", "pit", "patch")


def _read(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _gray(path: Path) -> np.ndarray:
    image = _read(path)
    return image[:, :, 0] if image.ndim == 3 else image


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- layouts


def test_anomaly_layout_counts_masks_and_meta(tmp_path: Path) -> None:
    out = make_anomaly_dataset(
        tmp_path / "mvtec", num_train=5, num_test_good=3, num_test_defect=4, image_size=48, seed=3
    )
    assert out == (tmp_path / "mvtec").absolute()
    assert _names(out) == ["ground_truth", "meta.json", "test", "train"]
    assert _names(out / "train") == ["good"]
    assert _names(out / "test") == sorted(("good", *DEFECTS))
    assert _names(out / "ground_truth") == sorted(DEFECTS)
    assert _names(out / "train" / "good") == [f"{i:03d}.png" for i in range(5)]
    assert len(_names(out / "test" / "good")) == 3
    for defect in DEFECTS:
        stems = [f"{i:03d}" for i in range(4)]
        assert _names(out / "test" / defect) == [f"{s}.png" for s in stems]
        assert _names(out / "ground_truth" / defect) == [f"{s}_mask.png" for s in stems]
        for stem in stems:
            image = _read(out / "test" / defect / f"{stem}.png")
            mask = _read(out / "ground_truth" / defect / f"{stem}_mask.png")
            assert image.shape == (48, 48, 3) and image.dtype == np.uint8
            assert (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 0] == image[:, :, 2]).all()
            assert mask.shape == (48, 48) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 255}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["generator"].endswith("make_anomaly_dataset") and meta["seed"] == 3 and meta["version"]
    assert meta["classes"] == ["good", *DEFECTS]
    assert meta["counts"] == {"train/good": 5, "test/good": 3, "test/scratch": 4, "test/pit": 4, "test/patch": 4}
    assert meta["arguments"]["image_size"] == 48


def test_anomaly_masks_cover_exactly_the_changed_pixels(tmp_path: Path) -> None:
    """Regenerate each defect image's defect-free twin: they differ exactly inside the mask."""
    out = make_anomaly_dataset(
        tmp_path / "mvtec", num_train=1, num_test_good=1, num_test_defect=5, image_size=64, seed=7
    )
    for defect in DEFECTS:
        for i in range(5):
            image = _gray(out / "test" / defect / f"{i:03d}.png").astype(int)
            mask = _read(out / "ground_truth" / defect / f"{i:03d}_mask.png") > 0
            clean = to_uint8(layouts._clean(layouts._rng(7, f"anomaly/test/{defect}", i), (64, 64))).astype(int)
            assert mask.sum() >= 3
            np.testing.assert_array_equal(image != clean, mask)
            assert np.abs(image - clean)[mask].mean() >= 3.0  # visible, not a rounding flicker


def test_subset_of_defect_types(tmp_path: Path) -> None:
    out = make_anomaly_dataset(tmp_path / "a", num_train=1, num_test_good=1, num_test_defect=1, defect_types=["pit"])
    assert _names(out / "test") == ["good", "pit"] and _names(out / "ground_truth") == ["pit"]


def test_classification_layout(tmp_path: Path) -> None:
    out = make_classification_dataset(tmp_path / "neu", per_class=3, image_size=40, seed=1)
    assert _names(out) == sorted([*NEU_CLASSES, "meta.json"])
    for name in NEU_CLASSES:
        files = _names(out / name)
        assert files == [f"{name}_{i:03d}.png" for i in range(3)]
        assert _read(out / name / files[0]).shape == (40, 40, 3)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"] == list(NEU_CLASSES) and meta["counts"] == {n: 3 for n in NEU_CLASSES}


def test_segmentation_layout_labels_and_regions(tmp_path: Path) -> None:
    out = make_segmentation_dataset(
        tmp_path / "seg", num_train=10, num_val=4, num_normal=3, image_size=(64, 128), seed=0
    )
    assert _names(out) == ["ann_dir", "img_dir", "meta.json", "normal_dir", "region_dir"]
    seen = np.zeros(len(SEG_CLASSES), bool)
    bed_frames = 0
    for split, n in (("train", 10), ("val", 4)):
        names = [f"{i:03d}.png" for i in range(n)]
        for top in ("img_dir", "ann_dir", "region_dir"):
            assert _names(out / top) == ["train", "val"]
            assert _names(out / top / split) == names
        for name in names:
            image = _read(out / "img_dir" / split / name)
            label = _read(out / "ann_dir" / split / name)
            region = _read(out / "region_dir" / split / name)
            assert image.shape == (64, 128, 3)
            assert label.shape == region.shape == (64, 128) and label.dtype == region.dtype == np.uint8
            assert set(np.unique(label)) <= {0, 1, 2}
            assert set(np.unique(region)) <= {0, 1}
            assert (label > 0).any(), f"{split}/{name} has no defect"
            assert not (label[region == 1]).any(), "defect labels must lie on the strip"
            seen[np.unique(label)] = True
            bed_frames += int(region.any())
            gray = image[:, :, 0].astype(float)
            if region.any() and (region == 0).any():
                assert gray[region == 0].mean() > gray[region == 1].mean() + 20  # bright strip, darker bed
    assert seen.all(), "both defect classes should appear in 14 images"
    assert 0 < bed_frames < 14, "the bed is visible in some frames and not in others"
    assert _names(out / "normal_dir") == ["000.png", "001.png", "002.png"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"] == list(SEG_CLASSES)
    assert meta["counts"] == {"train": 10, "val": 4, "normal": 3}
    assert meta["arguments"]["image_size"] == [64, 128]


def test_segmentation_without_normal_images(tmp_path: Path) -> None:
    out = make_segmentation_dataset(tmp_path / "seg", num_train=1, num_val=1, num_normal=0, image_size=(32, 48))
    assert _names(out / "normal_dir") == []
    assert _read(out / "img_dir" / "train" / "000.png").shape == (32, 48, 3)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (make_anomaly_dataset, {"num_train": 3, "num_test_good": 2, "num_test_defect": 2}),
        (make_classification_dataset, {"per_class": 2}),
        (make_segmentation_dataset, {"num_train": 3, "num_val": 2, "num_normal": 2}),
    ],
    ids=["anomaly", "cls", "seg"],
)
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, make, kwargs) -> None:
    first = _tree(make(tmp_path / "a", seed=5, **kwargs))
    second = _tree(make(tmp_path / "b", seed=5, **kwargs))
    other = _tree(make(tmp_path / "c", seed=6, **kwargs))
    assert first == second
    assert first.keys() == other.keys()
    images = [k for k in first if k.endswith(".png")]
    assert images and all(first[k] != other[k] for k in images if "ann_dir" not in k and "region_dir" not in k)


# --------------------------------------------------------------------------- looks like steel


def test_defect_free_images_look_like_rolled_steel(tmp_path: Path) -> None:
    out = make_anomaly_dataset(tmp_path / "a", num_train=12, num_test_good=1, num_test_defect=1, image_size=64, seed=2)
    means, stds = [], []
    for path in sorted((out / "train" / "good").glob("*.png")):
        gray = _gray(path).astype(np.float64)
        means.append(gray.mean())
        stds.append(gray.std())
        across = np.mean(np.diff(gray, axis=0) ** 2)  # rows change fast: across the rolling direction
        along = np.mean(np.diff(gray, axis=1) ** 2)
        assert across > 2.0 * along, f"{path.name}: grain not oriented ({across:.1f} vs {along:.1f})"
    assert all(80 <= m <= 180 for m in means), means
    assert all(5 <= s <= 30 for s in stds), stds
    assert np.ptp(means) > 3, "brightness should vary between images"


def test_classes_differ_in_a_simple_statistic(tmp_path: Path) -> None:
    """Not trivial, but not noise either: crude per-class statistics must differ."""
    out = make_classification_dataset(tmp_path / "neu", per_class=6, image_size=64, seed=0)

    def dark_fraction(name: str) -> float:
        values = []
        for path in (out / name).glob("*.png"):
            gray = _gray(path).astype(float)
            values.append(np.mean(gray < np.median(gray) - 25))
        return float(np.mean(values))

    # Pitted surfaces are full of dark spots; scratches are a few thin lines.
    assert dark_fraction("pitted_surface") > dark_fraction("scratches")


# --------------------------------------------------------------------------- bad input


BAD_CASES = [
    (make_anomaly_dataset, {"num_train": 0}, "num_train"),
    (make_anomaly_dataset, {"num_test_good": -1}, "num_test_good"),
    (make_anomaly_dataset, {"num_test_defect": 0}, "num_test_defect"),
    (make_anomaly_dataset, {"num_train": 2.5}, "num_train"),
    (make_anomaly_dataset, {"image_size": 16}, "image_size"),
    (make_anomaly_dataset, {"image_size": "64"}, "image_size"),
    (make_anomaly_dataset, {"defect_types": ("scratch", "dent")}, "dent"),
    (make_anomaly_dataset, {"defect_types": ()}, "defect_types"),
    (make_anomaly_dataset, {"seed": -1}, "seed"),
    (make_classification_dataset, {"per_class": 0}, "per_class"),
    (make_classification_dataset, {"image_size": 31}, "image_size"),
    (make_segmentation_dataset, {"num_val": 0}, "num_val"),
    (make_segmentation_dataset, {"num_normal": -1}, "num_normal"),
    (make_segmentation_dataset, {"image_size": (64,)}, "image_size"),
    (make_segmentation_dataset, {"image_size": (64, 16)}, "image_size"),
]


@pytest.mark.parametrize("make, kwargs, word", BAD_CASES, ids=[f"{m.__name__}-{w}" for m, _, w in BAD_CASES])
def test_bad_arguments_raise_and_leave_nothing(tmp_path: Path, make, kwargs, word) -> None:
    with pytest.raises(DataGenerationError, match=word) as info:
        make(tmp_path / "out", **kwargs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_non_empty_output_folder_is_refused_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataGenerationError, match="out_dir.*not empty"):
        make_classification_dataset(out, per_class=1)
    assert _names(tmp_path) == ["out"] and _names(out) == ["keep.txt"]


def test_output_path_that_is_a_file_or_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(DataGenerationError, match="out_dir.*file.txt"):
        make_anomaly_dataset(blocker, num_train=1)
    with pytest.raises(DataGenerationError, match="out_dir.*file.txt"):
        make_anomaly_dataset(blocker / "sub" / "out", num_train=1)
    assert _names(tmp_path) == ["file.txt"]


def test_existing_empty_folder_is_filled(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    out = make_classification_dataset(tmp_path / "out", per_class=1, image_size=32)
    assert len(_names(out)) == 7
    assert _names(tmp_path) == ["out"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("boom")])
def test_failure_mid_way_leaves_no_partial_data(tmp_path: Path, monkeypatch, error) -> None:
    calls = {"n": 0}
    real = layouts._save_l

    def flaky(path: Path, array: np.ndarray) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise error
        real(path, array)

    monkeypatch.setattr(layouts, "_save_l", flaky)
    expected = DataGenerationError if isinstance(error, OSError) else RuntimeError
    with pytest.raises(expected) as info:
        make_segmentation_dataset(tmp_path / "new" / "deeper" / "seg", num_train=2, num_val=1)
    assert calls["n"] == 3
    if expected is DataGenerationError:
        assert "seg" in str(info.value) and "No space left" in str(info.value)
    assert list(tmp_path.iterdir()) == [], "temporary folder and created parents must be removed"


# --------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.Popen[str]:
    """Start ``python -m defect_plugins.data.cli``; the package import dominates the time, so run calls concurrently."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(
        [sys.executable, "-m", "defect_plugins.data.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_cli_subprocess_error_and_success(tmp_path: Path) -> None:
    bad_proc = _cli("anomaly", str(tmp_path / "bad"), "--count", "0")
    good_proc = _cli("cls", str(tmp_path / "cls"), "--count", "2", "--size", "32", "--seed", "4")
    bad_out, bad_err = bad_proc.communicate(timeout=180)
    good_out, good_err = good_proc.communicate(timeout=180)

    assert bad_proc.returncode == 2
    assert bad_err.startswith("defect-synth: error: num_train") and bad_err.count("\n") == 1
    assert "Traceback" not in bad_err and bad_out == "" and not (tmp_path / "bad").exists()

    assert good_proc.returncode == 0, good_err
    assert good_out.count("\n") == 1 and str(tmp_path / "cls") in good_out
    assert all(len(_names(tmp_path / "cls" / name)) == 2 for name in NEU_CLASSES)
    assert json.loads((tmp_path / "cls" / "meta.json").read_text())["seed"] == 4


def test_cli_in_process_seg_and_anomaly_options(tmp_path: Path, capsys) -> None:
    seg = ["seg", str(tmp_path / "s"), "--count", "2", "--num-val", "1", "--num-normal", "0",
           "--height", "32", "--width", "96"]
    assert cli.main(seg) == 0
    assert _read(tmp_path / "s" / "img_dir" / "train" / "001.png").shape == (32, 96, 3)
    anomaly = ["anomaly", str(tmp_path / "a"), "--num-train", "2", "--num-test-defect", "1",
               "--defect-types", "scratch,patch"]
    assert cli.main(anomaly) == 0
    assert _names(tmp_path / "a" / "ground_truth") == ["patch", "scratch"]
    assert cli.main(["anomaly", str(tmp_path / "x"), "--defect-types", "dent"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "defect-synth: error: defect_types: unknown defect type 'dent'; expected one of ('scratch', 'pit', 'patch')\n"
    )
    assert captured.out.count("defect-synth: wrote") == 2
