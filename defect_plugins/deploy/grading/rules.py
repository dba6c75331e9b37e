"""Grading rules in a YAML file: per family and per class, thresholds on the measured figures give a grade.

The rule file's grades are the only grades of the package: ``DefectInferencer`` (through
``PostSettings.rules``), ``defect-infer --rules`` and ``defect-station --rules`` all grade with a
:class:`RuleSet`; without a file, the packaged default (``default_rules.yaml`` next to this module,
parsed once per process: :func:`default_rules`). A rule file::

    grades: [ok, minor, major, reject]   # least severe first; the first is the grade when no rule matches
    k_reference_side: 200                # optional: compare K as if the image's short side had 200 px
    families:
      classifier:
        default:                         # classes without a list of their own
          - grade: minor
            when: {regions: {min: 1}}
            why: a defect region was found
        classes:
          crazing:
            - grade: major
              when: {k: {max: 0.2}, regions: {min: 1}}
      segmentor: {default: [...], classes: {edge_crack: [...]}}
      anomaly: {default: [...]}          # anomaly models have no classes

A rule matches when every measure in ``when`` lies within its ``min`` and/or ``max`` (both
inclusive); the grade is the most severe grade among the matching rules, and the ``why`` of those
rules is shown with it. Rules are asked only about images the model calls defective: an image the
model calls good (anomaly score under the threshold, the classifier's OK class, no segmented defect
region) gets the least severe grade (:mod:`.grade`). Measures (per image, over all regions of the
class; :data:`MEASURES`): ``regions``, ``area``, ``perimeter``, ``area_ratio``, ``k`` (the
RKD-SARSN paper's Table 7 totals, Huang et al., Algorithms 16(11):516, 2023), ``score`` and
``defect`` (anomaly; ``defect`` also for segmentors) and ``confidence`` (classifier); which family
has which is the family's ``RULE_MEASURES``. K is perimeter / area in 1/pixel, so it depends on the
resolution: with ``k_reference_side`` the rules see ``K * min(height, width) / k_reference_side``,
the K the same defect would have in an image of that size (the geometry table shows the raw K).

Every problem is a :class:`RuleError` naming the file and the key (``families.classifier.classes.crazing[1].when.k``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")

MEASURES = {
    "regions": "number of defect regions",
    "area": "total defect area (pixels)",
    "perimeter": "total defect perimeter (pixels)",
    "area_ratio": "total defect area / image area",
    "k": "total perimeter / total area (1/pixel; rescaled when k_reference_side is set)",
    "score": "anomaly score (normalised; the model's threshold is 0.5 unless moved)",
    "defect": "1 when the model's decision is 'defect', else 0",
    "confidence": "probability of the classifier's top class",
}
# Which measures, and whether per-class lists, a family's rules may use is the family's own knowledge
# (RULE_MEASURES and RULES_PER_CLASS of defect_plugins.deploy.families.<name>): asked, not branched on.
TOP_KEYS = {"grades", "k_reference_side", "families"}
FAMILY_KEYS = {"default", "classes"}
RULE_KEYS = {"grade", "when", "why"}
BOUND_KEYS = {"min", "max"}


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Condition:
    """``min <= measure <= max`` (either bound may be absent)."""

    measure: str
    low: float | None = None
    high: float | None = None

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} <= {self.measure} <= {self.high:g}"
        return f"{self.measure} >= {self.low:g}" if self.low is not None else f"{self.measure} <= {self.high:g}"


@dataclass(frozen=True)
class Rule:
    grade: str
    conditions: tuple[Condition, ...]
    why: str
    key: str  # where it is in the file, for messages

    def matches(self, measures: dict[str, float]) -> bool:
        return all(condition.holds(measures.get(condition.measure)) for condition in self.conditions)

    def reason(self) -> str:
        return self.why or " and ".join(condition.describe() for condition in self.conditions)


@dataclass(frozen=True)
class FamilyRules:
    default: tuple[Rule, ...] = ()
    classes: dict[str, tuple[Rule, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grading:
    """The grade of one image (or of one class in it) and the reasons (``why`` of the rules that gave it)."""

    grade: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    """A loaded rule file (:func:`load_rules`)."""

    grades: tuple[str, ...]
    families: dict[str, FamilyRules]
    k_reference_side: float | None = None
    source: str = "<rules>"

    def severity(self, grade: str) -> int:
        return self.grades.index(grade)

    def worst(self, grades: list[str] | tuple[str, ...]) -> str:
        """The most severe of ``grades`` (the least severe grade when there is none)."""
        return max(grades, key=self.severity, default=self.grades[0])

    def rules_for(self, family: str, class_name: str | None) -> tuple[Rule, ...]:
        if family not in self.families:
            raise RuleError(f"{self.source}: families.{family}: no rules for the {family} family")
        rules = self.families[family]
        return rules.classes.get(class_name or "", rules.default)

    def grade(self, family: str, class_name: str | None, measures: dict[str, float]) -> Grading:
        """The most severe grade whose rule matches ``measures`` (of ``class_name``'s list, else ``default``)."""
        matching = [rule for rule in self.rules_for(family, class_name) if rule.matches(measures)]
        if not matching:
            return Grading(self.grades[0], ("no rule matched",))
        worst = self.worst([rule.grade for rule in matching])
        return Grading(worst, tuple(rule.reason() for rule in matching if rule.grade == worst))

    def check_models(self, models: dict[str, set[str]], *, strict: bool = True) -> list[str]:
        """Every loaded family has rules; every class the file names exists in a loaded model of its family.

        ``models``: family -> union of the class names of the loaded models of that family. A class
        name no model has is a :class:`RuleError` when ``strict`` (a typo in the line's own file
        would silently fall back to ``default``); otherwise (the packaged default file, written for
        NEU-CLS and the project's strips) it is returned as a note and those rules stay unused.
        """
        notes = []
        for family, classes in models.items():
            if family not in self.families:
                raise RuleError(f"{self.source}: families.{family}: missing, but a {family} model is loaded")
            unknown = sorted(set(self.families[family].classes) - classes)
            if not unknown:
                continue
            if strict:
                raise RuleError(f"{self.source}: families.{family}.classes.{unknown[0]}: no loaded {family} has "
                                f"this class (its classes: {', '.join(sorted(classes))})")
            notes.append(f"{self.source}: families.{family}.classes {', '.join(unknown)}: no loaded {family} has "
                         f"these classes ({', '.join(sorted(classes))}); their rules are unused")
        return notes

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the page shows the grades; the history's re-grade list uses them)."""
        return {"source": self.source, "grades": list(self.grades), "k_reference_side": self.k_reference_side,
                "families": {name: {"default": len(rules.default), "classes": sorted(rules.classes)}
                             for name, rules in self.families.items()}}


# --------------------------------------------------------------------------- loading


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Read and check a rule file (``None``: the packaged default, parsed once: :func:`default_rules`)."""
    if path is None:
        return default_rules()
    return _read_rules(Path(path))


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The packaged ``default_rules.yaml``, read and checked once per process.

    Every ``PostSettings`` without rules of its own holds this object, so making one (each
    ``DefectInferencer``, each test) costs no YAML parse. Shared: treat it as read-only.
    """
    return _read_rules(DEFAULT_RULES)


def _read_rules(path: Path) -> RuleSet:
    import yaml

    if not path.is_file():
        raise RuleError(f"{path}: no such rule file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RuleError(f"{path}: not valid YAML: {error}") from error
    return parse_rules(data, source=str(path))


def parse_rules(data: Any, source: str = "<rules>") -> RuleSet:
    """Check a rule file's parsed content and build the :class:`RuleSet`."""
    def fail(key: str, message: str) -> RuleError:
        return RuleError(f"{source}: {key}: {message}")

    if not isinstance(data, dict):
        raise fail("(top level)", "expected a mapping with 'grades' and 'families'")
    _no_unknown(data, TOP_KEYS, "(top level)", fail)
    grades = data.get("grades")
    if (not isinstance(grades, list) or len(grades) < 2 or not all(isinstance(g, str) and g for g in grades)
            or len(set(grades)) != len(grades)):
        raise fail("grades", "expected a list of at least two different names, least severe first")
    side = data.get("k_reference_side")
    if side is not None and (not _is_number(side) or side <= 0):
        raise fail("k_reference_side", f"expected a positive number of pixels, got {side!r}")
    families_data = data.get("families")
    if not isinstance(families_data, dict) or not families_data:
        raise fail("families", "expected a mapping of family name -> rules")
    from ..families import get_family
    from ..metadata import FAMILIES

    families = {}
    for family, section in families_data.items():
        key = f"families.{family}"
        if family not in FAMILIES:
            raise fail(key, f"unknown family; expected one of {sorted(FAMILIES)}")
        if not isinstance(section, dict):
            raise fail(key, "expected a mapping with 'default' and/or 'classes'")
        _no_unknown(section, FAMILY_KEYS, key, fail)
        runtime = get_family(family)
        if not runtime.RULES_PER_CLASS and "classes" in section:
            raise fail(f"{key}.classes", f"{family} models have no classes; put the rules under 'default'")
        measures = frozenset(runtime.RULE_MEASURES)
        default = _rules(section.get("default", []), f"{key}.default", family, measures, grades, fail)
        classes_data = section.get("classes", {})
        if not isinstance(classes_data, dict):
            raise fail(f"{key}.classes", "expected a mapping of class name -> list of rules")
        classes = {str(name): _rules(rules, f"{key}.classes.{name}", family, measures, grades, fail)
                   for name, rules in classes_data.items()}
        if not default and not classes:
            raise fail(key, "no rules (give 'default' and/or 'classes')")
        families[family] = FamilyRules(default=default, classes=classes)
    return RuleSet(grades=tuple(grades), families=families, k_reference_side=float(side) if side else None,
                   source=source)


def _rules(items: Any, key: str, family: str, measures: frozenset[str], grades: list[str],
           fail) -> tuple[Rule, ...]:
    if not isinstance(items, list):
        raise fail(key, "expected a list of rules")
    rules = []
    for index, item in enumerate(items):
        where = f"{key}[{index}]"
        if not isinstance(item, dict):
            raise fail(where, "expected a mapping with 'grade' and 'when'")
        _no_unknown(item, RULE_KEYS, where, fail)
        grade = item.get("grade")
        if grade not in grades:
            raise fail(f"{where}.grade", f"{grade!r} is not one of the grades {grades}")
        when = item.get("when")
        if not isinstance(when, dict) or not when:
            raise fail(f"{where}.when", "expected a mapping of measure -> {min, max}")
        conditions = []
        for measure, bounds in when.items():
            at = f"{where}.when.{measure}"
            if measure not in MEASURES:
                raise fail(at, f"unknown measure; expected one of {sorted(MEASURES)}")
            if measure not in measures:
                raise fail(at, f"the {family} family has no '{measure}' (it has {sorted(measures)})")
            if not isinstance(bounds, dict) or not bounds:
                raise fail(at, f"expected {{min: ..., max: ...}} (one or both), got {bounds!r}")
            _no_unknown(bounds, BOUND_KEYS, at, fail)
            for bound in ("min", "max"):
                if bound in bounds and not _is_number(bounds[bound]):
                    raise fail(f"{at}.{bound}", f"expected a number, got {bounds[bound]!r}")
            low, high = bounds.get("min"), bounds.get("max")
            if low is not None and high is not None and low > high:
                raise fail(at, f"min {low} is above max {high}")
            conditions.append(Condition(measure, None if low is None else float(low),
                                        None if high is None else float(high)))
        why = item.get("why", "")
        if not isinstance(why, str):
            raise fail(f"{where}.why", "expected text")
        rules.append(Rule(grade=grade, conditions=tuple(conditions), why=why.strip(), key=where))
    return tuple(rules)


def _no_unknown(mapping: dict, allowed: set[str], key: str, fail) -> None:
    unknown = sorted(str(name) for name in set(mapping) - allowed)
    if unknown:
        prefix = "" if key == "(top level)" else f"{key}."
        raise fail(f"{prefix}{unknown[0]}", f"unknown key; expected one of {sorted(allowed)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
