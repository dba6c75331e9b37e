"""Region labels and captions on overlays: never overlapping, never outside the picture, scaled to it.

The boxes are computed with the functions the drawing uses (``region_label_boxes``,
``plan_caption``), and the drawn pixels are checked to lie inside them.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from defect_plugins.imaging.labels import inside, label_size, overlaps, place_caption, text_style
from defect_plugins.imaging.quantify import (DefectRegion, draw_regions, quantify_mask, region_label_boxes,
                                             region_label_style)


def _crowded_mask(size: int = 219) -> np.ndarray:
    """Many close regions of different sizes (a 9 x 9 grid, 8 px apart, sides 2 to 6 px)."""
    mask = np.zeros((size, size), np.uint8)
    rng = np.random.default_rng(0)
    for row, col in itertools.product(range(9), range(9)):
        side = int(rng.integers(2, 7))
        y, x = 30 + row * 8, 30 + col * 8
        mask[y:y + side, x:x + side] = 1
    mask[0:3, 200:219] = 1  # on the top edge, at the right border
    mask[210:219, 0:5] = 1  # in the bottom-left corner
    return mask


def _assert_layout(boxes, shape, reserved=()):
    placed = [box for box in boxes if box is not None]
    for box in placed:
        assert inside(box, shape), box
        assert not any(overlaps(box, other) for other in reserved), box
    for a, b in itertools.combinations(placed, 2):
        assert not overlaps(a, b), (a, b)
    return placed


def test_crowded_labels_on_a_219_px_image_never_overlap_or_leave_it():
    mask = _crowded_mask()
    regions = quantify_mask(mask).regions
    assert len(regions) == 83
    caption, _ = place_caption(mask.shape, "defect 0.73/0.50", text_style(mask.shape, reference_side=300.0),
                               bottom=True)
    boxes = region_label_boxes(mask.shape, regions, reserved=[caption])
    placed = _assert_layout(boxes, mask.shape, reserved=[caption])
    assert 0 < len(placed) < len(regions)  # no room for all: some are dropped, the rest placed
    assert boxes[0] is not None  # the largest region keeps its label


def test_with_room_for_one_label_the_largest_region_keeps_it():
    style = region_label_style((40, 40))  # the smallest scale, which a picture this small gets
    width, height = label_size("2", style)
    shape = (height, 2 * width - 1)  # room for one label, not two side by side
    small = DefectRegion(label=1, area=4.0, centroid=(1.0, 1.0), perimeter=4.0, area_ratio=0.01, k=1.0,
                         bbox=(0, 0, 2, 2))
    large = DefectRegion(label=2, area=9.0, centroid=(width, 1.0), perimeter=8.0, area_ratio=0.02, k=0.9,
                         bbox=(width - 1, 0, 3, 3))
    boxes = region_label_boxes(shape, [small, large])  # listed smaller first: the area decides, not the order
    assert boxes[0] is None and boxes[1] is not None and inside(boxes[1], shape)


def test_drawn_labels_stay_inside_their_boxes():
    mask = _crowded_mask()
    image = np.full((219, 219, 3), 90, np.uint8)
    report = quantify_mask(mask)
    plain = draw_regions(image, report, labels=False)
    labelled = draw_regions(image, report)
    changed = np.argwhere((plain != labelled).any(axis=2))
    boxes = [box for box in region_label_boxes(image.shape, report.regions) if box is not None]
    covered = np.zeros(mask.shape, bool)
    for x, y, w, h in boxes:
        covered[y:y + h, x:x + w] = True
    assert len(changed) > 0 and covered[changed[:, 0], changed[:, 1]].all()


def test_labels_name_regions_by_position_or_given_text_not_by_grade():
    mask = np.zeros((219, 219), np.uint8)
    mask[20:60, 20:60] = 1
    mask[120:130, 150:160] = 1
    regions = quantify_mask(mask).regions
    style = text_style(mask.shape, reference_side=600.0)
    boxes = region_label_boxes(mask.shape, regions)
    assert [box[2:] for box in boxes] == [label_size("1", style), label_size("2", style)]
    named = region_label_boxes(mask.shape, regions, ["1 fold_mark", "2 edge_crack"])
    assert [box[2:] for box in named] == [label_size("1 fold_mark", style), label_size("2 edge_crack", style)]
    with pytest.raises(ValueError, match="2 regions but 1 texts"):
        region_label_boxes(mask.shape, regions, ["1"])


def test_text_scales_with_the_picture_and_captions_fit_its_width():
    small, large = text_style((219, 219), reference_side=300.0), text_style((2190, 2190), reference_side=300.0)
    assert large.scale == pytest.approx(10 * small.scale) and large.thickness > small.thickness
    text = "rolled-in_scale 0.95"
    box, style = place_caption((219, 90), text, text_style((219, 90), reference_side=300.0, minimum=0.35))
    assert inside(box, (219, 90)) and box[:2] == (0, 0) and style.scale < 0.35
    bottom, _ = place_caption((219, 219), text, small, bottom=True)
    assert inside(bottom, (219, 219)) and bottom[1] + bottom[3] == 219
    assert place_caption((8, 8), text, style) is None  # no room at all: no caption, rather than one cut off
