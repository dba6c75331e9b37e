"""Find the data in a user's folder: which images are defect-free, which are defective, which masks go with them.

``defect-fit`` starts from a folder the user made, not from a config: this module turns that
folder into lists of files (one call per family) or into a :class:`LayoutError` that names the
folder or file at fault, says what was expected and shows the accepted layouts. Nothing here
reads an image; only :func:`find_seg_data` without class names, and :func:`check_mask_values`,
read masks (their pixel values are the class indices).

* :func:`find_anomaly_data` (anomaly models, trained on defect-free images only): the MVTec AD
  layout (Bergmann et al., "MVTec AD", CVPR 2019: ``train/good``, ``test/good``,
  ``test/<defect type>``, ``ground_truth/<defect type>``) or plain folders (``good/`` beside one
  folder per defect type);
* :func:`find_class_data` (classifiers): one folder per class;
* :func:`find_seg_data` (segmentors): ``images/`` and ``masks/``, every image with its mask.

Masks are matched to images by file stem, within one folder: the mask of ``x.jpg`` is ``x.png``
or ``x_mask.png`` (MVTec AD's naming), whatever the suffixes. Hidden files and folders (``.x``)
and files without an image suffix (:data:`defect_plugins.imaging.files.IMAGE_SUFFIXES`: a
``README.txt``, a ``Thumbs.db``) are skipped. Folder names of the layouts (``train``, ``good``,
``masks``...) are matched case-insensitively; class and defect type names are kept as written.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from defect_plugins.imaging.files import IMAGE_SUFFIXES, list_images

__all__ = ["GOOD_NAMES", "AnomalyData", "ClassData", "LayoutError", "SegData", "check_mask_values",
           "find_anomaly_data", "find_class_data", "find_seg_data", "read_mask"]

GOOD_NAMES = ("good", "ok", "normal")  # the defect-free folder, any case
IGNORE_INDEX = 255  # mmseg's ignore_index default: pixels that count for no class
_MASK_SUFFIX = "_mask"  # MVTec AD: ground_truth/<type>/000_mask.png is the mask of test/<type>/000.png
_SHOWN = 5  # files named in a message before "... and N more"

ANOMALY_LAYOUTS = """\
accepted layouts for anomaly data (any image suffix: {suffixes}):
  MVTec AD: ROOT/train/good/, ROOT/test/good/, ROOT/test/<defect type>/ (one or more),
            masks optional in ROOT/ground_truth/<defect type>/
  folders:  ROOT/good/ (or ok/, normal/) and ROOT/<defect type>/ beside it (one or more),
            masks optional in ROOT/ground_truth/<defect type>/ or ROOT/masks/<defect type>/
  a mask is named like its image (x.png) or with _mask (x_mask.png)""".format(suffixes=", ".join(IMAGE_SUFFIXES))
CLASS_LAYOUT = """\
accepted layout for classifier data: ROOT/<class>/ with the images of that class (sub-folders count
for their top folder), at least two classes, any folder names (an OK class is one of them)"""
SEG_LAYOUT = """\
accepted layout for segmentor data: ROOT/images/ and ROOT/masks/ (or annotations/, labels/; also
mmseg's img_dir/ and ann_dir/), every image with a single-channel mask named like it (x.png) or
with _mask (x_mask.png) whose pixel values are class indices (0 = background, 255 = ignore);
class names optional in ROOT/classes.yaml (a YAML list, background first)"""


class LayoutError(ValueError):
    """A data folder that does not match the accepted layouts; the message names the folder or file and shows them."""


def _fail(message: str, layouts: str) -> LayoutError:
    return LayoutError(f"{message}\n{layouts}")


def _shown(paths: Sequence[Path]) -> str:
    """Up to five paths, then how many more (messages stay readable for a folder of thousands)."""
    names = ", ".join(str(p) for p in paths[:_SHOWN])
    return names + (f" ... and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _subdirs(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not _hidden(p)), key=lambda p: p.name)


def _loose_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not in a sub-folder), sorted."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not _hidden(p) and p.suffix.lower() in IMAGE_SUFFIXES)


def _images(folder: Path) -> list[Path]:
    return list_images(folder, skip_hidden=True)


def _child(folder: Path, names: Iterable[str], layouts: str) -> Path | None:
    """The one visible sub-folder of ``folder`` named one of ``names`` (any case); ``None`` if there is none."""
    wanted = {n.lower() for n in names}
    found = [p for p in _subdirs(folder) if p.name.lower() in wanted]
    if len(found) > 1:
        raise _fail(f"{folder}: found {', '.join(p.name + '/' for p in found)}, expected only one of them "
                    f"(they mean the same thing here)", layouts)
    return found[0] if found else None


def _root(root: str | Path, layouts: str) -> Path:
    path = Path(root)
    if not path.is_dir():
        raise _fail(f"data folder {path} not found (expected a folder)", layouts)
    return path


def _no_loose_images(folder: Path, where: str, layouts: str) -> None:
    loose = _loose_images(folder)
    if loose:
        raise _fail(f"{loose[0]}: image directly in {folder} ({len(loose)} such files); {where}", layouts)


def _key(path: Path, folder: Path, stem: str | None = None) -> str:
    """What matches an image and its mask: the subfolder under its top folder and the file stem.

    Flat folders match by stem alone; mmseg's ``img_dir/train/x.png`` matches ``ann_dir/train/x.png``
    (its splits reuse stems).
    """
    return (path.parent.relative_to(folder) / (stem if stem is not None else path.stem)).as_posix()


def _unique_stems(images: Sequence[Path], folder: Path, layouts: str) -> dict[str, Path]:
    """Key (subfolder / stem) -> image; two images of one stem in a folder would make mask matching ambiguous."""
    by_key: dict[str, Path] = {}
    for image in images:
        key = _key(image, folder)
        if key in by_key:
            raise _fail(f"{image.parent}: two images with the stem {image.stem!r} ({by_key[key]}, {image}); "
                        f"masks are matched to images by file stem, so stems must be unique in a folder", layouts)
        by_key[key] = image
    return by_key


def _match_masks(images: Sequence[Path], image_folder: Path, mask_folder: Path, layouts: str) -> dict[Path, Path]:
    """Image -> mask for the masks under ``mask_folder``, matched by stem to the images of ``image_folder``.

    The mask of an image of stem ``x`` has the stem ``x`` or ``x_mask`` (MVTec AD), in the same
    subfolder under its top folder (:func:`_key`). A mask with no such image, a mask that fits two
    images (``x_mask`` when both ``x`` and ``x_mask`` are images) and two masks for one image are
    errors; images without a mask are the caller's to judge.
    """
    by_key = _unique_stems(images, image_folder, layouts)
    matched: dict[Path, Path] = {}
    for mask in _images(mask_folder):
        stems = [mask.stem]
        if mask.stem.endswith(_MASK_SUFFIX) and len(mask.stem) > len(_MASK_SUFFIX):
            stems.append(mask.stem[: -len(_MASK_SUFFIX)])
        keys = [_key(mask, mask_folder, stem) for stem in stems]
        candidates = [by_key[key] for key in keys if key in by_key]
        if not candidates:
            searched = " or ".join(repr(key) for key in keys)
            raise _fail(f"mask {mask} has no image in {image_folder} (searched for {searched})", layouts)
        if len(candidates) > 1:
            raise _fail(f"mask {mask} fits two images in {image_folder} ({candidates[0]}, {candidates[1]}); "
                        f"rename one of them", layouts)
        image = candidates[0]
        if image in matched:
            raise _fail(f"image {image} has two masks: {matched[image]} and {mask}; expected one", layouts)
        matched[image] = mask
    return matched


def _require_masks(images: Sequence[Path], masks: dict[Path, Path], mask_root: Path, why: str, layouts: str) -> None:
    missing = [p for p in images if p not in masks]
    if missing:
        raise _fail(f"{len(missing)} image(s) without a mask in {mask_root} ({why}): {_shown(missing)}", layouts)


# ----------------------------------------------------------------------------------------------- anomaly


@dataclass(frozen=True)
class AnomalyData:
    """The images of an anomaly data set: defect-free ones (to train and calibrate on) and defective ones by type."""

    root: Path
    layout: str  # "mvtec" or "folders"
    good: tuple[Path, ...]  # every defect-free image, sorted
    defects: dict[str, tuple[Path, ...]]  # defect type -> its images; types sorted, images sorted
    masks: dict[Path, Path]  # defective image -> its mask; empty when the set has no masks

    def summary(self) -> dict[str, Any]:
        """Counts for the model card: layout, defect-free images, defective images per type, masks."""
        return {"root": str(self.root), "layout": self.layout, "good": len(self.good),
                "defects": {name: len(paths) for name, paths in self.defects.items()},
                "defective": sum(len(paths) for paths in self.defects.values()), "masks": len(self.masks)}


def find_anomaly_data(root: str | Path) -> AnomalyData:
    """The defect-free and defective images under ``root`` (MVTec AD or plain folders), with their masks if any.

    Anomaly models train on defect-free images only, but ``defect-fit`` also needs defective
    images: the threshold is calibrated on held-out defect-free images and the recall is measured
    on defective ones. A layout without defect-free images or without any defect folder is
    therefore an error. Masks are optional; once one defective image has a mask, all need one
    (pixel metrics over a part of the set would mislead). Masks of defect-free images
    (``ground_truth/good``) are not needed and are ignored.

    Raises:
        LayoutError: naming the folder or file at fault and what was expected, with the accepted layouts.
    """
    path = _root(root, ANOMALY_LAYOUTS)
    train = _child(path, ["train"], ANOMALY_LAYOUTS)
    if train is not None:
        return _find_mvtec(path, train)
    good = _child(path, GOOD_NAMES, ANOMALY_LAYOUTS)
    if good is not None:
        return _find_folders(path, good)
    raise _fail(f"{path}: found neither train/ (MVTec AD) nor a defect-free folder good/, ok/ or normal/"
                f"{_nested_hint(path)}", ANOMALY_LAYOUTS)


def _nested_hint(root: Path) -> str:
    """'did you mean ROOT/<sub>?' when the layout sits one level down (an MVTec AD category folder)."""
    def looks_like_data(sub: Path) -> bool:
        train = _child(sub, ["train"], ANOMALY_LAYOUTS)
        return (train is not None and _child(train, GOOD_NAMES, ANOMALY_LAYOUTS) is not None) \
            or _child(sub, GOOD_NAMES, ANOMALY_LAYOUTS) is not None

    found = [sub for sub in _subdirs(root) if looks_like_data(sub)]
    if len(found) == 1:
        return f"; did you mean {found[0]}?"
    if found:
        names = ", ".join(sub.name for sub in found[:_SHOWN]) + (" ..." if len(found) > _SHOWN else "")
        return f"; it holds {len(found)} data sets ({names}): pass one of them, e.g. {found[0]}"
    return ""


def _defect_folders(parent: Path, exclude: set[str]) -> list[Path]:
    return [p for p in _subdirs(parent) if p.name.lower() not in exclude]


def _good_images(folders: Sequence[Path]) -> tuple[Path, ...]:
    images = sorted(p for folder in folders for p in _images(folder))
    if not images:
        raise _fail(f"no defect-free image in {' or '.join(str(f) for f in folders)}: anomaly models train on "
                    f"defect-free images, and the threshold is calibrated on held-out ones", ANOMALY_LAYOUTS)
    return tuple(images)


def _defect_images(parent: Path, folders: Sequence[Path]) -> dict[str, tuple[Path, ...]]:
    if not folders:
        raise _fail(f"{parent}: no defect folder beside the defect-free one; defect-fit needs defective images "
                    f"to check the threshold and measure how many defects it catches", ANOMALY_LAYOUTS)
    defects: dict[str, tuple[Path, ...]] = {}
    for folder in folders:
        images = _images(folder)
        if not images:
            raise _fail(f"defect folder {folder} holds no image (expected {', '.join(IMAGE_SUFFIXES)} files); "
                        f"add images or remove the folder", ANOMALY_LAYOUTS)
        defects[folder.name] = tuple(images)
    return defects


def _anomaly_masks(root: Path, image_parent: Path, mask_root: Path | None,
                   defects: dict[str, tuple[Path, ...]], good_name: str) -> dict[Path, Path]:
    if mask_root is None:
        return {}
    _no_loose_images(mask_root, f"masks belong in {mask_root}/<defect type>/", ANOMALY_LAYOUTS)
    masks: dict[Path, Path] = {}
    for folder in _subdirs(mask_root):
        if folder.name.lower() == good_name.lower():
            continue  # defect-free images need no mask
        if folder.name not in defects:
            raise _fail(f"mask folder {folder} has no image folder {image_parent / folder.name} (defect types "
                        f"found: {', '.join(defects)})", ANOMALY_LAYOUTS)
        masks.update(_match_masks(defects[folder.name], image_parent / folder.name, folder, ANOMALY_LAYOUTS))
    if masks:
        defective = [p for paths in defects.values() for p in paths]
        _require_masks(defective, masks, mask_root, f"other defective images of {root} have masks", ANOMALY_LAYOUTS)
    return masks


def _find_mvtec(root: Path, train: Path) -> AnomalyData:
    _no_loose_images(root, f"images belong in {train}/good/ or {root}/test/<defect type>/", ANOMALY_LAYOUTS)
    train_good = _child(train, GOOD_NAMES, ANOMALY_LAYOUTS)
    if train_good is None:
        raise _fail(f"{train}: expected the defect-free training images in {train / 'good'}", ANOMALY_LAYOUTS)
    _no_loose_images(train, f"defect-free training images belong in {train_good}", ANOMALY_LAYOUTS)
    others = [p for p in _subdirs(train) if p != train_good]
    if others:
        raise _fail(f"{others[0]}: expected only {train_good.name}/ in {train} (anomaly models train on "
                    f"defect-free images; defective ones belong in {root / 'test' / others[0].name})",
                    ANOMALY_LAYOUTS)
    test = _child(root, ["test"], ANOMALY_LAYOUTS)
    if test is None:
        raise _fail(f"{root}: found train/ but no test/ (expected test/<defect type>/ with defective images: "
                    f"defect-fit needs them to check the threshold and measure the recall)", ANOMALY_LAYOUTS)
    _no_loose_images(test, f"test images belong in {test / 'good'} or {test}/<defect type>/", ANOMALY_LAYOUTS)
    test_good = _child(test, GOOD_NAMES, ANOMALY_LAYOUTS)
    good = _good_images([train_good] + ([test_good] if test_good is not None else []))
    defects = _defect_images(test, _defect_folders(test, {n.lower() for n in GOOD_NAMES}))
    masks = _anomaly_masks(root, test, _child(root, ["ground_truth"], ANOMALY_LAYOUTS), defects, train_good.name)
    return AnomalyData(root=root, layout="mvtec", good=good, defects=defects, masks=masks)


def _find_folders(root: Path, good_folder: Path) -> AnomalyData:
    _no_loose_images(root, f"images belong in {good_folder} or a defect folder beside it", ANOMALY_LAYOUTS)
    ground_truth = _child(root, ["ground_truth"], ANOMALY_LAYOUTS)
    masks_folder = _child(root, ["masks"], ANOMALY_LAYOUTS)
    if ground_truth is not None and masks_folder is not None:
        raise _fail(f"{root}: found both {ground_truth.name}/ and {masks_folder.name}/; expected masks in one "
                    f"of them", ANOMALY_LAYOUTS)
    good = _good_images([good_folder])
    exclude = {n.lower() for n in GOOD_NAMES} | {"ground_truth", "masks"}
    defects = _defect_images(root, _defect_folders(root, exclude))
    masks = _anomaly_masks(root, root, ground_truth or masks_folder, defects, good_folder.name)
    return AnomalyData(root=root, layout="folders", good=good, defects=defects, masks=masks)


# ----------------------------------------------------------------------------------------------- classifier


@dataclass(frozen=True)
class ClassData:
    """The images of a classification data set, one folder per class."""

    root: Path
    classes: tuple[str, ...]  # folder names, sorted
    images: dict[str, tuple[Path, ...]]  # class -> its images (nested ones included), sorted

    def summary(self) -> dict[str, Any]:
        """Counts for the model card: classes and images per class."""
        return {"root": str(self.root), "classes": list(self.classes),
                "images": {name: len(paths) for name, paths in self.images.items()},
                "total": sum(len(paths) for paths in self.images.values())}


def find_class_data(root: str | Path, *, min_per_class: int = 3) -> ClassData:
    """One class per visible sub-folder of ``root``, with every image under it (nested ones included).

    Any number of classes from two on, any folder names. Each class needs at least
    ``min_per_class`` images (default 3): one to train on, one to calibrate on and one to test on.

    Raises:
        LayoutError: images directly in ``root``, fewer than two classes, or a class below the minimum.
        ValueError: ``min_per_class`` below 1.
    """
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be at least 1, got {min_per_class}")
    path = _root(root, CLASS_LAYOUT)
    _no_loose_images(path, f"images belong in class folders ({path}/<class>/)", CLASS_LAYOUT)
    images: dict[str, tuple[Path, ...]] = {}
    for folder in _subdirs(path):
        found = _images(folder)
        if len(found) < min_per_class:
            raise _fail(f"class folder {folder} holds {len(found)} image(s), expected at least {min_per_class}: "
                        f"each class needs at least one image to train on, one to calibrate on and one to "
                        f"test on", CLASS_LAYOUT)
        images[folder.name] = tuple(found)
    if len(images) < 2:
        raise _fail(f"{path}: found {len(images)} class folder(s) ({', '.join(images) or 'none'}), expected at "
                    f"least two", CLASS_LAYOUT)
    return ClassData(root=path, classes=tuple(images), images=images)


# ----------------------------------------------------------------------------------------------- segmentor


@dataclass(frozen=True)
class SegData:
    """The images of a segmentation data set, each with its mask of class indices."""

    root: Path
    images: tuple[Path, ...]  # sorted
    masks: dict[Path, Path]  # every image -> its mask
    classes: tuple[str, ...]  # index = mask value; index 0 is the background

    def summary(self) -> dict[str, Any]:
        """Counts for the model card: images, masks and class names."""
        return {"root": str(self.root), "images": len(self.images), "masks": len(self.masks),
                "classes": list(self.classes)}


def find_seg_data(root: str | Path, classes: Sequence[str] | None = None) -> SegData:
    """The images under ``root/images`` and their masks under ``root/masks`` (or ``annotations``, ``labels``).

    Every image needs a mask. Class names come from ``classes``, else from ``root/classes.yaml``
    (a YAML list, background first), else from the masks: ``background, defect_1 .. defect_N``
    for the largest mask value ``N`` found (255 is mmseg's ignore index and no class). Only that
    last case reads masks, every one of them, which takes a while on a large set; with names
    given, the mask values are not checked here: :func:`check_mask_values` does that (a training
    run reads every mask anyway and can call it).

    Raises:
        LayoutError: a missing folder, an image without a mask, a mask without an image, a bad
            ``classes.yaml`` or class list, or masks that hold no defect class.
    """
    path = _root(root, SEG_LAYOUT)
    image_folder = _child(path, ["images", "img_dir"], SEG_LAYOUT)
    mask_folder = _child(path, ["masks", "annotations", "labels", "ann_dir"], SEG_LAYOUT)
    if image_folder is None or mask_folder is None:
        missing = "images/" if image_folder is None else "masks/ (or annotations/, labels/)"
        raise _fail(f"{path}: no {missing} folder", SEG_LAYOUT)
    images = _images(image_folder)
    if not images:
        raise _fail(f"{image_folder} holds no image (expected {', '.join(IMAGE_SUFFIXES)} files)", SEG_LAYOUT)
    masks = _match_masks(images, image_folder, mask_folder, SEG_LAYOUT)
    _require_masks(images, masks, mask_folder, "a segmentor learns from every image's mask", SEG_LAYOUT)
    if classes is not None:
        names = _class_names(classes, "the classes argument")
    elif (path / "classes.yaml").is_file():
        names = _read_classes_yaml(path / "classes.yaml")
    else:
        names = _classes_from_masks([masks[p] for p in images])
    return SegData(root=path, images=tuple(images), masks={p: masks[p] for p in images}, classes=names)


def _class_names(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise _fail(f"{source}: expected a list of class names, background first; got {type(value).__name__}",
                    SEG_LAYOUT)
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise _fail(f"{source}: expected non-empty strings as class names, got {bad[0]!r}", SEG_LAYOUT)
    if len(names) < 2:
        raise _fail(f"{source}: expected the background and at least one defect class, got {list(names)}",
                    SEG_LAYOUT)
    if len(names) > IGNORE_INDEX:
        raise _fail(f"{source}: {len(names)} classes, expected at most {IGNORE_INDEX} (mask value {IGNORE_INDEX} "
                    f"is the ignore index)", SEG_LAYOUT)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise _fail(f"{source}: class names must be unique, {twice} appear more than once", SEG_LAYOUT)
    return names


def _read_classes_yaml(path: Path) -> tuple[str, ...]:
    import yaml  # only here: a classes.yaml is optional

    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _fail(f"{path}: not readable as YAML ({error}); expected a list of class names, background first",
                    SEG_LAYOUT) from None
    return _class_names(value, str(path))


def read_mask(path: str | Path) -> np.ndarray:
    """A mask's class indices as an integer ``(H, W)`` array, read as mmseg reads labels.

    Pillow, as mmseg's ``LoadAnnotations`` (its default ``imdecode_backend='pillow'``): a palette
    PNG gives its palette indices, not the colours OpenCV would expand them to. A colour mask is
    accepted when its channels are equal (a grey mask saved as RGB); otherwise it is an error.

    Raises:
        LayoutError: the file is unreadable, has several different channels or non-integer values.
    """
    from PIL import Image, UnidentifiedImageError  # only here: the runtime install has no Pillow

    path = Path(path)
    try:
        with Image.open(path) as image:
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise _fail(f"mask {path} unreadable ({error})", SEG_LAYOUT) from None
    if values.ndim == 3:
        if not all(np.array_equal(values[..., 0], values[..., c]) for c in range(1, values.shape[2])):
            raise _fail(f"mask {path} has {values.shape[2]} different channels; expected a single-channel "
                        f"(grey or palette) image of class indices", SEG_LAYOUT)
        values = values[..., 0]
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if not np.issubdtype(values.dtype, np.integer):
        raise _fail(f"mask {path} holds {values.dtype} values; expected integer class indices", SEG_LAYOUT)
    return values


def _classes_from_masks(masks: Sequence[Path]) -> tuple[str, ...]:
    largest = 0
    for mask in masks:
        values = np.unique(read_mask(mask))
        if values.size and values[0] < 0:
            raise _fail(f"mask {mask} holds the negative value {values[0]}; expected class indices from 0",
                        SEG_LAYOUT)
        values = values[values != IGNORE_INDEX]
        if values.size:
            largest = max(largest, int(values[-1]))
    if largest == 0:
        raise _fail(f"no mask of {masks[0].parent} marks a defect (all pixels are 0 or {IGNORE_INDEX}, the ignore "
                    f"index); masks hold class indices 1, 2, ... for defects (masks saved as 0/255 need 255 "
                    f"turned into 1)", SEG_LAYOUT)
    return ("background", *(f"defect_{i}" for i in range(1, largest + 1)))


def check_mask_values(data: SegData) -> None:
    """Read every mask of ``data`` and check its values are class indices of ``data.classes`` or 255 (ignore).

    A value past the last class would only surface mid-training, as an index error in the loss;
    here it names the mask. Reads every mask: call it where the masks are read anyway.

    Raises:
        LayoutError: naming the first mask with a value outside ``0 .. len(classes) - 1`` and 255.
    """
    top = len(data.classes) - 1
    for image in data.images:
        mask = data.masks[image]
        values = np.unique(read_mask(mask))
        bad = values[((values < 0) | (values > top)) & (values != IGNORE_INDEX)]
        if bad.size:
            raise _fail(f"mask {mask} holds the value(s) {bad[:_SHOWN].tolist()}; expected 0 .. {top} for the "
                        f"classes {list(data.classes)} or {IGNORE_INDEX} (ignore)", SEG_LAYOUT)
