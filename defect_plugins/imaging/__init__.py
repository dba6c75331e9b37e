"""Image code shared by training and the runtime: the package's bottom layer.

numpy, OpenCV, simplejpeg and the standard library only, and nothing else of ``defect_plugins``
(an import-linter contract in ``pyproject.toml`` keeps it so): the mmpretrain/mmseg transforms
import it without pulling in OpenVINO, and the runtime-only install (``DefectInferencer``,
``defect-infer``, ``defect-station``) imports it without torch. Before, this code lived in
``defect_plugins.deploy``, and training transforms imported deployment to reach it.

===========================  ===============================================================
:mod:`.files`                ``IMAGE_SUFFIXES``, ``list_images``, ``read_bgr`` (checked read)
:mod:`.decode`               the one check-and-decode of image bytes (size limits, truncation)
:mod:`.geometry`             frame <-> model input grid (``stretch``, ``pad_square``)
:mod:`.paper_segmentation`   the RKD-SARSN paper's Otsu chain (the steel views)
:mod:`.quantify`             region measurement and grading (area, perimeter, K)
===========================  ===============================================================
"""
from __future__ import annotations

from .files import IMAGE_SUFFIXES, ImageReadError, list_images, read_bgr

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "list_images", "read_bgr"]
