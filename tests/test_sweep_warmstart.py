"""Warm-started sweeps: each point starts from its neighbours' plans, with the same optimum as a cold sweep.

On the small scenario at gap 0 on HiGHS: warm and cold sweeps agree point by point; a neighbour plan the point
cannot run (more demand, retired or unrented devices) is re-sized or dropped; every plan passes the independent
checker; the bisection order is hand-checked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.io import load_mapping
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.neighbour_start import PlanConfigs, SweepStart, neighbour_start, solve_from_neighbours
from hetplace.optimizer.solve import formulate, solve_scenario
from hetplace.problems.loader import ResolvedScenario, resolve_scenario_mapping
from hetplace.problems.sweep_point import PointResult
from hetplace.whatif.executors import run_points
from hetplace.whatif.overrides import apply_override
from hetplace.whatif.sweep import SolveOptions, build_tasks, parse_axis
from hetplace.whatif.warm import BisectionSchedule, bisection_parents, price_factors, price_lower_bound
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, present, solved_plan

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
runner = CliRunner()
DATA = load_mapping(SMALL)


def _variant(base: ResolvedScenario, *changes: tuple[str, Any]) -> ResolvedScenario:
    data = DATA
    for spec, value in changes:
        data = apply_override(data, base, spec, value)
    return resolve_scenario_mapping(data, SMALL)


def _sweep(axis: str, warm: bool, workers: int = 1, executor: str = "process") -> list[PointResult]:
    tasks = build_tasks(SMALL, [], [parse_axis(axis)], SolveOptions(gap=0.0, warm_start=warm))
    return run_points(tasks, executor, workers)


def test_bisection_order_by_hand() -> None:
    # 0 and 6 cold; 3 halves [0, 6]; 1 halves [0, 3] (nearer 0), 2 halves [1, 3] (tie: the lower end first), …
    assert bisection_parents(7) == {0: (), 6: (), 3: (0, 6), 1: (0, 3), 4: (3, 6), 2: (1, 3), 5: (4, 6)}
    assert bisection_parents(2) == {0: (), 1: ()}
    assert bisection_parents(1) == {0: ()}
    for n in range(1, 40):  # every point once, and solving the ready ones in turn reaches every point
        parents = bisection_parents(n)
        assert sorted(parents) == list(range(n))
        done: set[int] = set()
        while ready := {i for i, ps in parents.items() if i not in done and set(ps) <= done}:
            done |= ready
        assert done == set(range(n))


def _row(index: int, usd: float | None, gap: float | None = 0.0) -> PointResult:
    return PointResult(
        index=index, params={}, status="optimal" if usd else "infeasible", total_usd_per_year=usd, gap=gap
    )


def test_schedule_hands_out_a_point_when_both_ends_are_solved() -> None:
    tasks = build_tasks(SMALL, [], [parse_axis("price:a10g=0.25,0.5,1,2,4")], SolveOptions())
    schedule = BisectionSchedule(tasks)
    assert schedule.factors == [0.25, 0.5, 1.0, 2.0, 4.0]  # a price axis without budgets: bounds carry over
    assert [t.index for t in schedule.first()] == [0, 4]
    left, right = PlanConfigs(frozenset({("p", "a10g", 1, 1, None, None)})), PlanConfigs(frozenset())
    assert schedule.finished(_row(0, 100.0), left) == []  # point 2 also waits for point 4
    (middle,) = schedule.finished(_row(4, 200.0), right)
    assert middle.index == 2 and middle.neighbours == (left, right)
    # the chord at factor 1 between (0.25, 100) and (4, 200): 100 + 100 × 0.75 / 3.75 = 120
    assert present(middle.lower_bound_usd) == pytest.approx(120.0, rel=1e-8)
    one, three = schedule.finished(_row(2, None, None), None)  # a point without a plan starts and proves nothing
    assert (one.index, one.neighbours, three.index, three.neighbours) == (1, (left,), 3, (right,))
    assert present(one.lower_bound_usd) == pytest.approx(100.0, rel=1e-8)  # factor 0.5 ≥ 0.25: at least point 0's
    assert three.lower_bound_usd is None  # factor 2 lies below point 4's only: no bound


def test_price_bounds_only_for_a_lone_price_axis_without_budgets() -> None:
    assert price_factors(build_tasks(SMALL, [], [parse_axis("demand:*=1,2,3")], SolveOptions())) is None
    budget = [("limits.annual_budget_usd", 1e6)]
    assert price_factors(build_tasks(SMALL, budget, [parse_axis("price:a10g=1,2,3")], SolveOptions())) is None
    grid = [parse_axis("price:a10g=1,2"), parse_axis("owned:l4=4,0")]
    assert price_factors(build_tasks(SMALL, [], grid, SolveOptions())) is None
    assert price_factors(build_tasks(SMALL, [], [parse_axis("price:a10g=1,2")], SolveOptions("cpsat"))) is None
    assert price_lower_bound(1.0, [(0.5, 10.0), (2.0, 40.0)]) == pytest.approx(20.0)  # chord 10 + 30 × 0.5 / 1.5
    assert price_lower_bound(1.0, [(2.0, 40.0)]) is None


def test_the_chord_never_exceeds_the_optimum() -> None:
    # Concavity on real optima: at gap 0 the bounds are the optima, and every chord lies on or below the curve.
    cold = _sweep("price:a10g=0.1,0.25,0.4,0.5,0.6,0.75,1,1.5", warm=False)
    points = [(float(r.params["price:a10g"]), present(r.total_usd_per_year)) for r in cold]
    for i, (factor, usd) in enumerate(points):
        others = points[:i] + points[i + 1 :]
        bound = price_lower_bound(factor, others)
        assert (bound is None) if i == 0 else present(bound) <= usd * (1 + 1e-9)  # nothing below the cheapest
        assert usd >= max(u for f, u in points if f <= factor) * (1 - 1e-9)  # nondecreasing in the price


def test_a_start_the_bound_proves_is_the_plan(small_resolved: ResolvedScenario) -> None:
    neighbour = PlanConfigs.of(solved_plan(solve_scenario(small_resolved, gap=0.0, baselines=False)))
    f = formulate(small_resolved)
    close = 0.999 * SMALL_OPTIMUM_USD_PER_YEAR
    proven = solve_from_neighbours(f, SweepStart((neighbour,), close), "highs", None, 0.01, 1)
    assert proven.best_bound == close and proven.objective == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert present(proven.gap) == pytest.approx(0.001, rel=1e-6)  # proven by the bound: no MILP
    far = solve_from_neighbours(f, SweepStart((neighbour,), 0.5 * close), "highs", None, 0.01, 1)
    assert present(far.best_bound) > 0.98 * SMALL_OPTIMUM_USD_PER_YEAR  # too weak: the MILP proved its own


@pytest.mark.parametrize(
    "axis", ["price:a10g=0.25,0.5,0.75,1,2", "demand:*=0.5,1,2,3", "sla:*=0.6,0.8,1,1.5", "owned:l4=4,2,0"]
)
def test_warm_sweep_has_the_cold_optimum_at_every_point(axis: str) -> None:
    cold, warm = _sweep(axis, warm=False), _sweep(axis, warm=True)
    assert [r.params for r in warm] == [r.params for r in cold]
    assert all(r.status == "optimal" for r in cold + warm)
    for c, w in zip(cold, warm, strict=True):
        assert present(w.total_usd_per_year) == pytest.approx(present(c.total_usd_per_year), rel=1e-6)


def test_price_points_by_hand() -> None:
    # From a10g at 0.25× to 0.5× of its rental price the optimal fleet stays 2 rented a10g (and 2 l4, 2 Xeons), so
    # the optimum rises by 2 devices × 0.25 × 1.006 USD/h (catalog) × 8,760 h = 4,406.28 USD/year.
    rows = _sweep("price:a10g=0.25,0.5,1", warm=True)
    assert [r.rented for r in rows[:2]] == [{"a10g": 2}, {"a10g": 2}]
    cheap, dearer, base = (present(r.total_usd_per_year) for r in rows)
    assert dearer - cheap == pytest.approx(2 * 0.25 * 1.006 * 8760, rel=1e-9)
    assert base == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)


def test_process_pool_and_ray_give_the_rows_of_one_process() -> None:
    # Which plans start a point depends on its place in the sweep only, not on which worker finished first.
    axis = "demand:*=0.5,1,2"
    serial = [r.model_dump(exclude={"wall_time_s"}) for r in _sweep(axis, warm=True)]
    for executor in ("process", "ray"):
        rows = _sweep(axis, warm=True, workers=2, executor=executor)
        assert [r.model_dump(exclude={"wall_time_s"}) for r in rows] == serial


def test_a_chain_of_warm_solves_passes_the_checker(small_resolved: ResolvedScenario) -> None:
    previous = PlanConfigs.of(solved_plan(solve_scenario(small_resolved, gap=0.0, baselines=False)))
    for factor in (2.0, 1.0, 0.5, 0.25):  # each point started from the one before it
        point = _variant(small_resolved, ("price:a10g", factor))
        warm = solve_scenario(point, gap=0.0, baselines=False, start_from=SweepStart((previous,)))
        cold = solve_scenario(point, gap=0.0, baselines=False)
        plan = solved_plan(warm)
        assert plan.tco.total_usd_per_year == pytest.approx(solved_plan(cold).tco.total_usd_per_year, rel=1e-6)
        assert check_plan(point, plan) == []
        previous = PlanConfigs.of(plan)


@pytest.mark.parametrize(
    ("change", "matched"),
    [
        (("demand:*", 2), 5),  # the neighbour's replicas no longer carry the demand: re-sized
        (("sla:*", 0.6), 4),  # a tighter SLA: its decode config is presolved away, the rest is re-planned
        (("owned:l4", 0), 3),  # its l4 configs are gone: the heuristic's configs fill in
    ],
)
def test_a_neighbour_plan_the_point_cannot_run_is_repaired(
    small_resolved: ResolvedScenario, change: tuple[str, Any], matched: int
) -> None:
    neighbour = PlanConfigs.of(solved_plan(solve_scenario(small_resolved, gap=0.0, baselines=False)))
    assert len(neighbour.configs) == 5
    point = _variant(small_resolved, change)
    f = formulate(point)
    found = neighbour_start(f, [neighbour], 0.0, None)
    assert found.source == "neighbours" and found.neighbour_configs == matched
    assert isinstance(found.start, list) and f.model.violations(found.start) == []  # a plan of the point's model
    cold = solved_plan(solve_scenario(point, gap=0.0, baselines=False))
    warm = solved_plan(solve_scenario(point, gap=0.0, baselines=False, start_from=SweepStart((neighbour,))))
    assert present(found.objective) >= cold.tco.total_usd_per_year * (1 - 1e-9)  # a start, never below the optimum
    assert warm.tco.total_usd_per_year == pytest.approx(cold.tco.total_usd_per_year, rel=1e-6)
    assert check_plan(point, warm) == []


def test_a_neighbour_plan_on_devices_the_point_lacks_is_dropped(small_resolved: ResolvedScenario) -> None:
    on_a10g = solved_plan(solve_scenario(_variant(small_resolved, ("price:a10g", 0.25)), gap=0.0, baselines=False))
    only_a10g = PlanConfigs(frozenset(c for c in PlanConfigs.of(on_a10g).configs if c[1] == "a10g"))
    assert only_a10g.configs  # the neighbour ran some steps on rented a10g
    point = _variant(small_resolved, ("hardware.rentable", []))  # nothing to rent here
    found = neighbour_start(formulate(point), [only_a10g], 0.0, None)
    assert (found.source, found.neighbour_configs) == ("heuristic", 0)
    warm = solved_plan(solve_scenario(point, gap=0.0, baselines=False, start_from=SweepStart((only_a10g,))))
    assert warm.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-6)  # a10g was unused
    assert check_plan(point, warm) == []


def test_cli_no_warm_start_gives_the_same_optimum() -> None:
    args = ["whatif", str(SMALL), "--sweep", "price:a10g=0.25,0.5,1", "--gap", "0", "--workers", "1", "--json"]
    warm, cold = runner.invoke(app, args), runner.invoke(app, [*args, "--no-warm-start"])
    assert warm.exit_code == 0 and cold.exit_code == 0, warm.output + cold.output
    usd = [[row["total_usd_per_year"] for row in json.loads(res.stdout)] for res in (warm, cold)]
    assert usd[0] == pytest.approx(usd[1], rel=1e-6)
    assert usd[1][-1] == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
