"""The drift watch on synthetic parts: no alarm on the same distribution, a named alarm on each kind of shift.

The reference is 300 images of a fixed generator (textured grey parts on a background, lighting,
texture and focus varying a little from part to part) with scores from a fixed distribution; the
streams are 400 images of the same generator under another seed, then with one change each.
"""
from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.drift import (
    DriftConfig,
    DriftReference,
    DriftState,
    DriftWatch,
    bin_counts,
    chi2_quantile,
    image_stats,
    load_drift_config,
    psi,
    quantile_edges,
)

SIZE = 200


def _part(rng: np.random.Generator) -> np.ndarray:
    """One textured grey part (BGR uint8) on a darker background."""
    noise = rng.normal(0.0, 1.0, (SIZE, SIZE)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.8, 1.2))
    texture *= rng.uniform(14.0, 18.0) / max(float(texture.std()), 1e-6)
    image = np.full((SIZE, SIZE), rng.normal(70.0, 4.0), np.float32)
    centre = (int(rng.integers(80, 120)), int(rng.integers(80, 120)))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(mask, centre, int(rng.integers(55, 70)), 1, -1)
    image[mask > 0] = rng.normal(130.0, 5.0) + texture[mask > 0]
    image += rng.normal(0.0, 2.0, image.shape).astype(np.float32)  # sensor noise
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _images(seed: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_part(rng) for _ in range(count)]


def _scores(seed: int, count: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.30 + shift, 0.05, count)


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    stats = [image_stats(image) for image in _images(0, 300)]
    values = {key: np.array([s[key] for s in stats]) for key in stats[0]}
    return DriftReference(values={"score": _scores(0, 300), **values}, score={"name": "pred_score"})


@pytest.fixture(scope="module")
def stream() -> list[np.ndarray]:
    return _images(1, 400)


def _run(reference: DriftReference, images: list[np.ndarray], scores: np.ndarray,
         config: DriftConfig | None = None) -> tuple[DriftWatch, list[DriftState]]:
    watch = DriftWatch(reference, config)
    changes = [change for image, score in zip(images, scores)
               if (change := watch.observe(float(score), image_stats(image))) is not None]
    return watch, changes


# --------------------------------------------------------------------------- the building blocks


def test_image_stats_measure_what_they_say() -> None:
    flat = np.full((300, 400, 3), 100, np.uint8)
    stats = image_stats(flat)
    assert stats == pytest.approx({"brightness": 100.0, "contrast": 0.0, "sharpness": 0.0}, abs=1e-6)
    part = _part(np.random.default_rng(5))
    sharp, blurred = image_stats(part), image_stats(cv2.GaussianBlur(part, (0, 0), 3))
    assert blurred["sharpness"] < 0.2 * sharp["sharpness"]
    brighter = image_stats(cv2.add(part, np.full_like(part, 40)))
    assert brighter["brightness"] == pytest.approx(sharp["brightness"] + 40, abs=1.0)
    grey = cv2.cvtColor(part, cv2.COLOR_BGR2GRAY)
    assert image_stats(grey) == pytest.approx(sharp)
    assert image_stats(grey.astype(np.uint16) * 257) == pytest.approx(sharp, rel=1e-3)
    assert image_stats(np.zeros((4096, 4096), np.uint8))["brightness"] == 0.0  # any size: resized first


def test_psi_is_zero_for_the_same_bins_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 2000)
    assert psi(reference, reference, 10) == pytest.approx(0.0, abs=1e-12)
    small, large = psi(reference, rng.normal(0.3, 1, 2000), 10), psi(reference, rng.normal(1.0, 1, 2000), 10)
    assert 0.05 < small < 0.2 < 0.5 < large
    edges = quantile_edges(reference, 10)
    assert len(edges) == 9 and np.abs(bin_counts(reference, edges) - 200).max() <= 1
    assert quantile_edges([1, 1, 1, 2, 2, 2], 10).tolist() == [2.0]  # ties: fewer bins, not empty ones
    assert psi(reference, [np.nan, *reference], 10) == pytest.approx(0.0, abs=1e-4)  # NaN left out


def test_noise_floor_follows_the_chi_square_approximation() -> None:
    assert chi2_quantile(0.99, 9) == pytest.approx(21.666, rel=0.01)
    assert chi2_quantile(0.95, 4) == pytest.approx(9.488, rel=0.01)
    config = DriftConfig()
    assert config.limits(300, 200, 10)[0] == pytest.approx((1 / 300 + 1 / 200) * chi2_quantile(0.999, 9))
    assert config.limits(100_000, 100_000, 10) == (0.1, 0.25)  # large samples: the usual reading
    assert DriftConfig(alpha=0).limits(10, 50, 10) == (0.1, 0.25)


# --------------------------------------------------------------------------- the watch on streams


def test_same_distribution_stays_ok(reference, stream) -> None:
    watch, changes = _run(reference, stream, _scores(1, 400))
    assert [c.level for c in changes] == ["ok"]  # collecting -> ok, once, and never an alarm
    state = watch.state()
    assert state["state"] == "ok" and state["tripped"] == []
    assert all(s["state"] == "ok" and s["n"] == 200 for s in state["signals"].values())


def test_brightness_shift_trips_drift_on_brightness(reference, stream) -> None:
    brighter = [cv2.add(image, np.full_like(image, 40)) for image in stream]
    watch, _ = _run(reference, brighter, _scores(1, 400))
    state = watch.state()
    assert state["state"] == "drift" and state["tripped"][0] == "brightness"
    assert state["signals"]["brightness"]["state"] == "drift" and state["signals"]["score"]["state"] == "ok"


def test_blur_trips_on_sharpness(reference, stream) -> None:
    blurred = [cv2.GaussianBlur(image, (0, 0), 3) for image in stream]
    watch, _ = _run(reference, blurred, _scores(1, 400))
    state = watch.state()
    assert state["state"] == "drift" and "sharpness" in state["tripped"]
    assert state["signals"]["sharpness"]["state"] == "drift" and state["signals"]["brightness"]["state"] == "ok"


def test_score_shift_trips_on_the_score(reference, stream) -> None:
    watch, _ = _run(reference, stream, _scores(1, 400, shift=0.1))
    state = watch.state()
    assert state["state"] == "drift" and state["tripped"] == ["score"]


def test_fewer_than_the_minimum_is_collecting(reference, stream) -> None:
    config = DriftConfig(min_count=50)
    watch, changes = _run(reference, stream[:49], _scores(1, 49), config)
    assert changes == [] and watch.state()["state"] == "collecting"
    assert all(s["psi"] is None and s["n"] == 49 for s in watch.state()["signals"].values())
    change = watch.observe(0.3, image_stats(stream[49]))
    assert change is not None and change.level == "ok"


def test_changes_are_returned_once_each(reference, stream) -> None:
    """collecting -> ok -> drift (the shift fills the window) -> ok (the line is back, perhaps through warn)."""
    good, shifted = _scores(1, 400), _scores(2, 400, shift=0.15)
    watch = DriftWatch(reference, DriftConfig(signals=("score",)))
    returned = [(i, c) for i, s in enumerate([*good[:100], *shifted[:200], *good[100:400]])
                if (c := watch.observe(float(s), None)) is not None]
    levels = [c.level for _, c in returned]
    assert levels[0] == "ok" and "drift" in levels and levels[-1] == "ok" and len(levels) <= 5, levels
    assert all(a.level != b.level or a.tripped != b.tripped for (_, a), (_, b) in zip(returned, returned[1:]))
    assert levels in (["ok", "drift", "ok"], ["ok", "drift", "warn", "ok"], ["ok", "warn", "drift", "warn", "ok"])
    assert returned[0][0] == 49  # the 50th value ends collecting
    assert all(isinstance(c, DriftState) and c.to_dict()["state"] == c.level for _, c in returned)
    drift = next(c for _, c in returned if c.level == "drift")
    assert drift.tripped == ("score",) and drift.psi["score"] > 0.25


def test_signals_missing_from_an_observation_are_skipped(reference, stream) -> None:
    watch = DriftWatch(reference)
    assert watch.observe(None, None) is None
    for image in stream[:60]:
        watch.observe(None, image_stats(image))  # a segmentor: no score
    state = watch.state()
    assert state["signals"]["score"]["n"] == 0 and state["signals"]["brightness"]["n"] == 60
    assert state["state"] == "ok"
    assert watch.observe(float("nan"), None) is None


def test_the_watch_is_thread_safe(reference) -> None:
    watch = DriftWatch(reference, DriftConfig(window=500, signals=("score",)))
    values = _scores(3, 4000)

    def feed(part: np.ndarray) -> None:
        for value in part:
            watch.observe(float(value), None)

    threads = [threading.Thread(target=feed, args=(part,)) for part in np.split(values, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = watch.state()
    assert state["observed"] == 4000 and state["signals"]["score"]["n"] == 500


def test_reference_round_trips_and_scores_only_references_work(tmp_path, reference, stream) -> None:
    path = tmp_path / "drift_reference.json"
    path.write_text(json.dumps(reference.to_dict()))
    loaded = DriftReference.load(path)
    assert loaded.signals == ["score", "brightness", "contrast", "sharpness"] and loaded.count == 300
    assert np.allclose(loaded.values["sharpness"], reference.values["sharpness"], rtol=1e-5)
    scores_only = DriftReference(values={"score": reference.values["score"]}, source="predictions.csv (scores only)")
    watch, _ = _run(scores_only, stream[:60], _scores(1, 60))
    assert watch.signals == ["score"] and watch.state()["reference"] == "predictions.csv (scores only)"
    with pytest.raises(ValueError, match="drift reference"):
        DriftReference.from_dict({"format": "something else"})


def test_config_loads_from_toml_and_json_sections(tmp_path) -> None:
    toml = tmp_path / "station.toml"
    toml.write_text('[station.drift]\nwindow = 300\nmin_count = 60\nwarn_psi = 0.2\ndrift_psi = 1\n'
                    'signals = ["score", "sharpness"]\n')
    config = load_drift_config(toml, "station.drift")
    assert (config.window, config.min_count, config.warn_psi, config.drift_psi) == (300, 60, 0.2, 1.0)
    assert config.signals == ("score", "sharpness") and config.bins == 10
    js = tmp_path / "station.json"
    js.write_text(json.dumps({"drift": {"bins": 5}}))
    assert load_drift_config(js).bins == 5
    assert load_drift_config(js, "absent") == DriftConfig()
    with pytest.raises(ValueError, match="unknown settings"):
        DriftConfig.from_mapping({"windw": 10})
    with pytest.raises(ValueError, match="min_count"):
        DriftConfig(window=10, min_count=20)
    with pytest.raises(ValueError, match="warn_psi"):
        DriftConfig(warn_psi=0.3, drift_psi=0.2)
