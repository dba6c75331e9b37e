"""experiments/mgjr/mgjr_complexity.py: the default MGJR student meets the paper's size budget."""
from __future__ import annotations

from experiments.mgjr.mgjr_complexity import PAPER_FLOPS_G, PAPER_PARAMS_M, student_complexity


def test_default_student_meets_the_paper_budget():
    # Paper (Meng et al. 2025): 21.14 M parameters, 2.86 GFLOPs (input size not stated; 224x224 assumed here);
    # the budget is +-10 % of both.
    result = student_complexity(224)
    assert abs(result["params_M"] - PAPER_PARAMS_M) / PAPER_PARAMS_M < 0.10
    assert abs(result["flops_G"] - PAPER_FLOPS_G) / PAPER_FLOPS_G < 0.10
