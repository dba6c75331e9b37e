"""defect_plugins.fit.layouts: the accepted folder layouts and the errors for the others, on tiny PNG folders."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from defect_plugins.fit.layouts import (
    LayoutError,
    check_mask_values,
    find_anomaly_data,
    find_class_data,
    find_seg_data,
    read_mask,
)


def png(path: Path, value: int = 0, shape: tuple[int, int] = (20, 20)) -> Path:
    """A small grey PNG at ``path`` (parents made), all pixels ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(shape, value, np.uint8))
    return path


def images(folder: Path, count: int, *, start: int = 0, suffix: str = ".png") -> list[Path]:
    return [png(folder / f"{i:03d}{suffix}") for i in range(start, start + count)]


def mvtec(root: Path, types: dict[str, int], *, masks: bool = False, mask_suffix: str = "_mask") -> Path:
    images(root / "train" / "good", 4)
    images(root / "test" / "good", 2, start=100)
    for name, count in types.items():
        for path in images(root / "test" / name, count):
            if masks:
                png(root / "ground_truth" / name / f"{path.stem}{mask_suffix}.png", 255)
    return root


# ----------------------------------------------------------------------------------------------- anomaly


def test_mvtec_one_defect_type(tmp_path):
    data = find_anomaly_data(mvtec(tmp_path, {"scratch": 3}))
    assert data.layout == "mvtec"
    assert len(data.good) == 6 and list(data.good) == sorted(data.good)
    assert {p.parent.name for p in data.good} == {"good"}
    assert list(data.defects) == ["scratch"] and len(data.defects["scratch"]) == 3
    assert data.masks == {}
    assert data.summary() == {"root": str(tmp_path), "layout": "mvtec", "good": 6, "defects": {"scratch": 3},
                              "defective": 3, "masks": 0}


def test_mvtec_several_types_with_mvtec_mask_names(tmp_path):
    data = find_anomaly_data(mvtec(tmp_path, {"hole": 2, "crack": 3, "scratch": 1}, masks=True))
    assert list(data.defects) == ["crack", "hole", "scratch"]  # sorted by type
    assert len(data.masks) == 6
    image = tmp_path / "test" / "crack" / "001.png"
    assert data.masks[image] == tmp_path / "ground_truth" / "crack" / "001_mask.png"
    assert data.summary()["masks"] == 6


def test_mvtec_same_stem_masks_and_no_test_good(tmp_path):
    root = mvtec(tmp_path, {"hole": 2}, masks=True, mask_suffix="")
    for path in (root / "test" / "good").iterdir():
        path.unlink()
    (root / "test" / "good").rmdir()
    data = find_anomaly_data(root)
    assert len(data.good) == 4
    assert data.masks[root / "test" / "hole" / "000.png"] == root / "ground_truth" / "hole" / "000.png"


def test_mvtec_category_one_level_down_is_named(tmp_path):
    mvtec(tmp_path / "bottle", {"broken": 2})
    with pytest.raises(LayoutError, match="did you mean") as error:
        find_anomaly_data(tmp_path)
    assert str(tmp_path / "bottle") in str(error.value)
    assert "accepted layouts" in str(error.value)


def test_several_categories_asks_for_one(tmp_path):
    mvtec(tmp_path / "bottle", {"broken": 2})
    mvtec(tmp_path / "cable", {"cut": 2})
    with pytest.raises(LayoutError, match="pass one of them"):
        find_anomaly_data(tmp_path)


def test_mvtec_defective_images_in_train_are_refused(tmp_path):
    root = mvtec(tmp_path, {"hole": 2})
    images(root / "train" / "hole", 1)
    with pytest.raises(LayoutError, match="defect-free") as error:
        find_anomaly_data(root)
    assert str(root / "train" / "hole") in str(error.value)


def test_folders_layout_any_case_good_name_and_masks_folder(tmp_path):
    images(tmp_path / "OK", 5)
    for name in ("crack", "hole"):
        for path in images(tmp_path / name, 2, suffix=".jpg"):
            png(tmp_path / "masks" / name / f"{path.stem}.png", 255)  # mask suffix differs from the image's
    data = find_anomaly_data(tmp_path)
    assert data.layout == "folders"
    assert len(data.good) == 5 and list(data.defects) == ["crack", "hole"]
    assert data.masks[tmp_path / "hole" / "001.jpg"] == tmp_path / "masks" / "hole" / "001.png"


def test_folders_layout_non_images_hidden_files_and_non_square_images(tmp_path):
    images(tmp_path / "normal", 3)
    png(tmp_path / "normal" / "wide.png", shape=(20, 37))
    png(tmp_path / "normal" / "._000.png")  # macOS litter
    (tmp_path / "normal" / "README.txt").write_text("defect-free parts of line 3")
    (tmp_path / "README.txt").write_text("data")
    (tmp_path / ".cache").mkdir()
    png(tmp_path / "dent" / "a.png", shape=(41, 20))
    (tmp_path / "dent" / "notes.csv").write_text("a,b")
    data = find_anomaly_data(tmp_path)
    assert len(data.good) == 4 and all(p.suffix == ".png" and not p.name.startswith(".") for p in data.good)
    assert list(data.defects) == ["dent"] and len(data.defects["dent"]) == 1


def test_both_mask_folders_are_refused(tmp_path):
    images(tmp_path / "good", 2)
    images(tmp_path / "dent", 1)
    png(tmp_path / "masks" / "dent" / "000.png")
    png(tmp_path / "ground_truth" / "dent" / "000.png")
    with pytest.raises(LayoutError, match="both"):
        find_anomaly_data(tmp_path)


def test_partly_missing_masks_name_the_images(tmp_path):
    root = mvtec(tmp_path, {"hole": 3, "crack": 2}, masks=True)
    (root / "ground_truth" / "hole" / "001_mask.png").unlink()
    for path in (root / "ground_truth" / "crack").iterdir():
        path.unlink()
    with pytest.raises(LayoutError) as error:
        find_anomaly_data(root)
    message = str(error.value)
    assert "3 image(s) without a mask" in message
    assert str(root / "test" / "hole" / "001.png") in message and str(root / "test" / "crack" / "000.png") in message


def test_missing_masks_list_five_and_the_count(tmp_path):
    root = mvtec(tmp_path, {"hole": 9}, masks=True)
    for i in range(1, 9):
        (root / "ground_truth" / "hole" / f"{i:03d}_mask.png").unlink()
    with pytest.raises(LayoutError, match=r"8 image\(s\) without a mask.*and 3 more"):
        find_anomaly_data(root)


def test_mask_without_image_names_mask_and_folder(tmp_path):
    root = mvtec(tmp_path, {"hole": 2}, masks=True)
    stray = png(root / "ground_truth" / "hole" / "017_mask.png")
    with pytest.raises(LayoutError) as error:
        find_anomaly_data(root)
    message = str(error.value)
    assert str(stray) in message and str(root / "test" / "hole") in message and "'017'" in message


def test_two_masks_for_one_image(tmp_path):
    root = mvtec(tmp_path, {"hole": 2}, masks=True)
    png(root / "ground_truth" / "hole" / "000.png")
    with pytest.raises(LayoutError, match="two masks"):
        find_anomaly_data(root)


def test_mask_folder_without_image_folder(tmp_path):
    root = mvtec(tmp_path, {"hole": 2}, masks=True)
    png(root / "ground_truth" / "scratch" / "000_mask.png")
    with pytest.raises(LayoutError, match="has no image folder") as error:
        find_anomaly_data(root)
    assert str(root / "ground_truth" / "scratch") in str(error.value)


def test_empty_good_folder_and_no_defect_folder(tmp_path):
    (tmp_path / "a" / "good").mkdir(parents=True)
    (tmp_path / "a" / "good" / "README.txt").write_text("")
    images(tmp_path / "a" / "dent", 2)
    with pytest.raises(LayoutError, match="no defect-free image"):
        find_anomaly_data(tmp_path / "a")
    images(tmp_path / "b" / "good", 2)
    with pytest.raises(LayoutError, match="needs defective images"):
        find_anomaly_data(tmp_path / "b")


def test_unknown_layout_and_missing_folder_show_the_layouts(tmp_path):
    images(tmp_path / "pictures", 2)
    with pytest.raises(LayoutError, match="(?s)neither train/.*accepted layouts.*MVTec AD"):
        find_anomaly_data(tmp_path)
    with pytest.raises(LayoutError, match="not found"):
        find_anomaly_data(tmp_path / "absent")


def test_images_loose_in_the_root_are_refused(tmp_path):
    images(tmp_path / "good", 2)
    images(tmp_path / "dent", 1)
    png(tmp_path / "stray.png")
    with pytest.raises(LayoutError, match="stray.png"):
        find_anomaly_data(tmp_path)


# ----------------------------------------------------------------------------------------------- classifier


def test_class_folders_any_names_and_nested_images(tmp_path):
    images(tmp_path / "OK", 3)
    images(tmp_path / "scratch defect", 2)
    images(tmp_path / "scratch defect" / "batch 2", 2, start=10)
    images(tmp_path / "Kratzer-ä", 3, suffix=".bmp")
    (tmp_path / "labels.txt").write_text("OK\n")
    data = find_class_data(tmp_path)
    assert data.classes == ("Kratzer-ä", "OK", "scratch defect")
    assert len(data.images["scratch defect"]) == 4
    assert data.summary()["images"] == {"Kratzer-ä": 3, "OK": 3, "scratch defect": 4}
    assert data.summary()["total"] == 10


def test_class_with_too_few_images(tmp_path):
    images(tmp_path / "ok", 3)
    images(tmp_path / "rare", 1)
    with pytest.raises(LayoutError) as error:
        find_class_data(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "rare") in message and "1 image(s)" in message and "at least 3" in message
    assert "train" in message and "calibrate" in message and "test" in message
    assert find_class_data(tmp_path, min_per_class=1).classes == ("ok", "rare")


def test_class_images_in_root_and_single_class(tmp_path):
    images(tmp_path / "a", 3)
    with pytest.raises(LayoutError, match="at least two"):
        find_class_data(tmp_path)
    images(tmp_path / "b", 3)
    png(tmp_path / "loose.png")
    with pytest.raises(LayoutError, match="(?s)loose.png.*class folders"):
        find_class_data(tmp_path)


# ----------------------------------------------------------------------------------------------- segmentor


def seg(root: Path, values: list[int], *, mask_folder: str = "masks", mask_suffix: str = "") -> Path:
    for i, value in enumerate(values):
        png(root / "images" / f"{i:03d}.png", 128, shape=(20, 30))
        mask = np.zeros((20, 30), np.uint8)
        mask[5:10, 5:10] = value
        (root / mask_folder).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / mask_folder / f"{i:03d}{mask_suffix}.png"), mask)
    return root


def test_seg_classes_from_yaml(tmp_path):
    root = seg(tmp_path, [1, 2, 1])
    (root / "classes.yaml").write_text("- background\n- scratch\n- pit\n")
    data = find_seg_data(root)
    assert data.classes == ("background", "scratch", "pit")
    assert data.images == tuple(sorted(data.masks)) and len(data.images) == 3
    assert data.summary() == {"root": str(root), "images": 3, "masks": 3, "classes": ["background", "scratch", "pit"]}


def test_seg_classes_argument_wins_and_masks_are_not_read(tmp_path):
    root = seg(tmp_path, [1, 7], mask_folder="annotations", mask_suffix="_mask")
    (root / "classes.yaml").write_text("[background, a, b, c, d, e, f, g]\n")
    data = find_seg_data(root, classes=["background", "defect"])  # value 7 is not checked here
    assert data.classes == ("background", "defect")
    with pytest.raises(LayoutError, match="001_mask.png") as error:
        check_mask_values(data)
    assert "[7]" in str(error.value)
    check_mask_values(find_seg_data(root))  # the yaml's eight classes cover 7


def test_seg_classes_from_masks(tmp_path):
    root = seg(tmp_path, [1, 3, 255], mask_folder="labels")
    assert find_seg_data(root).classes == ("background", "defect_1", "defect_2", "defect_3")


def test_seg_masks_only_0_and_255(tmp_path):
    root = seg(tmp_path, [255, 255])
    with pytest.raises(LayoutError, match="255 turned into 1"):
        find_seg_data(root)


def test_seg_bad_classes(tmp_path):
    root = seg(tmp_path, [1])
    (root / "classes.yaml").write_text("background: 0\ndefect: 1\n")
    with pytest.raises(LayoutError, match="classes.yaml: expected a list"):
        find_seg_data(root)
    (root / "classes.yaml").write_text("[background, defect, defect]\n")
    with pytest.raises(LayoutError, match="unique"):
        find_seg_data(root)
    (root / "classes.yaml").write_text("[unclosed\n")
    with pytest.raises(LayoutError, match="not readable as YAML"):
        find_seg_data(root)
    with pytest.raises(LayoutError, match="the classes argument: expected the background and at least one"):
        find_seg_data(root, classes=["background"])


def test_seg_every_image_needs_a_mask(tmp_path):
    root = seg(tmp_path, [1, 1, 1])
    (root / "masks" / "002.png").unlink()
    with pytest.raises(LayoutError, match="002.png") as error:
        find_seg_data(root, classes=["background", "defect"])
    assert "1 image(s) without a mask" in str(error.value)


def test_seg_mask_without_image_and_missing_folders(tmp_path):
    root = seg(tmp_path, [1])
    png(root / "masks" / "999.png")
    with pytest.raises(LayoutError, match="999.png"):
        find_seg_data(root, classes=["background", "defect"])
    (tmp_path / "other").mkdir()
    with pytest.raises(LayoutError, match="(?s)no images/ folder.*accepted layout for segmentor"):
        find_seg_data(tmp_path / "other")


def test_read_mask_palette_indices_and_colour_masks(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    palette = image_module.fromarray(np.array([[0, 1], [2, 2]] * 8, np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "palette.png")
    assert read_mask(tmp_path / "palette.png").tolist()[0] == [0, 1]  # indices, not colours
    grey_as_colour = np.repeat(np.array([[0, 3]], np.uint8)[..., None], 3, axis=2)
    cv2.imwrite(str(tmp_path / "grey.png"), grey_as_colour)
    assert read_mask(tmp_path / "grey.png").tolist() == [[0, 3]]
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (0, 0, 255)
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    with pytest.raises(LayoutError, match="colour.png has 3 different channels"):
        read_mask(tmp_path / "colour.png")


def test_seg_mmseg_splits_reuse_stems_and_match_within_their_subfolder(tmp_path):
    """mmseg's img_dir/train/000.png pairs with ann_dir/train/000.png, not with ann_dir/val/000.png."""
    for split, value in (("train", 1), ("val", 2)):
        png(tmp_path / "img_dir" / split / "000.png", 128, shape=(20, 30))
        mask = np.full((20, 30), value, np.uint8)
        (tmp_path / "ann_dir" / split).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(tmp_path / "ann_dir" / split / "000.png"), mask)
    data = find_seg_data(tmp_path)
    assert {p.relative_to(tmp_path).as_posix(): m.relative_to(tmp_path).as_posix() for p, m in data.masks.items()} == {
        "img_dir/train/000.png": "ann_dir/train/000.png", "img_dir/val/000.png": "ann_dir/val/000.png"}
    (tmp_path / "ann_dir" / "test").mkdir()
    (tmp_path / "ann_dir" / "val" / "000.png").rename(tmp_path / "ann_dir" / "test" / "000.png")
    with pytest.raises(LayoutError, match="(?s)ann_dir/test/000.png has no image.*'test/000'"):
        find_seg_data(tmp_path)
