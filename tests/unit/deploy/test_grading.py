"""One grade vocabulary, and OK means OK: the rule file's grades wherever a grade is given.

A part the model calls good (classifier: its OK class; anomaly: a score under the image threshold;
segmentor: no region) gets the least severe grade, no regions and ``is_defect`` False, the same from
``DefectInferencer``, from the grader the station uses and in ``defect-infer``'s CSV; grades come
from the rule file only ("severe" exists only where a rule file names it).
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json

import cv2
import numpy as np
import pytest

import defect_plugins.deploy.infer as infer_module
from defect_plugins.deploy import DefectInferencer
from defect_plugins.deploy.families import PostSettings, get_family
from defect_plugins.deploy.families.base import plan_caption, region_from_row, reserved
from defect_plugins.deploy.grading import default_rules, grade_result, load_rules, parse_rules
from defect_plugins.deploy.metadata import FAMILIES, ModelMetadata
from defect_plugins.deploy.result import InferenceResult
from defect_plugins.imaging.labels import inside, overlaps
from defect_plugins.imaging.quantify import quantify_mask, region_label_boxes

GRADES = ("ok", "minor", "major", "reject")


def clean_steel(size: int = 200, seed: int = 3) -> np.ndarray:
    """A defect-free strip: grey texture under uneven light (Otsu still splits it in two)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.normal(150, 6, (size, size)).astype(np.float32), (0, 0), 1.0)
    image += np.linspace(-8, 8, size)[None, :]
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _classifier_metadata(names=("ok", "crazing", "scratches")) -> ModelMetadata:
    return ModelMetadata(family="classifier", precision="FP32", input_size=(64, 64), class_names=list(names),
                         outputs=["probs"])


def _classify(probs, settings: PostSettings, image=None):
    image = clean_steel() if image is None else image
    return get_family("classifier").postprocess(image, [np.array([probs], np.float32)], _classifier_metadata(),
                                                settings, "part.png")


# --------------------------------------------------------------------------- the tiny models


@pytest.fixture(scope="module")
def top_class(station_irs) -> str:
    """The class the tiny NEU classifier gives the clean strip: declared its OK class below (the model is right)."""
    return DefectInferencer(station_irs["classifier"], quantify=False).predict(clean_steel()).label


def test_a_clean_part_called_ok_by_the_classifier_gets_the_least_severe_grade(station_irs, top_class):
    plain = DefectInferencer(station_irs["classifier"]).predict(clean_steel())
    assert plain.is_defect and plain.regions, "without an OK class every class is a defect: Otsu regions, graded"
    result = DefectInferencer(station_irs["classifier"], ok_class=top_class).predict(clean_steel())
    assert result.ok and result.decision == top_class == result.label and result.is_defect is False
    assert result.grade == "ok" == load_rules().grades[0] and result.regions == [] and result.defect_mask is None
    assert "otsu_threshold" not in result.extra and result.grade_reasons
    row = result.to_dict()
    assert row["is_defect"] is False and row["grade"] == "ok" and row["num_regions"] == 0 and "worst_grade" not in row
    # the station's grader agrees, with the packaged rules and with a file of its own
    assert grade_result(default_rules(), result).grade == "ok"
    strict = parse_rules({"grades": ["pass", "fail"], "families": {"classifier": {"default": [
        {"grade": "fail", "when": {"regions": {"min": 0}}}]}}})
    assert grade_result(strict, result).grade == "pass"
    assert result.overlay().shape == (200, 200, 3)


def test_the_station_grades_a_clean_part_ok(station_irs, top_class, tmp_path):
    from defect_plugins.station.engine import Station
    from defect_plugins.station.store import Store
    from tests.fixtures.station import png_bytes

    store = Store(tmp_path / "station.sqlite")
    station = Station([station_irs["classifier"]], load_rules(), store)
    model = station.models[0]  # an OK class comes with a bundle; set here as a bundle would
    model.inferencer.settings = dataclasses.replace(model.inferencer.settings, ok_class=top_class)
    payload = station.inspect(png_bytes(clean_steel()), "clean.png")
    card = payload["models"][0]
    assert payload["grade"] == "ok" and card["grade"] == "ok" and card["num_regions"] == 0
    assert card["decision"] == top_class and payload["class"] == top_class
    stored = json.loads(store.inspection(payload["inspection_id"])["results"])[0]
    assert stored["grade"] == "ok" and stored["num_regions"] == 0
    store.close()


def test_defect_infer_writes_ok_for_a_clean_part(station_irs, top_class, tmp_path, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "clean.png"), clean_steel())
    # an OK class comes with a bundle (defect-fit); given here as the bundle would give it
    monkeypatch.setattr(infer_module, "DefectInferencer", functools.partial(DefectInferencer, ok_class=top_class))
    out = tmp_path / "out"
    summary = infer_module.run_inference(station_irs["classifier"], [images], out, progress=False)
    assert summary["processed"] == 1
    (row,) = list(csv.DictReader((out / "results.csv").open()))
    assert row["decision"] == top_class and row["grade"] == "ok" and row["is_defect"] == "False"
    assert row["num_regions"] == "0"
    assert list(csv.DictReader((out / "regions.csv").open())) == []


def test_an_anomaly_score_under_the_threshold_gets_the_least_severe_grade(anomaly_export):
    xml = anomaly_export[1]
    image = clean_steel(32)
    score = DefectInferencer(xml).predict(image).score
    good = DefectInferencer(xml, image_threshold=score + 1e-3, pixel_threshold=0.0).predict(image)
    assert good.decision == "good" and good.is_defect is False and good.grade == "ok" and good.regions == []
    assert grade_result(default_rules(), good).grade == "ok"
    bad = DefectInferencer(xml, image_threshold=score - 1e-3, pixel_threshold=0.0).predict(image)
    assert bad.decision == "defect" and bad.is_defect and bad.regions  # the whole map is above 0
    assert bad.grade == "reject" and grade_result(default_rules(), bad).grade == "reject"  # 100 % anomalous area


def test_the_rule_files_grades_are_the_only_grades(station_irs):
    rows = []
    for family, xml in station_irs.items():
        for seed in range(3):
            result = DefectInferencer(xml).predict(clean_steel(64, seed))
            assert result.grade in GRADES, (family, result.grade)
            rows.append(json.dumps(result.to_dict()))
    assert not any("severe" in row for row in rows)
    named = parse_rules({"grades": ["ok", "minor", "severe"], "families": {
        "classifier": {"default": [{"grade": "severe", "when": {"regions": {"min": 1}}, "why": "any region"}]}}})
    result = DefectInferencer(station_irs["classifier"], rules=named).predict(clean_steel())
    assert result.grade == "severe" and result.grade_reasons == ["any region"]


# --------------------------------------------------------------------------- post-processing alone


@pytest.mark.parametrize("probs, settings, decision, label, is_defect", [
    ([0.5, 0.3, 0.2], PostSettings(), "ok", "ok", True),  # no OK class: every class is a defect class
    ([0.5, 0.3, 0.2], PostSettings(ok_class="ok"), "ok", "ok", False),
    ([0.3, 0.5, 0.2], PostSettings(ok_class="ok"), "crazing", "crazing", True),
    ([0.4, 0.35, 0.25], PostSettings(ok_class="ok", ok_threshold=0.3), "ok", "ok", False),
    ([0.4, 0.25, 0.35], PostSettings(ok_class="ok", ok_threshold=0.5), "scratches", "scratches", True),
    ([0.45, 0.5, 0.05], PostSettings(ok_class="ok", ok_threshold=0.4), "ok", "ok", False),  # P(ok) decides
])
def test_the_ok_class_and_threshold_decide_good_or_defect(probs, settings, decision, label, is_defect):
    result = _classify(probs, settings)
    assert (result.decision, result.label, result.is_defect) == (decision, label, is_defect)
    assert result.confidence == pytest.approx(probs[["ok", "crazing", "scratches"].index(label)])
    if is_defect:
        assert result.regions and result.defect_mask is not None and result.grade in GRADES
    else:
        assert result.regions == [] and result.defect_mask is None and result.grade == "ok"


def test_post_settings_refuse_what_cannot_work():
    with pytest.raises(ValueError, match="ok_threshold needs ok_class"):
        PostSettings(ok_threshold=0.5)
    with pytest.raises(ValueError, match="within 0 and 1, got 1.5"):
        PostSettings(ok_class="ok", ok_threshold=1.5)
    with pytest.raises(TypeError, match="PostSettings.rules must be a RuleSet"):
        PostSettings(rules="rules.yaml")
    with pytest.raises(ValueError, match=r"ok_class 'good' is not a class of this model .*crazing"):
        _classify([0.5, 0.3, 0.2], PostSettings(ok_class="good"))


def test_the_packaged_rules_are_parsed_once():
    assert load_rules() is default_rules() and PostSettings().rules is default_rules()
    assert PostSettings(min_area=9).rules is PostSettings().rules


def test_each_family_gives_the_measures_it_declares():
    image = clean_steel(64)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:20, 10:30] = 1
    rows = [{**region.to_dict(), "class": "crazing"} for region in quantify_mask(mask).regions]
    rules = default_rules()
    for family in FAMILIES:
        module = get_family(family)
        result = InferenceResult(source="x", family=family, decision="defect", label="crazing", confidence=0.9,
                                 score=0.9, is_defect=True, regions=rows, image=image)
        for _, measures in module.rule_measures(result, rules):
            assert set(measures) == set(module.RULE_MEASURES), family


def test_a_segmentor_without_a_region_is_good_and_names_its_largest_class_otherwise():
    metadata = ModelMetadata(family="segmentor", precision="FP32", input_size=(64, 64),
                             class_names=["background", "fold_mark", "edge_crack"], outputs=["seg_probs"])
    labels = np.zeros((64, 64), np.int64)
    labels[5, 5] = 1  # 1 px: under min_area
    probs = np.eye(3, dtype=np.float32)[labels].transpose(2, 0, 1)[None]
    family = get_family("segmentor")
    good = family.postprocess(clean_steel(64), [probs], metadata, PostSettings(), "clean")
    assert (good.decision, good.is_defect, good.grade, good.regions, good.label) == ("good", False, "ok", [], None)
    labels[20:30, 20:30], labels[40:44, 40:44] = 2, 1
    probs = np.eye(3, dtype=np.float32)[labels].transpose(2, 0, 1)[None]
    found = family.postprocess(clean_steel(64), [probs], metadata, PostSettings(), "two")
    assert found.is_defect and found.label == "edge_crack" and found.grade in GRADES
    assert grade_result(default_rules(), found).class_name == "edge_crack"


def test_crowded_overlay_labels_keep_clear_of_each_other_and_the_caption():
    """An anomaly overlay on a 219 px image with many close regions: labels and caption laid out as drawn."""
    metadata = ModelMetadata(family="anomaly", precision="FP32", input_size=(219, 219),
                             class_names=["good", "defect"], outputs=["pred_score", "anomaly_map"],
                             thresholds={"image": 0.5, "pixel": 0.5})
    heat = np.zeros((219, 219), np.float32)
    for row in range(8):
        for col in range(8):
            heat[40 + 10 * row:44 + 10 * row, 40 + 10 * col:40 + 10 * col + 3 + (row + col) % 4] = 0.9
    result = get_family("anomaly").postprocess(clean_steel(219), [np.array([0.9]), heat], metadata, PostSettings(),
                                               "crowded")
    assert len(result.regions) == 64
    caption = plan_caption(result.image.shape, f"{result.decision} {result.score:.2f}/{result.image_threshold:.2f}",
                           bottom=True)
    boxes = region_label_boxes(result.image.shape, [region_from_row(row) for row in result.regions],
                               reserved=reserved(caption))
    placed = [box for box in boxes if box is not None]
    assert placed and all(inside(box, (219, 219)) and not overlaps(box, caption.box) for box in placed)
    assert not any(overlaps(a, b) for i, a in enumerate(placed) for b in placed[i + 1:])
    assert result.overlay().shape == (219, 219, 3)
