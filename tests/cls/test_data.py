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
    for text, message in [("crazing/0.png 9\n", "label 9 outside"), ("crazing/0.png\n", "expected '<relative path> <label>'"),
                          ("crazing/404.png 0\n", "image .*crazing/404.png not found")]:
        ann.write_text(text)
        with pytest.raises(DatasetError, match=message):
            DATASETS.build(dict(type='NEUCLSDataset', data_prefix=str(constant_class_data), ann_file=str(ann), pipeline=[]))


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
    inner = dict(type='NEUCLSDataset', data_prefix=str(constant_class_data), pipeline=[dict(type='CheckedLoadImageFromFile')])
    dataset = DATASETS.build(dict(wrapper, dataset=inner, pipeline=[dict(type='PackInputs')]))
    assert len(dataset) == 18 and dataset.metainfo["classes"] == tuple(NEU_CLASSES)
    for index in range(len(dataset)):
        sample = dataset[index]
        label = int(sample["data_samples"].gt_label)
        assert label == dataset.get_gt_labels()[index]
        # every source image of class c is flat 30 * (c + 1): any other class would show another grey level
        assert sample["inputs"].shape == (3, 16, 16)
        assert (sample["inputs"] == 30 * (label + 1)).all()


def test_split_command_writes_the_split_and_reports_bad_input(tiny_cls_data, tmp_path, capsys):
    """``defect-cls-split`` (and ``python tools/neu_cls_split.py``, a thin wrapper of it)."""
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


def test_split_tool_is_a_wrapper_of_the_command(tmp_path, repo_root):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(repo_root / "tools" / "neu_cls_split.py"), str(tmp_path / "nowhere"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "data folder" in result.stderr and "not found" in result.stderr
