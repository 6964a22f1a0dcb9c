"""Warm start for large models: the restricted model's plan is feasible for the full model and never moves the
optimum."""

from __future__ import annotations

import pytest

import hetplace.optimizer.warmstart as warmstart
from hetplace.common.enums import Phase
from hetplace.costmodels.tco import DeviceYearCost
from hetplace.optimizer.backends import solve
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.formulation import DeviceOffer
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.pools import Config, Pool, StepRef
from hetplace.optimizer.solve import formulate, solve_scenario
from hetplace.optimizer.warmstart import _lift, restrict_menus
from hetplace.problems.loader import load_scenario
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, present, solved_plan

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
A = StepRef("w", "a")


def _year(usd: float) -> DeviceYearCost:
    """A device-year costing `usd`, all of it capex."""
    return DeviceYearCost(usd, 0.0, 0.0, 0.0)


def test_restricted_menus_keep_the_cheapest_and_the_fastest(catalog) -> None:
    offers = {"l4": DeviceOffer(catalog.device("l4"), owned=4, owned_year=_year(200.0))}
    configs = [
        Config("p", "l4", 1, b, "bf16", thr, {A: lat})
        for b, thr, lat in [(1, 10, 0.1), (4, 30, 0.3), (16, 80, 0.9), (64, 100, 2.0)]
    ]
    pool = Pool("p", Phase.decode, "decode_tokens", 50.0, "m", [A], list(configs))
    # cost per coverage ∝ 1 / throughput: b64 then b16 are cheapest; b1 is the fastest; on the latency ladder
    # b4 (0.3 s) is the cheapest within 4× of the fastest 0.1 s, b1 within 1.25–2×
    assert restrict_menus([pool], offers, keep=2) == 0
    assert [c.batch for c in pool.configs] == [1, 4, 16, 64]
    five = [*configs, Config("p", "l4", 1, 256, "bf16", 70.0, {A: 3.0})]  # dearer and slower than b16, b64: dropped
    pool = Pool("p", Phase.decode, "decode_tokens", 50.0, "m", [A], five)
    assert restrict_menus([pool], offers, keep=2) == 1
    assert [c.batch for c in pool.configs] == [1, 4, 16, 64]
    pool = Pool("p", Phase.decode, "decode_tokens", 50.0, "m", [A], list(five))
    assert restrict_menus([pool], offers, keep=2, must_keep=frozenset({five[-1].key})) == 0  # a heuristic's choice


def test_lifted_restricted_plan_is_feasible_for_the_full_model() -> None:
    resolved = load_scenario(SMALL)
    full = formulate(resolved)
    restricted = formulate(resolved, restrict=lambda pools, offers: restrict_menus(pools, offers, 1))
    assert len(restricted.model.vars) < len(full.model.vars)
    res = solve(restricted.model, "highs")
    start = present(_lift(present(res.values), restricted, full))
    assert full.model.violations(start, tol=1e-6) == []
    assert full.model.evaluate_objective(start) == pytest.approx(res.objective)


def test_warm_started_solve_reaches_the_same_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = load_scenario(SMALL)
    monkeypatch.setattr(warmstart, "WARM_START_MIN_VARS", 0)  # force the warm-start path on a small model
    warm = solve_scenario(resolved, baselines=False)
    assert warm.status == "optimal"
    plan = solved_plan(warm)
    # the cold solve's optimum (tests/test_optimizer.py), derived by hand in conftest
    assert plan.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-6)
    assert check_plan(resolved, plan) == []


def test_variables_are_found_by_name() -> None:
    m = LinearModel()
    m.add_var("a")
    b = m.add_var("b", 0, 1, True)
    assert (m.find_var("b"), b, m.var("b")) == (1, 1, 1)
    assert m.find_var("c") is None
