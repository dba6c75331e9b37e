"""Image loading that fails with a clear message on an unreadable file.

mmcv's ``LoadImageFromFile`` reports an undecodable file with a bare ``assert`` (gone under
``python -O``) and a truncated or empty file with whatever error OpenCV raises. This subclass
turns both into :class:`ImageReadError` naming the file, so a broken image in a production
data folder is found at once.
"""
from __future__ import annotations

from mmcv.transforms import LoadImageFromFile
from mmpretrain.registry import TRANSFORMS


class ImageReadError(ValueError):
    """An image file that exists in the data list but cannot be decoded."""


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises :class:`ImageReadError` (naming the file) on bad input."""

    def transform(self, results: dict) -> dict | None:
        path = results.get("img_path")
        try:
            loaded = super().transform(results)
        except FileNotFoundError as error:
            raise ImageReadError(f"image file {path} not found") from error
        except Exception as error:  # cv2.error, AssertionError('failed to load image'), OSError
            if self.ignore_empty:
                return None
            raise ImageReadError(f"cannot read image {path}: not a decodable image ({error})") from error
        if loaded is not None and loaded.get("img") is None:
            raise ImageReadError(f"cannot read image {path}: decoder returned nothing")
        return loaded
