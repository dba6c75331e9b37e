"""The paper's measurements (Huang et al. 2023, section 3.2, Table 7) on masks with known answers, and its
segmentation chain."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.metadata import ModelMetadata
from defect_plugins.deploy.families import PostSettings
from defect_plugins.deploy.families import classifier as classifier_family
from defect_plugins.imaging.paper_segmentation import PaperSegmentation, contrast_stretch, otsu_mask, segment_defects
from defect_plugins.imaging.quantify import image_totals, quantify_mask
from tests.fixtures.station import steel_image


def _check_totals(report, shape):
    """Table 7's per-image figures are the sums of the regions', K and the area ratio follow from them."""
    totals = report.totals
    area = sum(region.area for region in report.regions)
    perimeter = sum(region.perimeter for region in report.regions)
    assert totals.num_regions == len(report.regions)
    assert totals.area == area and totals.perimeter == pytest.approx(perimeter)
    assert totals.area_ratio == pytest.approx(area / (shape[0] * shape[1]))
    assert totals.k == pytest.approx(perimeter / area)
    assert (totals.image_height, totals.image_width) == shape
    return totals


def test_filled_rectangle():
    mask = np.zeros((240, 320), np.uint8)
    mask[40:140, 60:240] = 1  # 100 x 180 pixels
    report = quantify_mask(mask)
    (region,) = report.regions
    assert region.area == 100 * 180  # exact
    assert region.perimeter == pytest.approx(2 * (100 + 180), rel=0.02)
    assert region.centroid == pytest.approx((149.5, 89.5))
    totals = _check_totals(report, mask.shape)
    assert totals.area_ratio == pytest.approx(18000 / 76800)
    assert totals.k == pytest.approx(region.perimeter / 18000)


@pytest.mark.parametrize("radius", [25, 40, 70])
def test_disc(radius):
    mask = np.zeros((200, 200), np.uint8)
    yy, xx = np.mgrid[:200, :200]
    inside = (xx - 100.3) ** 2 + (yy - 99.6) ** 2 <= radius ** 2
    mask[inside] = 1
    report = quantify_mask(mask)
    (region,) = report.regions
    assert region.area == int(inside.sum())  # exact: every pixel of the drawn disc
    assert region.area == pytest.approx(math.pi * radius ** 2, rel=0.02)
    assert region.perimeter == pytest.approx(2 * math.pi * radius, rel=0.02)
    totals = _check_totals(report, mask.shape)
    assert totals.k == pytest.approx(2 / radius, rel=0.03)  # K = P / A = 2 / r for a disc, in 1/pixel


def test_two_separate_regions_and_rotated_edges():
    mask = np.zeros((300, 300), np.uint8)
    box = cv2.boxPoints(((90, 90), (120, 60), 30))  # a 120 x 60 rectangle turned by 30 degrees
    cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    cv2.circle(mask, (220, 220), 40, 1, -1)
    report = quantify_mask(mask)
    assert len(report.regions) == 2
    rectangle = min(report.regions, key=lambda region: region.centroid[0])
    disc = max(report.regions, key=lambda region: region.centroid[0])
    assert rectangle.perimeter == pytest.approx(2 * (120 + 60), rel=0.02)  # the staircase is straightened
    assert disc.perimeter == pytest.approx(2 * math.pi * 40, rel=0.02)
    assert rectangle.area + disc.area == int(mask.sum())
    totals = _check_totals(report, mask.shape)
    assert totals.k == pytest.approx((rectangle.perimeter + disc.perimeter) / (rectangle.area + disc.area))


def test_k_is_per_pixel_so_it_halves_at_twice_the_resolution():
    small, large = np.zeros((100, 100), np.uint8), np.zeros((200, 200), np.uint8)
    cv2.circle(small, (50, 50), 20, 1, -1)  # the same part photographed at twice the resolution
    cv2.circle(large, (100, 100), 40, 1, -1)
    k_small = quantify_mask(small).totals.k
    k_large = quantify_mask(large).totals.k
    assert k_large == pytest.approx(k_small / 2, rel=0.05)
    assert quantify_mask(small).totals.area_ratio == pytest.approx(quantify_mask(large).totals.area_ratio, rel=0.02)


def test_totals_of_nothing_and_bad_shapes():
    totals = quantify_mask(np.zeros((10, 20), np.uint8)).totals
    assert (totals.num_regions, totals.area, totals.k, totals.area_ratio) == (0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="height, width"):
        image_totals([], (0, 5))


def test_chain_finds_a_dark_blob_on_textured_steel():
    image = steel_image(3)
    views = segment_defects(image)
    assert views.grey.shape == views.bilateral.shape == views.stretched.shape == views.mask.shape == (200, 200)
    assert views.stretched.min() == 0 and views.stretched.max() == 255
    assert not views.defect_is_bright  # the blob is the dark minority
    truth = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) < 100
    found = views.mask.astype(bool)
    assert (found & truth).sum() / (found | truth).sum() > 0.9  # IoU with the drawn blob
    (region,) = quantify_mask(views.mask, min_area=4).regions
    assert region.area == pytest.approx(truth.sum(), rel=0.1)


def test_chain_polarity_and_flat_images():
    image = np.full((64, 64), 100, np.uint8)
    image[10:20, 10:20] = 220  # a small bright patch
    _, _, bright = otsu_mask(image)
    assert bright
    assert segment_defects(image, PaperSegmentation(polarity="bright", kernel=1)).mask.sum() == 100
    assert segment_defects(image, PaperSegmentation(polarity="dark", kernel=1)).mask.sum() == 64 * 64 - 100
    assert segment_defects(image, PaperSegmentation(polarity="minority", kernel=1)).mask.sum() == 100
    # the opening drops what is thinner than the element: the square loses its four corner pixels, a speck goes
    speck = image.copy()
    speck[40, 40] = 220
    assert segment_defects(speck, PaperSegmentation(polarity="bright", kernel=3)).mask.sum() == 96
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert segment_defects(flat).mask.sum() == 0 and np.array_equal(contrast_stretch(flat), flat)
    with pytest.raises(ValueError, match="polarity"):
        PaperSegmentation(polarity="up")
    with pytest.raises(ValueError, match="uint8"):
        segment_defects(np.zeros((8, 8), np.float32))


def test_classifier_postprocess_quantifies_the_class_in_the_image():
    """What defect-infer and the station get for a classifier: the paper's regions, labelled with the class."""
    image = steel_image(5, defect="scratch")
    metadata = ModelMetadata(family="classifier", precision="FP32", input_size=(32, 32),
                             class_names=["crazing", "scratches"], outputs=["probs"])
    result = classifier_family.postprocess(image, [np.array([[0.2, 0.8]], np.float32)], metadata, PostSettings(),
                                           "part.png")
    assert result.label == "scratches" and result.confidence == pytest.approx(0.8)
    assert result.regions and all(region["class"] == "scratches" for region in result.regions)
    assert result.defect_mask.shape == (200, 200)
    totals = result.totals()
    assert totals["area"] == result.defect_mask.sum() == sum(region["area"] for region in result.regions)
    assert result.to_dict()["totals"] == totals and result.to_dict()["num_regions"] == len(result.regions)
    picture = result.overlay()
    assert picture.shape == image.shape and (picture[:, :, 2] == 255).any()  # red boxes


def test_mmpretrain_transform_runs_the_same_functions():
    pytest.importorskip("mmpretrain")
    import defect_plugins.cls  # noqa: F401  (registers the transforms)
    from mmpretrain.registry import TRANSFORMS

    image = steel_image(7)
    out = TRANSFORMS.build(dict(type="SteelOtsuDefectMask", kernel=3))({"img": image.copy(), "gt_label": 2})
    assert np.array_equal(out["defect_mask"], segment_defects(image).mask)
    assert out["gt_label"] == 2 and np.array_equal(out["img"], image)
    stretched = TRANSFORMS.build(dict(type="HistogramContrastStretch", low=1, high=99))({"img": image.copy()})["img"]
    assert np.array_equal(stretched, contrast_stretch(image, 1, 99))


@pytest.mark.parametrize("low, high", [(1.0, 99.0), (0.0, 100.0), (2.5, 97.5), (10.0, 11.0)])
def test_contrast_stretch_of_uint8_equals_the_sorting_percentiles(low, high):
    rng = np.random.default_rng(int(low * 10))
    for image in (rng.integers(0, 256, (37, 53), dtype=np.uint8), rng.integers(90, 120, (200, 200), dtype=np.uint8),
                  steel_image(2)[:, :, 0]):
        lower, upper = np.percentile(image, [low, high])
        expected = np.clip((image.astype(np.float64) - lower) * (255.0 / (upper - lower)), 0, 255).round()
        got = contrast_stretch(image, low, high)
        assert got.dtype == np.uint8 and np.array_equal(got, expected.astype(np.uint8))


def test_classifier_without_quantification_gives_the_class_only():
    meta = ModelMetadata(family="classifier", precision="FP32", input_size=(32, 32), class_names=["a", "b"],
                         outputs=["probs"])
    image = steel_image(1)
    result = classifier_family.postprocess(image, [np.array([[0.2, 0.8]])], meta, PostSettings(quantify=False), "x")
    assert result.label == "b" and result.confidence == pytest.approx(0.8)
    assert result.regions == [] and result.defect_mask is None and "otsu_threshold" not in result.extra
    full = classifier_family.postprocess(image, [np.array([[0.2, 0.8]])], meta, PostSettings(), "x")
    assert full.defect_mask is not None and full.label == "b"
