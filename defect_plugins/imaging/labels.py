"""Text on pictures that never overlaps other text or leaves the picture: region labels and captions.

A label is a box of text on a filled background, anchored at the box of the thing it names.
:func:`place_labels` puts each label at the first free spot among a few around its anchor (above,
below, beside, inside the top corner, then a few rows further away), in the order given (callers
pass the largest regions first, so those keep their labels). A spot is free when it overlaps no
label placed before and nothing ``reserved`` (a caption); spots that also keep clear of the things
labelled (``avoid``: the regions' boxes) are tried first. A label with no free spot, or one wider
or taller than the picture, is dropped. Captions (a family's one line: class and
confidence, score and threshold) sit at the top or bottom edge and shrink to the picture's width
(:func:`place_caption`); they are placed before the labels, which then avoid them. Sizes follow the
picture's short side, so a 219 px image and a 4096 px frame get text of the same relative size.

The boxes are what is drawn (:func:`draw_label` fills exactly the box), so a test can check the
layout with the same functions the overlays use. OpenMMLab's visualisers
(``mmengine/visualization/visualizer.py``, ``draw_texts``) write each label at its box, so the
labels of close boxes overlap; an operator reads these overlays on small images, hence the greedy
placement here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in pixels (top-left origin)
FONT = cv2.FONT_HERSHEY_SIMPLEX
SMALLEST_SCALE = 0.25  # HERSHEY_SIMPLEX at 0.25: digits about 5 px high, still legible on a screen
ROWS_AWAY = 3  # how many label heights above and below the anchor are still tried


@dataclass(frozen=True)
class TextStyle:
    """OpenCV font scale and stroke, and the padding between the text and its box's edge (pixels)."""

    scale: float
    thickness: int = 1
    pad: int = 1


def text_style(shape: Sequence[int], *, reference_side: float, minimum: float = 0.3) -> TextStyle:
    """A style that scales with the picture: font scale ``min(height, width) / reference_side``, at least ``minimum``.

    The stroke thickens with the scale (1 px up to scale 1.5), so text stays as bold on a large frame.
    """
    scale = max(minimum, min(int(shape[0]), int(shape[1])) / reference_side)
    thickness = max(1, int(round(scale / 1.5)))
    return TextStyle(scale=scale, thickness=thickness, pad=max(1, thickness))


def label_size(text: str, style: TextStyle) -> tuple[int, int]:
    """``(width, height)`` of the box :func:`draw_label` fills for ``text`` (text, baseline, stroke, padding)."""
    (width, height), baseline = cv2.getTextSize(text, FONT, style.scale, style.thickness)
    return width + 2 * style.pad + style.thickness, height + baseline + 2 * style.pad + style.thickness


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share any pixel (boxes that only touch do not overlap)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(box: Box, shape: Sequence[int]) -> bool:
    """Whether ``box`` lies wholly within a picture of ``(height, width, ...)``."""
    x, y, w, h = box
    return x >= 0 and y >= 0 and x + w <= int(shape[1]) and y + h <= int(shape[0])


def _candidates(anchor: Box, size: tuple[int, int], shape: Sequence[int]) -> list[Box]:
    """Spots for a label of ``size`` around ``anchor``, best first, each moved into the picture."""
    ax, ay, aw, ah = anchor
    w, h = size
    spots = [(ax, ay - h), (ax, ay + ah), (ax + aw, ay), (ax - w, ay), (ax, ay), (ax + aw - w, ay - h),
             (ax + aw - w, ay + ah), (ax + aw, ay + ah - h), (ax - w, ay + ah - h)]
    for step in range(2, ROWS_AWAY + 2):
        spots += [(ax, ay - step * h), (ax, ay + ah + (step - 1) * h)]
    height, width = int(shape[0]), int(shape[1])
    boxes: list[Box] = []
    for x, y in spots:
        box = (min(max(int(x), 0), width - w), min(max(int(y), 0), height - h), w, h)
        if box not in boxes:
            boxes.append(box)
    return boxes


def _window(mask: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``box`` in ``mask`` (a view)."""
    x, y, w, h = box
    return mask[y:y + h, x:x + w]


def place_labels(shape: Sequence[int], anchors: Sequence[Box], texts: Sequence[str], style: TextStyle, *,
                 reserved: Sequence[Box] = (), avoid: Sequence[Box] = ()) -> list[Box | None]:
    """One box per label (``None``: dropped), none overlapping another or ``reserved``, all inside the picture.

    Labels are placed in the order given: pass the most important (the largest region) first. A
    spot that also clears every box of ``avoid`` is preferred; one that covers part of them is
    taken only when there is no other.
    """
    if len(anchors) != len(texts):
        raise ValueError(f"place_labels: {len(anchors)} anchors but {len(texts)} texts; expected one text each")
    height, width = int(shape[0]), int(shape[1])
    # occupancy masks: a spot is checked in its own few pixels, whatever the number of labels and regions
    taken = np.zeros((height, width), bool)
    blocked = np.zeros((height, width), bool)
    for mask, boxes in ((taken, reserved), (blocked, avoid)):
        for box in boxes:
            if box is not None:
                x, y, w, h = box
                mask[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    placed: list[Box | None] = []
    for anchor, text in zip(anchors, texts):
        size = label_size(text, style)
        box = None
        if size[0] <= width and size[1] <= height:
            for spot in _candidates(anchor, size, shape):
                if _window(taken, spot).any():
                    continue
                if not _window(blocked, spot).any():
                    box = spot  # free and clear of every region: the best there is
                    break
                box = box or spot  # free, but covers a region: kept in case nothing better comes
        if box is not None:
            _window(taken, box)[...] = True
        placed.append(box)
    return placed


def place_caption(shape: Sequence[int], text: str, style: TextStyle, *,
                  bottom: bool = False) -> tuple[Box, TextStyle] | None:
    """The box of a one-line caption at the top-left (or bottom-left) corner, and the style that fits it.

    The caption shrinks (down to :data:`SMALLEST_SCALE`) to the picture's width; ``None`` when even
    that does not fit (a picture a few dozen pixels wide).
    """
    height, width = int(shape[0]), int(shape[1])
    size = label_size(text, style)
    if size[0] > width:
        scale = max(SMALLEST_SCALE, style.scale * width / size[0])
        while scale >= SMALLEST_SCALE:
            style = replace(style, scale=scale)
            size = label_size(text, style)
            if size[0] <= width:
                break
            scale *= 0.95
    if size[0] > width or size[1] > height:
        return None
    return (0, height - size[1] if bottom else 0, size[0], size[1]), style


def draw_label(canvas: np.ndarray, text: str, box: Box, style: TextStyle, colour: Sequence[int],
               background: Sequence[int] = (0, 0, 0)) -> None:
    """Fill ``box`` with ``background`` and write ``text`` in it (in place; nothing is drawn outside the box)."""
    x, y, w, h = box
    (_, text_height), _ = cv2.getTextSize(text, FONT, style.scale, style.thickness)
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), tuple(int(c) for c in background), cv2.FILLED)
    inner = canvas[y:y + h, x:x + w]  # a view: the text is clipped to the box
    origin = (style.pad + style.thickness // 2, style.pad + (style.thickness + 1) // 2 + text_height)
    cv2.putText(inner, text, origin, FONT, style.scale, tuple(int(c) for c in colour), style.thickness, cv2.LINE_AA)
