"""defect_plugins.fit.calibration: exact intervals, thresholds for a false-reject target, rates."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from defect_plugins.fit.calibration import (
    CalibrationError,
    Rate,
    clopper_pearson,
    false_reject,
    rate,
    recall,
    recall_by_group,
    required_calibration_images,
    supported_target,
    threshold_for_false_reject,
)


def test_clopper_pearson_known_values():
    lower, upper = clopper_pearson(0, 100)
    assert lower == 0.0 and upper == pytest.approx(1 - 0.025 ** (1 / 100), abs=1e-10)
    assert upper == pytest.approx(0.036217, abs=1e-6)
    lower, upper = clopper_pearson(5, 100)
    assert (lower, upper) == pytest.approx((0.016431, 0.112835), abs=1e-6)
    assert clopper_pearson(100, 100) == pytest.approx((0.025 ** (1 / 100), 1.0), abs=1e-10)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    lower, upper = clopper_pearson(1, 1, confidence=0.9)
    assert (lower, upper) == pytest.approx((0.05, 1.0), abs=1e-10)  # P(X >= 1) = p = alpha / 2


def test_clopper_pearson_matches_scipy():
    beta = pytest.importorskip("scipy.stats").beta
    for k, n in [(1, 2), (3, 7), (1, 100), (37, 1000), (999, 1000), (12, 3000)]:
        for confidence in (0.9, 0.95, 0.99):
            alpha = 1 - confidence
            expected = (beta.ppf(alpha / 2, k, n - k + 1), beta.ppf(1 - alpha / 2, k + 1, n - k))
            assert clopper_pearson(k, n, confidence) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(("k", "n", "confidence"), [(-1, 5, 0.95), (6, 5, 0.95), (1.5, 5, 0.95), (1, 5, 1.0)])
def test_clopper_pearson_refuses_bad_arguments(k, n, confidence):
    with pytest.raises(ValueError):
        clopper_pearson(k, n, confidence)


def test_rate():
    value = rate(5, 100)
    assert isinstance(value, Rate) and value.value == 0.05 and value.k == 5 and value.n == 100
    assert (value.lower, value.upper) == pytest.approx((0.016431, 0.112835), abs=1e-6)
    empty = rate(0, 0)
    assert math.isnan(empty.value)
    assert empty.to_dict() == {"k": 0, "n": 0, "value": None, "lower": 0.0, "upper": 1.0, "confidence": 0.95}
    json.dumps(empty.to_dict(), allow_nan=False)


def test_required_calibration_images_and_supported_target():
    assert [required_calibration_images(t) for t in (0.01, 0.05, 0.07, 0.1, 0.3, 0.5)] == [100, 20, 15, 10, 4, 2]
    for bad in (0, 1, -0.1, float("nan")):
        with pytest.raises(CalibrationError, match="max_false_reject"):
            required_calibration_images(bad)
    assert [supported_target(n) for n in (0, 1, 2, 9, 10, 30, 100, 499)] == [None, None, 0.5, 0.2, 0.1, 0.05,
                                                                             0.01, 0.005]


def test_threshold_on_a_known_distribution():
    scores = np.arange(1000) / 1000
    threshold = threshold_for_false_reject(np.random.default_rng(0).permutation(scores), 0.01)
    assert threshold == np.nextafter(0.989, np.inf) and threshold > 0.989
    assert int(np.count_nonzero(scores >= threshold)) == 10
    assert false_reject(scores, threshold).k == 10
    assert threshold_for_false_reject(scores, 0.0105) == threshold  # floor(10.5) = 10 allowed


def test_ties_never_push_more_over():
    scores = [0.0] * 90 + [0.5] * 10  # 5 % allowed = 5 images, but 10 share the score at the cut
    threshold = threshold_for_false_reject(scores, 0.05)
    assert threshold > 0.5 and false_reject(scores, threshold).k == 0
    same = [0.3] * 200
    assert false_reject(same, threshold_for_false_reject(same, 0.01)).k == 0
    mixed = [0.1] * 95 + [0.2, 0.4, 0.4, 0.7, 0.9]
    # 3 allowed: the cut falls on the two 0.4 scores, which both stay accepted
    assert false_reject(mixed, threshold_for_false_reject(mixed, 0.03)).k == 2


def test_too_few_images_says_what_would_work():
    with pytest.raises(CalibrationError) as error:
        threshold_for_false_reject(np.linspace(0, 1, 30), 0.01)
    message = str(error.value)
    assert "at least 100 defect-free calibration images" in message and "there are 30" in message
    assert "Add 70" in message and "max_false_reject=0.05" in message
    with pytest.raises(CalibrationError, match="fewer than 2 images"):
        threshold_for_false_reject([0.3], 0.01)
    with pytest.raises(CalibrationError, match="there are 0"):
        threshold_for_false_reject([], 0.1)


def test_non_finite_scores_are_refused():
    scores = np.linspace(0, 1, 200)
    scores[17] = np.nan
    with pytest.raises(CalibrationError, match="index 17"):
        threshold_for_false_reject(scores, 0.01)
    with pytest.raises(CalibrationError, match="not finite"):
        recall([0.5, np.inf], 0.3)
    with pytest.raises(CalibrationError, match="NaN"):
        false_reject([0.5], float("nan"))


def test_rates_use_score_at_least_threshold():
    good = [0.1, 0.2, 0.5, 0.5001]
    assert false_reject(good, 0.5).k == 2 and false_reject(good, 0.5).n == 4
    defects = np.array([0.4, 0.5, 0.9])
    assert recall(defects, 0.5).value == pytest.approx(2 / 3)
    by_group = recall_by_group({"scratch": [0.9, 0.95], "dent": [0.1, 0.6, 0.7, 0.2], "none": []}, 0.5)
    assert list(by_group) == ["dent", "none", "scratch"]
    assert (by_group["dent"].k, by_group["dent"].n) == (2, 4)
    assert by_group["scratch"].value == 1.0 and by_group["scratch"].upper == 1.0
    assert by_group["scratch"].lower == pytest.approx(0.025 ** 0.5, abs=1e-10)
    assert by_group["none"].n == 0 and math.isnan(by_group["none"].value)
