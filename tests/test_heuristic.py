"""The budget heuristic: SLA budgets by hand, the device ledger, and plans that are feasible for the full model."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, event, given, settings

from hetplace.common.enums import Phase
from hetplace.costmodels.tco import DeviceYearCost
from hetplace.optimizer.assemble import assemble_plan
from hetplace.optimizer.backends import solve
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.formulation import DeviceOffer
from hetplace.optimizer.heuristic import _cheapest, _Ledger, _Menu, budget_plan, step_budgets
from hetplace.optimizer.pools import Config, Pool, StepRef
from hetplace.optimizer.solve import formulate
from hetplace.problems.loader import default_scenario_path, load_scenario
from hetplace.problems.schema import Workflow
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, load_case, present
from tests.test_presolve import chained_scenarios

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"


def _year(usd: float) -> DeviceYearCost:
    """A device-year costing `usd`, all of it capex."""
    return DeviceYearCost(usd, 0.0, 0.0, 0.0)


def _workflow(sla_s: float) -> Workflow:
    return Workflow.model_validate(
        {
            "id": "w",
            "name": "w",
            "description": "hand-computed budgets",
            "arrival_rate_rps": 1.0,
            "sla": {"e2e_latency_s": sla_s},
            "steps": [
                {"id": "a", "kind": "llm", "model": "m", "prompt_tokens": 10, "output_tokens": 10},
                {"id": "t", "kind": "tool", "tool": "x", "after": ["a"], "latency_s": 2.0, "cpu_s": 0.1},
                {
                    "id": "b",
                    "kind": "llm",
                    "model": "m",
                    "after": ["t"],
                    "repeat": 2,
                    "prompt_tokens": 10,
                    "output_tokens": 10,
                },
                {"id": "side", "kind": "llm", "model": "m", "after": ["a"], "prompt_tokens": 10, "output_tokens": 10},
            ],
        }
    )


def test_budgets_scale_only_hardware_dependent_steps() -> None:
    # Fastest per execution: a 1 s, t 2 s (a tool: fixed), b 1.5 s × 2 repeats, side 1 s. Longest path a→t→b:
    # 1·k + 2 + 3·k ≤ 10 → k = 2, so a gets 2 s, b 3 s per execution, the tool keeps 2 s, side (on a shorter
    # path) gets the same factor.
    fastest = {StepRef("w", "a"): 1.0, StepRef("w", "t"): 2.0, StepRef("w", "b"): 1.5, StepRef("w", "side"): 1.0}
    budgets = step_budgets([_workflow(10.0)], fastest)
    assert budgets[StepRef("w", "a")] == pytest.approx(2.0, rel=1e-6)
    assert budgets[StepRef("w", "t")] == 2.0
    assert budgets[StepRef("w", "b")] == pytest.approx(3.0, rel=1e-6)
    assert budgets[StepRef("w", "side")] == pytest.approx(2.0, rel=1e-6)
    # No slack at all: the fastest durations are the budgets.
    tight = step_budgets([_workflow(6.0)], fastest)
    assert tight[StepRef("w", "b")] == pytest.approx(1.5, rel=1e-6)


def test_ledger_uses_the_cheapest_source_first_within_its_limits(catalog) -> None:
    # L4s come 4 to a node: a purchase limit of 6 allows one node (4 devices); 1 more may be rented.
    offer = DeviceOffer(
        catalog.device("l4"), owned=2, owned_year=_year(100.0), buy_max=6, bought_year=_year(500.0), rent_max=1
    )
    offer.rented_year = _year(400.0)
    ledger = _Ledger({"l4": offer})
    assert ledger.cost_usd("l4", 2) == 200.0
    assert ledger.cost_usd("l4", 4) == 200.0 + 400.0 + 500.0  # renting is cheaper than buying here
    assert ledger.cost_usd("l4", 7) == 200.0 + 400.0 + 4 * 500.0  # 2 owned, 1 rented (all there is), 4 bought
    assert ledger.cost_usd("l4", 8) == float("inf")
    taken = ledger.take("l4", 3)
    assert ledger.cost_usd("l4", 1) == 500.0  # the owned and the rented ones are in use
    ledger.release(taken)
    assert ledger.cost_usd("l4", 1) == 100.0
    # Owned devices whose resale value makes them dearer than renting come after the rented ones.
    pricey = DeviceOffer(catalog.device("l4"), owned=2, owned_year=_year(450.0), rent_max=1, rented_year=_year(400.0))
    assert _Ledger({"l4": pricey}).cost_usd("l4", 2) == 400.0 + 450.0


def test_cheapest_config_within_budget(catalog) -> None:
    a = StepRef("w", "a")
    offers = {"l4": DeviceOffer(catalog.device("l4"), owned=0, buy_max=100, bought_year=_year(1000.0))}
    configs = [  # (tp, throughput, latency): demand 100/s at u_max 0.5 needs 200/s
        Config("p", "l4", 1, 1, "bf16", 50.0, {a: 1.0}),  # 4 replicas, 4 devices: 4,000
        Config("p", "l4", 2, 8, "bf16", 150.0, {a: 2.0}),  # 2 replicas, 4 devices: 4,000
        Config("p", "l4", 1, 64, "bf16", 100.0, {a: 5.0}),  # 2 replicas, 2 devices: 2,000 but slow
    ]
    pool = Pool("p", Phase.decode, "decode_tokens", 100.0, "m", [a], configs, utilisation_cap=0.5)
    menu = [_Menu.of(pool)]
    choice = _cheapest(menu, {a: 2.5}, _Ledger(offers))
    assert choice is not None
    assert choice.usd_per_year == 4000.0 and choice.configs[0].replicas in (2, 4) and choice.budget_ratio <= 1.0
    choice = _cheapest(menu, {a: 5.0}, _Ledger(offers))
    assert choice is not None
    (c,) = choice.configs
    assert (choice.usd_per_year, choice.budget_ratio, c.config.batch, c.replicas) == (2000.0, 1.0, 64, 2)
    assert _cheapest(menu, {a: 0.5}, _Ledger(offers)) is None
    # Nothing meets 0.5 s: the nearest choice is the fastest config, 2× over its budget.
    choice = _cheapest(menu, {a: 0.5}, _Ledger(offers), closest=True)
    assert choice is not None
    (c,) = choice.configs
    assert (choice.usd_per_year, choice.budget_ratio, c.config.batch, c.replicas) == (4000.0, 2.0, 1, 4)


def _completed(f, plan: dict[int, float]):
    """The heuristic's plan completed by HiGHS with its replica, in-use and share values held."""
    fixed = copy.deepcopy(f.model)
    for i, v in plan.items():
        fixed.vars[i].lb = fixed.vars[i].ub = v
    return solve(fixed, "highs")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chained_scenarios())
def test_budget_plans_pass_the_independent_checker(case: dict) -> None:
    resolved = load_case(case)
    f = formulate(resolved)
    if any(not p.configs for p in f.pools):
        return
    plan = budget_plan(f)
    optimum = solve(f.model, "highs", gap=1e-9)
    event(f"heuristic plan: {'yes' if plan is not None else 'none'}; model {optimum.status}")
    if plan is None:
        return
    res = _completed(f, plan)
    assert res.status == "optimal"
    assert check_plan(resolved, assemble_plan(f, res, resolved.scenario.id)) == []
    assert present(res.objective) >= present(optimum.objective) - 1e-6


@pytest.mark.parametrize("path", [SMALL, default_scenario_path()])
def test_budget_plan_is_feasible_and_not_better_than_the_optimum(path) -> None:
    resolved = load_scenario(path)
    f = formulate(resolved)
    plan = budget_plan(f)
    assert plan is not None
    res = _completed(f, plan)
    assert res.status == "optimal"
    heuristic_plan = assemble_plan(f, res, resolved.scenario.id)
    assert check_plan(resolved, heuristic_plan) == []
    if path == SMALL:  # the optimum (derived by hand in conftest; tests/test_optimizer.py pins the solvers to it)
        assert heuristic_plan.tco.total_usd_per_year >= SMALL_OPTIMUM_USD_PER_YEAR - 1e-6
