"""Grading: the rule file's grades, for every image, family and command.

One grade vocabulary for the whole package: the grades a rule file lists (the packaged
``default_rules.yaml``: ``ok``, ``minor``, ``major``, ``reject``). ``DefectInferencer`` grades in
post-processing with ``PostSettings.rules``, ``defect-infer --rules FILE`` and
``defect-station --rules FILE`` with the file they are given; the grade follows the RKD-SARSN
paper's grade-evaluation step (Huang et al., Algorithms 16(11):516, 2023, section 3.2: class, then
the defect's geometry of Table 7, then a grade).

=================  ===========================================================================
:mod:`.rules`      rule files (YAML), their checks, the cached packaged default
:mod:`.grade`      a result -> the family's measures (``rule_measures``) -> a grade and reasons
=================  ===========================================================================

Runtime only (the standard library, PyYAML, numpy through :mod:`defect_plugins.imaging`).
"""
from __future__ import annotations

from .grade import ModelGrading, grade_result, graded, measures_of
from .rules import DEFAULT_RULES, MEASURES, Grading, RuleError, RuleSet, default_rules, load_rules, parse_rules

__all__ = ["DEFAULT_RULES", "MEASURES", "Grading", "ModelGrading", "RuleError", "RuleSet", "default_rules",
           "grade_result", "graded", "load_rules", "measures_of", "parse_rules"]
