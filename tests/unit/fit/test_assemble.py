"""The bundle's rule file keeps the default rules but only the class rules of the model's own classes."""
from __future__ import annotations

import yaml

from defect_plugins.deploy.grading.rules import load_rules
from defect_plugins.fit.assemble import write_rules
from defect_plugins.fit.logs import duration


def test_rules_keep_only_the_model_classes(tmp_path) -> None:
    path = write_rules(tmp_path / "rules.yaml", ["good", "crazing", "scratch"])
    data = yaml.safe_load(path.read_text())
    assert set(data["families"]["classifier"]["classes"]) == {"crazing"}
    assert "classes" not in data["families"].get("segmentor", {})  # none of the strip classes is ours
    rules = load_rules(path)
    assert rules.grades[0] == "ok"
    assert path.read_text().startswith("# Written by defect-fit")


def test_rules_without_any_named_class_keep_the_defaults(tmp_path) -> None:
    rules = load_rules(write_rules(tmp_path / "rules.yaml", ["good", "defect"]))
    assert set(rules.families) == {"classifier", "segmentor", "anomaly"}


def test_durations_read_at_a_glance() -> None:
    assert duration(45) == "45 s"
    assert duration(600) == "10.0 min"
    assert duration(3 * 3600) == "3.0 h"
