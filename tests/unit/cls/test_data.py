"""NEU-CLS split and dataset checks, loading errors, preprocessing transforms, same-class mixing."""
from __future__ import annotations

import numpy as np
import pytest
from mmpretrain.registry import DATASETS, TRANSFORMS

from defect_plugins.cls.datasets import DatasetError, SplitError, stratified_split, write_split
from defect_plugins.cls.transforms import ImageReadError
from defect_plugins.data import NEU_CLASSES


def test_split_is_stratified_deterministic_and_disjoint(tiny_cls_data, tmp_path):
    a = write_split(tiny_cls_data, tmp_path / "a", NEU_CLASSES, train_ratio=0.5, seed=3)
    b = write_split(tiny_cls_data, tmp_path / "b", NEU_CLASSES, train_ratio=0.5, seed=3)
    assert a["train"].read_text() == b["train"].read_text()
    train = [line.split() for line in a["train"].read_text().splitlines()]
    test = [line.split() for line in a["test"].read_text().splitlines()]
    assert not {p for p, _ in train} & {p for p, _ in test}
    for label in range(6):
        assert sum(int(y) == label for _, y in train) == 2 and sum(int(y) == label for _, y in test) == 2
    c = stratified_split({"x": [f"{i}.png" for i in range(10)]}, 0.7, seed=4)
    assert len(c[0]) == 7 and len(c[1]) == 3


def test_dataset_reads_split_and_folders(tiny_cls_data, tiny_cls_split):
    pipeline = [dict(type='CheckedLoadImageFromFile'), dict(type='PackInputs')]
    listed = DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(tiny_cls_data),
                                 ann_file=str(tiny_cls_split / "train.txt"), pipeline=pipeline))
    folders = DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(tiny_cls_data), pipeline=pipeline))
    assert len(listed) == 12 and len(folders) == 24
    assert listed.metainfo["classes"] == tuple(NEU_CLASSES)
    sample = listed[0]
    assert sample["inputs"].shape == (3, 32, 32) and int(sample["data_samples"].gt_label) == listed.get_gt_labels()[0]


def test_empty_class_folder_is_a_clear_error(constant_class_data):
    for path in (constant_class_data / "patches").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="class folder .*patches is empty"):
        DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(constant_class_data), pipeline=[]))
    with pytest.raises(SplitError, match="patches holds no image"):
        write_split(constant_class_data, constant_class_data / "split", NEU_CLASSES)


def test_bad_annotation_lines_are_clear_errors(constant_class_data, tmp_path):
    ann = tmp_path / "ann.txt"
    for text, message in [("crazing/0.png 9\n", "label 9 outside"),
                          ("crazing/0.png\n", "expected '<relative path> <label>'"),
                          ("crazing/404.png 0\n", "image .*crazing/404.png not found")]:
        ann.write_text(text)
        with pytest.raises(DatasetError, match=message):
            DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(constant_class_data), ann_file=str(ann),
                                pipeline=[]))


def test_unreadable_image_names_the_file(constant_class_data):
    broken = constant_class_data / "scratches" / "0.png"
    broken.write_bytes(b"this is not an image")
    dataset = DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(constant_class_data),
                                  pipeline=[dict(type='CheckedLoadImageFromFile')]))
    index = next(i for i in range(len(dataset)) if dataset.get_data_info(i)["img_path"].endswith("scratches/0.png"))
    with pytest.raises(ImageReadError, match="cannot read image .*scratches/0.png"):
        dataset[index]
    broken.write_bytes(b"")
    with pytest.raises(ImageReadError, match="scratches/0.png"):
        dataset[index]


def test_preprocessing_transforms_keep_label_and_shape():
    rng = np.random.default_rng(0)
    img = (rng.normal(100, 10, (32, 40, 3))).clip(0, 255).astype(np.uint8)
    for cfg in (dict(type='SteelBilateralFilter'), dict(type='HistogramContrastStretch', low=1, high=99)):
        out = TRANSFORMS.build(cfg)({"img": img.copy(), "gt_label": 4})
        assert out["img"].shape == img.shape and out["img"].dtype == np.uint8 and out["gt_label"] == 4
    stretched = TRANSFORMS.build(dict(type='HistogramContrastStretch', low=0, high=100))({"img": img.copy()})["img"]
    assert stretched.min() == 0 and stretched.max() == 255
    assert TRANSFORMS.build(dict(type='SteelBilateralFilter'))({"img": img.copy()})["img"].std() < img.std()  # denoised
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert np.array_equal(TRANSFORMS.build(dict(type='HistogramContrastStretch'))({"img": flat.copy()})["img"], flat)


@pytest.mark.parametrize("wrapper", [dict(type='SameClassMosaicDataset', prob=1.0, seam_width=4, blur_kernel=3),
                                     dict(type='SameClassFusionDataset', prob=1.0)])
def test_same_class_mixing_keeps_labels_and_only_mixes_one_class(constant_class_data, wrapper):
    np.random.seed(0)
    inner = dict(type='NEUCLSDataset', data_prefix=str(constant_class_data),
                 pipeline=[dict(type='CheckedLoadImageFromFile')])
    dataset = DATASETS.build(dict(wrapper, dataset=inner, pipeline=[dict(type='PackInputs')]))
    assert len(dataset) == 18 and dataset.metainfo["classes"] == tuple(NEU_CLASSES)
    for index in range(len(dataset)):
        sample = dataset[index]
        label = int(sample["data_samples"].gt_label)
        assert label == dataset.get_gt_labels()[index]
        # every source image of class c is flat 30 * (c + 1): any other class would show another grey level
        assert sample["inputs"].shape == (3, 16, 16)
        assert (sample["inputs"] == 30 * (label + 1)).all()


def test_fusion_around_mosaic_keeps_labels(constant_class_data):
    """The paper-augmentation config nests the wrappers: the inner one passes its images on unpacked."""
    np.random.seed(1)
    inner = dict(type='NEUCLSDataset', data_prefix=str(constant_class_data),
                 pipeline=[dict(type='CheckedLoadImageFromFile')])
    mosaic = dict(type='SameClassMosaicDataset', prob=1.0, seam_width=4, blur_kernel=3, pipeline=[], dataset=inner)
    dataset = DATASETS.build(dict(type='SameClassFusionDataset', prob=1.0, dataset=mosaic,
                                  pipeline=[dict(type='PackInputs')]))
    assert len(dataset) == 18 and list(dataset.get_gt_labels()) == list(DATASETS.build(inner).get_gt_labels())
    for index in range(len(dataset)):
        sample = dataset[index]
        label = int(sample["data_samples"].gt_label)
        assert label == dataset.get_gt_labels()[index] and (sample["inputs"] == 30 * (label + 1)).all()


def test_split_command_writes_the_split_and_reports_bad_input(tiny_cls_data, tmp_path, capsys):
    """``defect-cls-split``."""
    from defect_plugins.cls.datasets.split import main

    out = tmp_path / "split"
    assert main([str(tiny_cls_data), "--out", str(out), "--train-ratio", "0.5", "--seed", "3"]) == 0
    assert f"train: {out / 'train.txt'}" in capsys.readouterr().out
    expected = write_split(tiny_cls_data, tmp_path / "again", NEU_CLASSES, train_ratio=0.5, seed=3)
    assert (out / "train.txt").read_text() == expected["train"].read_text()
    assert main([str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "defect-cls-split: error: data folder" in capsys.readouterr().err
    assert main([str(tiny_cls_data), "--out", str(tmp_path / "two"), "--classes", "scratches", "patches"]) == 0
    assert {line.split()[1] for line in (tmp_path / "two" / "train.txt").read_text().splitlines()} == {"0", "1"}


# --------------------------------------------------------------------------------------------
# per-class training counts, balanced test set
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def ten_per_class(tmp_path):
    """Six class folders of ten (empty) image files: the split only lists names."""
    root = tmp_path / "ten"
    for name in NEU_CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(10):
            (root / name / f"{i:02d}.png").touch()
    return root


def _read(path):
    return [tuple(line.split()) for line in path.read_text().splitlines()]


def test_train_counts_give_an_imbalanced_train_set_and_the_balanced_test_set(ten_per_class, tmp_path):
    import json

    counts = dict(zip(NEU_CLASSES, (7, 5, 4, 2, 1, 1)))
    paths = write_split(ten_per_class, tmp_path / "tail", NEU_CLASSES, seed=5, train_counts=counts, test_count=3)
    balanced = write_split(ten_per_class, tmp_path / "ratio", NEU_CLASSES, train_ratio=0.7, seed=5)
    train, test = _read(paths["train"]), _read(paths["test"])
    for label, name in enumerate(NEU_CLASSES):
        assert sum(int(y) == label for _, y in train) == counts[name]
        assert sum(int(y) == label for _, y in test) == 3
    assert not {p for p, _ in train} & {p for p, _ in test}
    # same seed: the very test images of the 70/30 split, and a subset of its training images
    assert test == _read(balanced["test"])
    assert set(train) <= set(_read(balanced["train"])) and len(train) == 20
    meta = json.loads(paths["meta"].read_text())
    assert meta["train_counts"] == counts and meta["test_count"] == 3 and meta["train_ratio"] is None
    assert meta["train_per_class"] == counts and set(meta["test_per_class"].values()) == {3}


def test_impossible_counts_name_the_class(ten_per_class, tmp_path):
    from defect_plugins.cls.datasets.split import counts_split, list_class_images

    per_class = list_class_images(ten_per_class, NEU_CLASSES)
    counts = dict.fromkeys(NEU_CLASSES, 2)
    with pytest.raises(SplitError, match=r"class 'inclusion': 8 training \+ 3 test images requested, but its folder "
                                         r"holds 10 \(at most 7 for training"):
        counts_split(per_class, dict(counts, inclusion=8), test_count=3)
    with pytest.raises(SplitError, match=r"class 'crazing': 2 training \+ 90 test .* holds 10 \(not even the 90 test"):
        counts_split(per_class, counts)  # default 90 test images per class: too many for ten
    with pytest.raises(SplitError, match=r"unknown class\(es\) \['rust'\]"):
        counts_split(per_class, dict(counts, rust=3), test_count=3)
    with pytest.raises(SplitError, match=r"no training count for class\(es\) \['scratches'\]"):
        counts_split(per_class, {k: v for k, v in counts.items() if k != "scratches"}, test_count=3)
    with pytest.raises(SplitError, match="class 'crazing': training count must be a positive integer, got 0"):
        counts_split(per_class, dict(counts, crazing=0), test_count=3)
    with pytest.raises(SplitError, match="test count must be a positive integer"):
        counts_split(per_class, counts, test_count=0)
    with pytest.raises(SplitError, match="a test count needs training counts"):
        write_split(ten_per_class, tmp_path / "x", NEU_CLASSES, test_count=3)


def test_split_command_takes_counts_in_class_order_or_by_name(ten_per_class, tmp_path, capsys):
    from defect_plugins.cls.datasets.split import main

    ordered = ["6", "5", "4", "3", "2", "1"]
    assert main([str(ten_per_class), "--out", str(tmp_path / "a"), "--train-counts", *ordered,
                 "--test-count", "3"]) == 0
    named = [f"{c}={n}" for c, n in reversed(list(zip(NEU_CLASSES, ordered)))]  # any order
    assert main([str(ten_per_class), "--out", str(tmp_path / "b"), "--train-counts", *named, "--test-count", "3"]) == 0
    assert (tmp_path / "a" / "train.txt").read_text() == (tmp_path / "b" / "train.txt").read_text()
    assert len(_read(tmp_path / "a" / "train.txt")) == 21 and len(_read(tmp_path / "a" / "test.txt")) == 18
    capsys.readouterr()
    bad = {
        ("--train-counts", *ordered): "class 'crazing': 6 training + 90 test images requested",  # default 90
        ("--train-counts", *ordered[:5], "--test-count", "3"): "5 counts for 6 classes",
        ("--train-counts", "crazing=2", "3", "--test-count", "3"): "mix of CLASS=N and plain counts",
        ("--train-counts", *ordered[:5], "x", "--test-count", "3"): "class 'scratches': expected an integer count, "
                                                                    "got 'x'",
        ("--train-counts", *ordered, "--train-ratio", "0.5"): "--train-ratio and --train-counts exclude each other",
        ("--test-count", "3"): "--test-count needs --train-counts",
    }
    for args, message in bad.items():
        assert main([str(ten_per_class), "--out", str(tmp_path / "bad"), *args]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "bad").exists()
