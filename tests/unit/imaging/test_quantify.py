"""Defect quantification against hand-drawn masks with known geometry."""
from __future__ import annotations

import numpy as np
import pytest

from defect_plugins.imaging.quantify import draw_regions, quantify_mask


def test_square():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:40, 30:50] = 255  # 20 x 20 square
    (region,) = quantify_mask(mask).regions
    assert region.area == 400
    assert region.centroid == pytest.approx((39.5, 29.5))
    # boundary traced through the border pixels' centres: 4 * (20 - 1)
    assert region.perimeter == pytest.approx(76.0)
    assert region.area_ratio == pytest.approx(0.04)
    assert region.k == pytest.approx(76 / 400)
    assert region.bbox == (30, 20, 20, 20)


def test_ring_counts_its_hole_in_area_and_perimeter():
    mask = np.zeros((64, 64), np.uint8)
    mask[10:50, 10:50] = 1  # 40 x 40
    mask[20:40, 20:40] = 0  # hole 20 x 20
    (region,) = quantify_mask(mask).regions
    assert region.area == 40 * 40 - 20 * 20
    assert region.centroid == pytest.approx((29.5, 29.5))
    outer, inner = 4 * 39, 4 * 21  # the hole's boundary runs through the pixels around it
    assert region.perimeter == pytest.approx(outer + inner, rel=0.02)


def test_two_blobs_are_two_regions_largest_first():
    mask = np.zeros((50, 80), bool)
    mask[5:15, 5:15] = True  # 100 px
    mask[30:35, 60:70] = True  # 50 px
    report = quantify_mask(mask)
    assert [r.area for r in report.regions] == [100, 50]
    assert report.regions[1].centroid == pytest.approx((64.5, 32.0))
    assert quantify_mask(mask, min_area=60).regions[0].area == 100


def test_regions_carry_measurements_not_grades():
    """A region is measured; the grade belongs to the image (a rule file over the totals, deploy/grading)."""
    mask = np.zeros((100, 100), np.uint8)
    mask[0:3, 0:3] = 1  # tiny
    mask[50:62, 50:62] = 1  # 144 px = 1.44 %
    mask[90, 10:60] = 1  # a one-pixel-wide line: K ~ 2, crack-like
    report = quantify_mask(mask)
    assert [region.area for region in report.regions] == [144, 50, 9]
    assert report.regions[1].k == pytest.approx(2 * 49 / 50)
    keys = {"label", "area", "centroid", "perimeter", "area_ratio", "k", "bbox"}
    assert all(set(region.to_dict()) == keys for region in report.regions)
    assert set(report.to_dict()) == {"num_regions", "regions", "totals"}
    assert report.totals.area == 203 and report.totals.area_ratio == pytest.approx(0.0203)


def test_empty_mask_and_bad_shape():
    assert quantify_mask(np.zeros((8, 8))).regions == []
    with pytest.raises(ValueError, match="2-D"):
        quantify_mask(np.zeros((2, 8, 8)))


def test_drawing_changes_only_a_copy():
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 1
    drawn = draw_regions(image, quantify_mask(mask))
    assert image.sum() == 0 and drawn.sum() > 0
