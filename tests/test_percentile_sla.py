"""Percentile SLAs: queueing pools, their replica curves, the plans and the checker's own recomputation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hetplace.common.errors import InputError
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.formulation import build_formulation
from hetplace.optimizer.pools import exact_latency_s, queue_service
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Sla
from tests.conftest import small_at, solved_plan, write_yaml


def small(tmp: Path, rate: float = 3.0, sla: float = 8.0, percentile: float | None = None, cap: bool = False) -> Any:
    """The small scenario at this rate and SLA; `cap=False` leaves max_utilisation unstated (percentile-only pools
    are then sized by their queueing delay alone)."""
    sc = small_at(tmp, rate, sla, percentile)
    if not cap:
        del sc["limits"]["max_utilisation"]
    return load_scenario(write_yaml(tmp / "s.yaml", sc))


def solve(resolved: Any) -> Plan:
    """The cost solve's plan (no tie-break): the expectations below were derived for its co-located shape."""
    return solved_plan(solve_scenario(resolved, "highs", baselines=False, gap=1e-6, tiebreak=False))


# ---- Schema -------------------------------------------------------------------------------------------------


def test_percentile_is_optional_and_bounded(tmp_path: Path) -> None:
    assert Sla(e2e_latency_s=10).percentile is None  # today's meaning: critical path of service times
    assert Sla(e2e_latency_s=10, percentile=99).percentile == 99
    with pytest.raises(InputError, match=r"sla\.percentile"):
        small(tmp_path, percentile=100.0)


# ---- Menus: who queues, at which cap, and the curves ---------------------------------------------------------


def test_pools_of_percentile_workflows_queue_and_drop_the_default_cap(tmp_path: Path) -> None:
    plain = build_formulation(small(tmp_path / "a"))
    assert not any(p.queueing for p in plain.pools) and {p.utilisation_cap for p in plain.pools} == {0.7}
    queued = build_formulation(small(tmp_path / "b", percentile=99))
    assert all(p.queueing for p in queued.pools) and {p.utilisation_cap for p in queued.pools} == {1.0}
    stated = build_formulation(small(tmp_path / "c", percentile=99, cap=True))  # the scenario states 0.7
    assert {p.utilisation_cap for p in stated.pools} == {0.7}


def test_chords_bound_every_replica_count_from_above(tmp_path: Path) -> None:
    f = build_formulation(small(tmp_path, percentile=99))
    checked = 0
    for pool in f.pools:
        for c in pool.configs:
            assert c.curves is not None
            for curve in c.curves.values():
                r = np.arange(curve.first_replicas, curve.last_replicas + 1)
                lines = np.array([a + b * r for a, b in curve.chords()])
                exact = np.array(curve.extra_s)
                assert np.all(lines.max(axis=0) >= exact - 1e-12)
                for i in curve.chord_points:  # exact at the chord points
                    assert lines.max(axis=0)[i] == pytest.approx(exact[i], rel=1e-9, abs=1e-12)
                assert np.all(np.diff(exact) <= 1e-12)  # more replicas never wait longer
                checked += 1
    assert checked > 100


def _erlang_c_by_sum(m: int, a: float) -> float:
    """Erlang C from its closed form (a^m/m!·m/(m−a)) / (Σ_{k<m} a^k/k! + a^m/m!·m/(m−a)), not the recursion."""
    top = a**m / math.factorial(m) * m / (m - a)
    return top / (sum(a**k / math.factorial(k) for k in range(m)) + top)


def test_queueing_delay_of_a_prefill_config_by_hand(tmp_path: Path) -> None:
    """The prefill pool's batch-1 config on one Xeon socket at its least stable replica count: the added latency
    of each step is the Allen–Cunneen p99 wait, recomputed here from the closed-form Erlang C."""
    f = build_formulation(small(tmp_path, percentile=99))
    pool = next(p for p in f.pools if p.id == "llama-3.1-8b:prefill")
    c = next(c for c in pool.configs if c.device == "xeon-6980p" and c.tp == 1 and c.batch == 1)
    r = c.min_replicas
    # 3 req/s × 2 LLM steps = 6 calls/s; demand (1200−1000) + (2400−1260) new tokens × 3/s = 4,020 tokens/s.
    assert pool.calls_per_s == pytest.approx(6.0) and pool.demand == pytest.approx(4020.0)
    service_s = 1 * (4020.0 / 6.0) / c.throughput  # one slot: 670 tokens per call at the config's tokens/s
    plan_s, answer_s = (c.latency_s[ref] for ref in pool.steps)
    mean = (plan_s + answer_s) / 2  # equal call rates
    scv = (plan_s**2 + answer_s**2) / 2 / mean**2 - 1
    a = 6.0 * service_s
    m = r * 1
    assert a < m and (a >= m - 1 or r == 1)  # least stable count
    wait = (1 + scv) / 2 * math.log(_erlang_c_by_sum(m, a) / 0.01) * service_s / (m - a)
    got_service, got_scv = queue_service(pool, c)
    assert (got_service, got_scv) == pytest.approx((service_s, scv), rel=1e-9)
    for ref in pool.steps:
        assert exact_latency_s(pool, c, ref, r) - c.latency_s[ref] == pytest.approx(max(wait, 0.0), rel=1e-9)


# ---- Plans -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "sla", "service", "p90", "p99"),
    [
        (3.0, 8.0, 18_561.240832, 18_356.348416, 18_561.240832),
        (5.0, 8.0, 36_186.360832, 18_561.240832, 44_735.752832),
        (8.0, 7.0, 44_940.645248, 44_735.752832, 45_145.537664),
    ],
)
def test_percentile_plans_check_and_cost_what_they_cost(
    tmp_path: Path, rate: float, sla: float, service: float, p90: float, p99: float
) -> None:
    """Service-time vs p90 vs p99 on the small scenario (cap unstated): a p90 plan may be cheaper than the
    service-time one (no flat 70 % cap: the queue sizes the pools), p99 costs at least p90, and every plan is
    valid for the independent checker."""
    got = {}
    for name, pct in (("service", None), ("p90", 90.0), ("p99", 99.0)):
        resolved = small(tmp_path / name, rate, sla, pct)
        plan = solve(resolved)
        assert check_plan(resolved, plan) == [], name
        assert plan.workflows[0].critical_path_s <= sla * (1 + 1e-9)
        got[name] = plan.tco.total_usd_per_year
    assert got == pytest.approx({"service": service, "p90": p90, "p99": p99}, rel=1e-9)
    assert got["p90"] <= got["p99"]


def test_checker_adds_the_queue_a_service_time_plan_ignores(tmp_path: Path) -> None:
    """The service-time plan, checked against the p99 scenario, reports paths without queueing delay: the
    checker's own queueing recomputation flags them."""
    plan = solve(small(tmp_path / "a", 8.0, 7.0))
    assert plan.workflows[0].critical_path_s == pytest.approx(6.645, abs=1e-3)
    problems = check_plan(small(tmp_path / "b", 8.0, 7.0, 99.0), plan)
    assert "workflow small-agent: critical path 8.256 s > SLA 7 s" in problems
    assert any("plan reports critical path 6.64" in p for p in problems)


def test_p99_plan_reports_latencies_at_its_replica_counts(tmp_path: Path) -> None:
    resolved = small(tmp_path, 5.0, 8.0, 99.0)
    plan = solve(resolved)
    f = build_formulation(resolved)
    for a in plan.pools:
        assert len([b for b in plan.pools if b.pool == a.pool]) == 1  # one config per queueing pool
    step = {s.step: s.latency_s for s in plan.steps}
    service = {s.step: s.latency_s for s in solve(small(tmp_path / "svc", 5.0, 8.0)).steps}
    assert step["answer"] > 0 and set(step) == set(service)
    assert any(p.queueing for p in f.pools)


def test_every_backend_reaches_the_p99_optimum(tmp_path: Path) -> None:
    """The chord and one-config rows reach CBC and CP-SAT (integer-scaled) alike."""
    resolved = small(tmp_path, 5.0, 8.0, 99.0)
    for backend in ("highs", "cbc", "cpsat"):
        plan = solved_plan(solve_scenario(resolved, backend, 60, 1e-6, baselines=False))
        assert plan.tco.total_usd_per_year == pytest.approx(44_735.752832, rel=1e-9), backend
        assert check_plan(resolved, plan) == [], backend


def test_robust_p99_plan_checks_at_both_ends(tmp_path: Path) -> None:
    """A robust plan for a p99 SLA: the slow end holds the SLA with the queue at slow-end throughput, and the
    nominal critical path the plan reports is the checker's, queue at nominal speed included."""
    resolved = small(tmp_path, 3.0, 10.0, 99.0)
    resolved.scenario = resolved.scenario.model_copy(update={"robust": True})
    plan = solve(resolved)
    assert plan.robust is not None and check_plan(resolved, plan) == []
    w = plan.workflows[0]
    assert w.critical_path_nominal_s is not None and w.critical_path_nominal_s < w.critical_path_s <= 10.0


def test_decomposition_reaches_the_p99_optimum(tmp_path: Path) -> None:
    """The queueing rows (chords, one config per pool) live in the family blocks the decomposition prices: it
    reaches the whole MILP's p99 optimum and the checker accepts its plan."""
    from hetplace.common.enums import Method

    resolved = small(tmp_path, 5.0, 8.0, 99.0)
    outcome = solve_scenario(resolved, "highs", 60, 1e-6, baselines=False, method=Method.decomposition)
    plan = solved_plan(outcome)
    assert plan.tco.total_usd_per_year == pytest.approx(44_735.752832, rel=1e-9)
    assert check_plan(resolved, plan) == []
