"""Optimizer: backends agree, plans pass the independent checker, baselines, diagnoses of infeasibility."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from hetplace.common.enums import Backend, SolverStatus, TerminationCondition
from hetplace.costmodels.tco import energy_usd_per_year, hosting_usd_per_year
from hetplace.optimizer.backends import solve
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.formulation import economics_of
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.solve import SolveOutcome, solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario, rental_usd_per_hour
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, SMALL_FLEET, SMALL_OPTIMUM_USD_PER_YEAR, present, solved_plan, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"

# annual budget (None: no budget) -> the scenario with that budget and its min_latency solve
LatencyPlans = dict[float | None, tuple[ResolvedScenario, SolveOutcome]]


def test_backends_reach_the_same_optimum(small_plans: dict[str, Any]) -> None:
    costs = {b: o.plan.tco.total_usd_per_year for b, o in small_plans.items()}
    assert all(o.status == "optimal" for o in small_plans.values())
    assert costs["cbc"] == pytest.approx(costs["highs"], rel=1e-4)
    assert costs["cpsat"] == pytest.approx(costs["highs"], rel=1e-3)  # CP-SAT rows are rounded conservatively


def test_optimum_is_the_hand_computed_fleet_and_cost(catalog, small_resolved, small_plans: dict[str, Any]) -> None:
    """The optimum every backend reaches is the fleet conftest prices by hand, at that price (18,561.24 USD/yr)."""
    # the hand computation's inputs are still the catalog's and the scenario's
    l4, xeon = catalog.device("l4"), catalog.device("xeon-6980p")
    assert (l4.tdp_w, xeon.tdp_w, xeon.capex_usd) == (72, 500, 12_460)
    econ = small_resolved.scenario.economics
    assert (econ.energy_usd_per_kwh, econ.pue, econ.hosting_usd_per_kw_month) == (0.08, 1.3, 184)
    assert (econ.amortisation_years, econ.avg_load_fraction) == (4, 0.7)
    assert abs(SMALL_OPTIMUM_USD_PER_YEAR - 18_561.240832) < 1e-6  # the arithmetic in conftest's comment
    for backend, outcome in small_plans.items():
        fleet = {e.device: (e.owned_used, e.bought, e.rented) for e in outcome.plan.fleet}
        assert fleet == SMALL_FLEET, (backend, outcome.plan.fleet)
    t = small_plans["highs"].plan.tco
    assert t.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert t.capex_usd_per_year == pytest.approx(12_460.0, rel=1e-12)
    assert t.energy_usd_per_year == pytest.approx(1_367.288832, rel=1e-9)
    assert t.hosting_usd_per_year == pytest.approx(4_733.952, rel=1e-9)
    assert t.purchases_usd == 4 * 12_460
    assert small_plans["cbc"].plan.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-4)
    assert small_plans["cpsat"].plan.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-3)


def test_every_plan_passes_the_independent_checker(small_resolved, small_plans: dict[str, Any]) -> None:
    resolved = small_resolved
    for backend, outcome in small_plans.items():
        assert check_plan(resolved, outcome.plan) == [], backend
        assert all(w.critical_path_s <= w.sla_s for w in outcome.plan.workflows)


def test_heterogeneous_plan_never_costlier_than_a_feasible_homogeneous_fleet(small_plans: dict[str, Any]) -> None:
    plan = small_plans["highs"].plan
    feasible = [b for b in plan.baselines if b.total_usd_per_year is not None]
    assert {b.device for b in plan.baselines} == {"l4", "h100-sxm", "a10g"}
    assert feasible
    for b in feasible:
        assert plan.tco.total_usd_per_year <= b.total_usd_per_year * (1 + 1e-6)
        assert b.saving_fraction == pytest.approx(1 - plan.tco.total_usd_per_year / b.total_usd_per_year)


def test_tco_breakdown_adds_up(small_plans: dict[str, Any]) -> None:
    t = small_plans["highs"].plan.tco
    assert t.total_usd_per_year == pytest.approx(
        t.capex_usd_per_year + t.energy_usd_per_year + t.hosting_usd_per_year + t.rental_usd_per_year
    )
    # 3 req/s all year
    assert t.usd_per_request == pytest.approx(t.total_usd_per_year / (3 * 8760 * 3600))


def _tampered(plan: Plan, mutate) -> Plan:
    data = copy.deepcopy(plan.model_dump(mode="json"))
    mutate(data)
    return Plan.model_validate(data)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: max(
                (p for p in d["pools"] if p["phase"] in ("decode", "colocated")), key=lambda p: p["batch"]
            ).update(batch=1),
            "max_utilisation",  # pool capacity or, for a model split between routes, its coverage
        ),
        (lambda d: d["workflows"][0].update(critical_path_s=0.1), "plan reports critical path"),
        (lambda d: d["tco"].update(total_usd_per_year=1.0), "tco: plan reports"),
        (lambda d: d["fleet"][0].update(owned_idle=d["fleet"][0]["owned_idle"] + 1), "owned_used + owned_idle"),
        (lambda d: d["fleet"].clear(), "pools use"),
    ],
)
def test_checker_catches_tampered_plans(small_resolved, small_plans: dict[str, Any], mutate, fragment: str) -> None:
    resolved = small_resolved
    bad = _tampered(small_plans["highs"].plan, mutate)
    violations = check_plan(resolved, bad)
    assert any(fragment in v for v in violations), violations


def _scenario_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    wf = yaml.safe_load((SMALL.parent / "small-agent-workflow.yaml").read_text())
    change(data, wf)
    write_yaml(tmp_path / "small-agent-workflow.yaml", wf)
    return write_yaml(tmp_path / "scenario.yaml", data)


def test_diagnosis_model_fits_no_device(tmp_path: Path) -> None:
    def change(sc, wf):
        sc["hardware"] = {"owned": [{"device": "l4", "count": 4}]}
        wf["steps"] = [s for s in wf["steps"] if s["kind"] != "tool"]  # no CPU offered, so no tools
        wf["steps"][-1]["after"] = ["search"]
        wf["steps"][0]["model"] = "llama-3.1-405b"

    outcome = solve_scenario(load_scenario(_scenario_variant(tmp_path, change)), baselines=False)
    assert outcome.status == "infeasible"
    assert any("llama-3.1-405b" in c and "l4" in c and "4 available" in c for c in outcome.diagnosis), outcome.diagnosis


def test_diagnosis_sla_below_fastest_critical_path(tmp_path: Path) -> None:
    def change(sc, wf):
        wf["sla"]["e2e_latency_s"] = 0.5

    outcome = solve_scenario(load_scenario(_scenario_variant(tmp_path, change)), baselines=False)
    assert outcome.status == "infeasible"
    (cause,) = [c for c in outcome.diagnosis if "fastest possible critical path" in c]
    assert "SLA 0.5 s" in cause and "workflow small-agent" in cause


def test_diagnosis_power_cap(tmp_path: Path) -> None:
    def change(sc, wf):
        sc["limits"]["power_cap_kw"] = 0.2

    outcome = solve_scenario(load_scenario(_scenario_variant(tmp_path, change)), baselines=False)
    assert outcome.status == "infeasible"
    assert any(c.startswith("power cap 0.2 kW < minimum") for c in outcome.diagnosis), outcome.diagnosis


@pytest.fixture(scope="module")
def latency_plans() -> LatencyPlans:
    """min_latency plans on the small scenario without a budget and under two annual budgets."""
    resolved = load_scenario(SMALL)
    out: LatencyPlans = {}
    for budget in (None, 80_000.0, 40_000.0):
        scenario = resolved.scenario.model_copy(
            update={"limits": resolved.scenario.limits.model_copy(update={"annual_budget_usd": budget})}
        )
        variant = copy.copy(resolved)
        variant.scenario = scenario
        out[budget] = (variant, solve_scenario(variant, baselines=False, objective="min_latency"))
    return out


def test_min_latency_trades_cost_for_speed(small_plans: dict[str, Any], latency_plans: LatencyPlans) -> None:
    cheapest = small_plans["highs"].plan
    previous_latency = 0.0
    for budget in (None, 80_000.0, 40_000.0):  # tighter budgets: slower, never dearer than the budget
        resolved, outcome = latency_plans[budget]
        plan = solved_plan(outcome)
        assert outcome.status == "optimal" and plan.objective == "min_latency"
        assert check_plan(resolved, plan) == []
        latency_s = present(plan.mean_critical_path_s)
        assert latency_s >= previous_latency - 1e-9
        previous_latency = latency_s
        assert latency_s < cheapest.mean_critical_path_s
        assert plan.tco.total_usd_per_year >= cheapest.tco.total_usd_per_year * (1 - 1e-9)
        if budget is not None:
            assert plan.tco.total_usd_per_year <= budget * (1 + 1e-9)
    # one workflow: the mean critical path is that workflow's critical path
    plan = solved_plan(latency_plans[None][1])
    assert plan.mean_critical_path_s == pytest.approx(plan.workflows[0].critical_path_s)


def test_min_latency_backends_agree(latency_plans: LatencyPlans) -> None:
    resolved, highs = latency_plans[40_000.0]
    cpsat = solve_scenario(resolved, "cpsat", time_limit_s=30, baselines=False, objective="min_latency")
    cpsat_plan, highs_plan = solved_plan(cpsat), solved_plan(highs)
    assert check_plan(resolved, cpsat_plan) == []
    # CP-SAT counts time in 10 µs units and rounds rows conservatively
    assert cpsat_plan.mean_critical_path_s == pytest.approx(highs_plan.mean_critical_path_s, rel=1e-3)
    assert cpsat_plan.tco.total_usd_per_year == pytest.approx(highs_plan.tco.total_usd_per_year, rel=1e-3)


def test_diagnosis_annual_budget_names_the_minimum_tco(tmp_path: Path, small_plans: dict[str, Any]) -> None:
    def change(sc, wf):
        sc["limits"]["annual_budget_usd"] = 1000

    outcome = solve_scenario(load_scenario(_scenario_variant(tmp_path, change)), baselines=False)
    assert outcome.status == "infeasible"
    minimum = small_plans["highs"].plan.tco.total_usd_per_year  # the unconstrained optimum is the least TCO
    assert outcome.diagnosis == [f"annual budget 1,000 USD < minimum TCO {minimum:,.0f} USD/year"]


def test_diagnosis_capex_budget(tmp_path: Path) -> None:
    def change(sc, wf):
        sc["limits"]["capex_budget_usd"] = 100
        sc["hardware"]["rentable"] = []  # tools need a CPU, and CPUs can only be bought here
        sc["hardware"]["owned"][0]["count"] = 32  # plenty of owned L4s: no accelerator needs buying

    outcome = solve_scenario(load_scenario(_scenario_variant(tmp_path, change)), baselines=False)
    assert outcome.status == "infeasible"
    # the least purchase is one dual-socket Xeon 6980P node: 2 × 12,460 USD (catalog price)
    assert outcome.diagnosis == ["capex budget 100 USD < minimum purchases 24,920 USD"]


def test_allowed_weight_dtypes_widen_the_menu(tmp_path: Path, small_plans: dict[str, Any]) -> None:
    def change(sc, wf):
        sc["allowed_weight_dtypes"] = ["int4"]

    resolved = load_scenario(_scenario_variant(tmp_path, change))
    plan = solved_plan(solve_scenario(resolved, baselines=False))
    base = small_plans["highs"].plan.tco.total_usd_per_year
    # int4 weight-only quantisation is a superset menu: never dearer, and here it halves the fleet cost
    assert plan.tco.total_usd_per_year < 0.6 * base
    assert "int4" in {a.weight_dtype for a in plan.pools}
    assert check_plan(resolved, plan) == []


def test_a_workflow_id_with_a_dot_solves_and_checks(tmp_path: Path) -> None:
    # Pool ids like 'retrieval:<workflow>.<step>' are names only: the plan carries workflow and step as fields.
    workflow = yaml.safe_load((FIXTURES / "scenarios" / "small-agent-workflow.yaml").read_text())
    workflow["id"] = "small.agent.v2"
    scenario = yaml.safe_load(SMALL.read_text())
    scenario["workflows"] = [{"path": str(write_yaml(tmp_path / "wf.yaml", workflow))}]
    resolved = load_scenario(write_yaml(tmp_path / "scenario.yaml", scenario))
    outcome = solve_scenario(resolved, baselines=False)
    assert outcome.status == "optimal" and outcome.plan is not None
    (retrieval,) = {(a.workflow, a.step) for a in outcome.plan.pools if a.phase == "retrieval"}
    assert retrieval == ("small.agent.v2", "search")
    assert check_plan(resolved, outcome.plan) == []
    assert outcome.plan.tco.total_usd_per_year == pytest.approx(18_561.24, abs=0.01)  # same scenario, renamed


def test_a_plan_without_pool_identity_fields_still_validates_and_checks(small_plans: dict[str, Any]) -> None:
    # Plans written before pools carried workflow and step name the retrieval step only in the pool id.
    data = small_plans["highs"].plan.model_dump(mode="json")
    for a in data["pools"]:
        del a["workflow"], a["step"]
    del data["solver"]["termination"]
    old = Plan.model_validate(data)
    assert {a.workflow for a in old.pools} == {None} and old.solver.termination is None
    assert check_plan(load_scenario(SMALL), old) == []


def test_tco_parts_are_those_of_the_devices_in_use(small_plans: dict[str, Any]) -> None:
    # Energy and hosting from the cost model per device on site; rental at the catalog's hourly price all year.
    resolved = load_scenario(SMALL)
    plan = small_plans["highs"].plan
    econ = economics_of(resolved)
    rentable = {r.device: r for r in resolved.scenario.hardware.rentable}
    energy = hosting = rental = 0.0
    for e in plan.fleet:
        dev = resolved.catalog.device(e.device)
        energy += (e.owned_used + e.bought) * energy_usd_per_year(dev.tdp_w, econ)
        hosting += (e.owned_used + e.bought) * hosting_usd_per_year(dev.tdp_w, econ)
        if e.rented:
            rental += e.rented * float(rental_usd_per_hour(rentable[e.device], resolved.catalog) or 0.0) * 8760
    assert plan.tco.energy_usd_per_year == pytest.approx(energy, rel=1e-12)
    assert plan.tco.hosting_usd_per_year == pytest.approx(hosting, rel=1e-12)
    assert plan.tco.rental_usd_per_year == pytest.approx(rental, rel=1e-12)
    # The owned L4s are sunk with no resale value: capex is the purchases amortised.
    assert plan.tco.capex_usd_per_year == pytest.approx(plan.tco.purchases_usd / econ.amortisation_years, rel=1e-12)


def test_status_and_termination_are_enums_written_as_the_same_strings(small_plans: dict[str, Any]) -> None:
    for backend, outcome in small_plans.items():
        solver = outcome.plan.solver
        assert (solver.backend, solver.status, solver.termination) == (
            Backend(backend),
            SolverStatus.optimal,
            TerminationCondition.optimal,
        )
        data = outcome.plan.model_dump(mode="json")
        assert (data["solver"]["backend"], data["solver"]["status"], data["objective"]) == (
            backend,
            "optimal",
            "min_tco",
        )
        assert {a["phase"] for a in data["pools"]} <= {"prefill", "decode", "colocated", "embed", "retrieval", "tool"}


@pytest.mark.parametrize("backend", list(Backend))
def test_an_infeasible_model_says_so_in_status_and_termination(backend: Backend) -> None:
    m = LinearModel()
    x = m.add_var("x", 0, 1, True)
    m.add_row("impossible", {x: 1.0}, ">=", 2.0)
    res = solve(m, backend)
    assert (res.status, res.termination) == (SolverStatus.infeasible, TerminationCondition.infeasible)
