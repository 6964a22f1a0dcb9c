"""The cheap parts of the tie-break (optimizer/tiebreak.py): the tight start measures the plan as the independent
plan assembly does, and the latency floor is a bound every plan respects — on the small scenario it is exactly
the critical path of the fastest plan at any cost (the min_latency solve without a budget), so a plan is
"provably the fastest" only when it is that fast.
"""

from __future__ import annotations

import pytest

from hetplace.common.enums import Objective
from hetplace.optimizer.assemble import assemble_plan
from hetplace.optimizer.solve import formulate, solve_model, solve_scenario
from hetplace.optimizer.tiebreak import latency_floor, provably_fastest, tight_start, with_latency_rows
from hetplace.problems.loader import ResolvedScenario
from tests.conftest import present, solved_plan

FASTEST_TIE_S = 6.45  # the fastest plan at the small scenario's optimum TCO (tests/test_tiebreak.py)


def test_tight_start_measures_the_plan_as_assembled(small_resolved: ResolvedScenario) -> None:
    f = formulate(small_resolved)
    res = solve_model(small_resolved, f, "highs", None, 1e-4, 1)
    assert res.values is not None
    model, latency = with_latency_rows(f)
    tight = tight_start(model, latency, res.values)
    assert tight is not None
    start, latency_s = tight
    assert model.violations(start) == []  # a whole, feasible start of the tie-break model
    assert latency_s == pytest.approx(present(assemble_plan(f, res, "small-agent").mean_critical_path_s), rel=1e-9)
    integers = [i for i, v in enumerate(f.model.vars) if v.integer]
    assert [start[i] for i in integers] == pytest.approx([res.values[i] for i in integers], abs=1e-6)  # same plan


def test_latency_floor_is_the_fastest_plan_at_any_cost(small_resolved: ResolvedScenario) -> None:
    f = formulate(small_resolved)
    floor_s = latency_floor(f)
    fastest = solved_plan(solve_scenario(small_resolved, "highs", baselines=False, objective=Objective.min_latency))
    assert floor_s == pytest.approx(present(fastest.mean_critical_path_s), rel=1e-6)
    assert floor_s < FASTEST_TIE_S  # the fastest plan costs more than the optimum: no skip on the small scenario
    assert provably_fastest(f, floor_s)
    assert not provably_fastest(f, FASTEST_TIE_S)
    assert not provably_fastest(f, floor_s * 1.001)
