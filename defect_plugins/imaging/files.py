"""Image files on disk: which files are images, and reading one checked.

One definition for the whole package (training folders, INT8 calibration, ``defect-infer``,
``defect-station``'s watched folder), because four copies had drifted to three different suffix
sets: a folder of TIFFs was an empty folder to some readers and a dataset to others. The suffixes
are those of the formats :mod:`.decode` checks and decodes (PNG, JPEG, BMP, TIFF:
:data:`.decode.IMAGE_SUFFIXES`); a file listed here is one :func:`read_bgr` can read.

:func:`read_bgr` is the package's one check-and-decode of a file (:func:`.decode.read_image`, as
the station's uploads): truncated or partly decodable files, size bombs and images under 16 px
are refused with an :class:`ImageReadError` naming the file, never graded with a grey patch where
the data was missing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .decode import IMAGE_SUFFIXES, ImageRejected, read_image

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "list_images", "read_bgr"]


class ImageReadError(OSError):
    """A file could not be decoded as an image; the message names the file and what was expected."""


def read_bgr(path: str | Path) -> np.ndarray:
    """An image file as uint8 BGR ``(H, W, 3)``, checked; raises :class:`ImageReadError` naming the file."""
    try:
        return read_image(path)
    except ImageRejected as error:
        raise ImageReadError(str(error)) from None


def list_images(folder: str | Path, *, skip_hidden: bool = False) -> list[Path]:
    """All regular files under ``folder`` (recursively) with an image suffix, sorted.

    ``skip_hidden`` leaves out files under ``folder`` whose name or folder starts with ``.``
    (editor and OS litter such as ``._x.png``). Raises ``FileNotFoundError`` naming ``folder``
    when it is not a folder; an empty list is the caller's to judge.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (expected a folder of {', '.join(IMAGE_SUFFIXES)} files)")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not (skip_hidden and any(part.startswith(".") for part in p.relative_to(folder).parts)))
