"""Rule files of defect_plugins.deploy.grading: the packaged default, the grading semantics, errors naming the key."""
from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from defect_plugins.deploy.grading import DEFAULT_RULES, RuleError, grade_result, load_rules, parse_rules
from defect_plugins.deploy.result import InferenceResult

NEU = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def _rules(**families) -> dict:
    return {"grades": ["ok", "minor", "major", "reject"], "families": families}


def test_default_file_follows_the_paper_k_bands_and_cites_its_numbers():
    rules = load_rules()
    assert rules.grades == ("ok", "minor", "major", "reject") and rules.k_reference_side == 200
    assert sorted(rules.families["classifier"].classes) == sorted(NEU)
    text = DEFAULT_RULES.read_text()
    assert "Algorithms" in text and "16(11):516" in text and "Table 7" in text
    for tag in re.findall(r"\[(\w+)\]", text.split("grades:", 1)[1]):  # every cited source is explained above
        assert f"# [{tag}]" in text.split("grades:", 1)[0], tag

    def grade(name, k, area_ratio=0.1, confidence=0.9):
        return rules.grade("classifier", name, {"regions": 3, "k": k, "area_ratio": area_ratio,
                                                "confidence": confidence}).grade

    # Cr and Ps above 0.2; In, Rs, Sc around 0.1; Pa below 0.05 (Huang et al. 2023, Table 7)
    for name in ("crazing", "pitted_surface"):
        assert grade(name, 0.25) == "minor" and grade(name, 0.1) == "major"
    for name in ("inclusion", "rolled-in_scale", "scratches"):
        assert grade(name, 0.1, area_ratio=0.05) == "minor"
        assert grade(name, 0.03, area_ratio=0.05) == "major" and grade(name, 0.3, area_ratio=0.05) == "major"
    assert grade("patches", 0.03) == "minor" and grade("patches", 0.1) == "major"
    assert grade("crazing", 0.25, area_ratio=0.6) == "reject"
    assert grade("crazing", 0.25, confidence=0.3) == "major"
    anomaly = rules.grade("anomaly", None, {"regions": 0, "area": 0, "area_ratio": 0, "k": 0, "score": 0.3,
                                            "defect": 0, "perimeter": 0})
    assert anomaly.grade == "ok" and anomaly.reasons == ("no rule matched",)


def test_most_severe_matching_rule_wins_and_gives_its_reasons():
    rules = parse_rules(_rules(anomaly={"default": [
        {"grade": "minor", "when": {"defect": {"min": 1}}, "why": "above threshold"},
        {"grade": "reject", "when": {"defect": {"min": 1}, "area_ratio": {"min": 0.05}}, "why": "large"},
        {"grade": "reject", "when": {"score": {"min": 0.9}}},
    ]}))
    measures = {"defect": 1, "area_ratio": 0.2, "score": 0.95}
    graded = rules.grade("anomaly", None, measures)
    assert graded.grade == "reject" and graded.reasons == ("large", "score >= 0.9")
    assert rules.grade("anomaly", None, {**measures, "area_ratio": 0.01, "score": 0.5}).grade == "minor"
    assert rules.worst(["minor", "ok", "major"]) == "major" and rules.worst([]) == "ok"


def test_class_rules_fall_back_to_default_and_k_is_rescaled_to_the_reference_side():
    rules = parse_rules({**_rules(classifier={
        "default": [{"grade": "minor", "when": {"regions": {"min": 1}}}],
        "classes": {"crazing": [{"grade": "major", "when": {"k": {"max": 0.2}}}]}}), "k_reference_side": 200})
    result = InferenceResult(source="x", family="classifier", decision="crazing", label="crazing", confidence=0.9,
                             is_defect=True, image=np.zeros((400, 400, 3), np.uint8),
                             regions=[{"area": 1000.0, "perimeter": 120.0, "class": "crazing"}])
    graded = grade_result(rules, result)
    # K = 0.12 / px at 400 px is 0.24 at the 200 px the bands were measured at: in band, no rule matches
    assert graded.measures["k"] == pytest.approx(0.24) and graded.grade == "ok"
    result.image = np.zeros((200, 200, 3), np.uint8)
    assert grade_result(rules, result).grade == "major"  # K 0.12 at 200 px: below the band
    result.label = "patches"
    assert grade_result(rules, result).grade == "minor"  # no list of its own: default


def test_segmentor_grades_each_class_and_takes_the_worst():
    rules = load_rules()
    image = np.zeros((100, 100, 3), np.uint8)
    regions = [{"area": 5.0, "perimeter": 8.0, "class": "edge_crack"},
               {"area": 300.0, "perimeter": 70.0, "class": "fold_mark"}]
    # the segmentor's postprocess names the class covering the most pixels (fold_mark) as the label
    graded = grade_result(rules, InferenceResult(source="x", family="segmentor", decision="defect", label="fold_mark",
                                                 is_defect=True, image=image, regions=regions))
    assert graded.class_grades == {"edge_crack": "major", "fold_mark": "major"}
    assert graded.grade == "major" and graded.class_name == "fold_mark"
    assert graded.reasons == ["edge_crack: an edge crack can open further in rolling: never minor [project]",
                              "fold_mark: fold mark covering 2 % of the image or more [project]"]
    clean = grade_result(rules, InferenceResult(source="x", family="segmentor", decision="good", image=image))
    assert clean.grade == "ok" and clean.class_name == "good" and clean.class_grades == {}


def test_models_are_checked_against_the_file():
    rules = load_rules()
    with pytest.raises(RuleError, match=r"families\.classifier\.classes\.crazing: no loaded classifier"):
        rules.check_models({"classifier": {"a", "b"}})
    notes = rules.check_models({"classifier": {"a", "b"}}, strict=False)
    assert len(notes) == 1 and "unused" in notes[0]
    partial = parse_rules(_rules(anomaly={"default": [{"grade": "minor", "when": {"defect": {"min": 1}}}]}))
    with pytest.raises(RuleError, match=r"families\.segmentor: missing"):
        partial.check_models({"anomaly": set(), "segmentor": {"fold_mark"}})


GOOD_RULE = {"grade": "minor", "when": {"regions": {"min": 1}}}


@pytest.mark.parametrize("data, key", [
    ([1, 2], r"\(top level\)"),
    ({**_rules(anomaly={"default": [GOOD_RULE]}), "grade": ["x"]}, r"^.*: grade: unknown key"),
    ({"grades": ["ok"], "families": {"anomaly": {"default": [GOOD_RULE]}}}, r": grades:"),
    ({**_rules(anomaly={"default": [GOOD_RULE]}), "k_reference_side": -1}, r": k_reference_side:"),
    (_rules(robot={"default": [GOOD_RULE]}), r"families\.robot: unknown family"),
    (_rules(anomaly={"default": [GOOD_RULE], "classes": {"x": [GOOD_RULE]}}), r"families\.anomaly\.classes:"),
    (_rules(classifier={"default": [{"grade": "severe", "when": {"regions": {"min": 1}}}]}),
     r"families\.classifier\.default\[0\]\.grade: 'severe' is not one of"),
    (_rules(classifier={"default": [GOOD_RULE, {"grade": "major", "when": {"kk": {"min": 1}}}]}),
     r"families\.classifier\.default\[1\]\.when\.kk: unknown measure"),
    (_rules(classifier={"classes": {"crazing": [{"grade": "major", "when": {"score": {"min": 0.5}}}]}}),
     r"families\.classifier\.classes\.crazing\[0\]\.when\.score: the classifier family has no 'score'"),
    (_rules(anomaly={"default": [{"grade": "major", "when": {"score": {"mn": 0.5}}}]}),
     r"families\.anomaly\.default\[0\]\.when\.score\.mn: unknown key"),
    (_rules(anomaly={"default": [{"grade": "major", "when": {"score": {"min": "high"}}}]}),
     r"families\.anomaly\.default\[0\]\.when\.score\.min: expected a number"),
    (_rules(anomaly={"default": [{"grade": "major", "when": {"score": {"min": 0.9, "max": 0.1}}}]}),
     r"families\.anomaly\.default\[0\]\.when\.score: min 0.9 is above max 0.1"),
    (_rules(anomaly={"default": [{"grade": "major", "when": {}}]}), r"families\.anomaly\.default\[0\]\.when:"),
    (_rules(anomaly={"default": [{"grade": "major", "when": {"score": 0.5}}]}),
     r"families\.anomaly\.default\[0\]\.when\.score: expected \{min"),
    (_rules(anomaly={}), r"families\.anomaly: no rules"),
])
def test_bad_rule_files_name_the_key(tmp_path, data, key):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RuleError, match=key) as error:
        load_rules(path)
    assert str(error.value).startswith(str(path))


def test_unreadable_rule_files(tmp_path):
    with pytest.raises(RuleError, match="no such rule file"):
        load_rules(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("grades: [ok, minor\nfamilies: {")
    with pytest.raises(RuleError, match=r"broken\.yaml: not valid YAML"):
        load_rules(broken)


def test_the_station_card_rule_example_is_a_valid_rule_file():
    from tests.conftest import REPO_ROOT

    readme = (REPO_ROOT / "defect_plugins" / "station" / "README.md").read_text()
    section = readme.split("## Rule file", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, flags=re.S).group(1)
    rules = parse_rules(yaml.safe_load(example), source="station README")
    assert rules.grades == ("ok", "minor", "major", "reject") and set(rules.families) == {
        "classifier", "segmentor", "anomaly"}
    assert rules.grade("classifier", "crazing", {"regions": 2, "k": 0.1}).grade == "major"
