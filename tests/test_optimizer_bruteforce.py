"""Brute force on tiny instances: enumerate every replica mix of every pool and compare with the MILP optimum.

The enumeration shares the pools and menus (data) with the formulation but none of the model: it walks all
replica vectors that fit the available devices, keeps those that meet each pool's capacity, and prices the
cheapest combination whose critical path meets the SLA.
"""

from __future__ import annotations

import itertools

import pytest

import hetplace.optimizer.pools as pools_module
from hetplace.common.enums import Phase
from hetplace.optimizer.formulation import device_offers, economics_of
from hetplace.optimizer.solve import formulate, solve_scenario
from tests.conftest import load_case, one_llm_call, solved_plan


def _replica_vectors(configs, budget: dict[str, int]):
    """All replica vectors (one count per config) whose device use stays within `budget`."""

    def rec(i: int, left: dict[str, int]):
        if i == len(configs):
            yield ()
            return
        c = configs[i]
        for r in range(left[c.device] // c.tp + 1):
            nxt = dict(left)
            nxt[c.device] -= r * c.tp
            for rest in rec(i + 1, nxt):
                yield (r, *rest)

    yield from rec(0, budget)


def _pareto(options: list[tuple[dict[str, int], float, float]]) -> list[tuple[dict[str, int], float, float]]:
    """Drop options another beats on every count: no more devices of any type, no slower, no less coverage
    (cost rises with device use, so a dropped option is never part of a unique cheapest mix)."""

    def beats(a, b) -> bool:
        return a is not b and all(a[0][d] <= b[0][d] for d in a[0]) and a[1] <= b[1] and a[2] >= b[2]

    kept: list[tuple[dict[str, int], float, float]] = []
    for o in options:
        if not any(beats(k, o) or (k == o) for k in kept):
            kept = [k for k in kept if not beats(o, k)] + [o]
    return kept


def brute_force(resolved) -> tuple[float, set[frozenset[str]]] | None:
    """Cheapest feasible replica mix, and every set of phases an optimal mix uses (ties happen). The model's
    traffic may be split between disaggregated serving (prefill and decode pools) and co-located serving: the
    disaggregated coverage (the lesser of the two pools') plus the co-located coverage must reach 1, and a step
    takes as long as its slower route in use."""
    f = formulate(resolved)
    offers = device_offers(resolved, economics_of(resolved))
    budget = {d: o.owned + o.rent_max for d, o in offers.items()}
    u = resolved.scenario.limits.max_utilisation
    wf = resolved.workflows[0]
    options = []
    for pool in f.pools:
        feasible = []
        for vec in _replica_vectors(pool.configs, budget):
            # each config counts at the load it may carry: a co-located load level below the cap counts for less
            coverage = (
                sum(r * c.throughput * min(c.load_limit, u) for r, c in zip(vec, pool.configs, strict=True))
                / pool.demand
            )
            use = {d: 0 for d in budget}
            for r, c in zip(vec, pool.configs, strict=True):
                use[c.device] += r * c.tp
            lat = max(
                (
                    c.latency_s[ref] + c.extra_s.get(ref, 0.0)
                    for r, c in zip(vec, pool.configs, strict=True)
                    if r
                    for ref in pool.steps
                ),
                default=0.0,
            )
            feasible.append((use, lat, min(coverage, 1.0)))
        options.append(_pareto(feasible))
    phase = [p.phase for p in f.pools]
    best = None
    for combo in itertools.product(*options):
        use = {d: sum(o[0][d] for o in combo) for d in budget}
        if any(use[d] > budget[d] for d in budget):
            continue
        by_phase = dict(zip(phase, combo, strict=True))
        dis = min((by_phase[p][2] for p in (Phase.prefill, Phase.decode) if p in by_phase), default=0.0)
        col = by_phase[Phase.colocated][2] if Phase.colocated in by_phase else 0.0
        if dis + col < 1 - 1e-9:
            continue
        dis_time = sum(by_phase[p][1] for p in (Phase.prefill, Phase.decode) if p in by_phase and dis > 0)
        col_time = by_phase[Phase.colocated][1] if col > 0 else 0.0
        if max(dis_time, col_time) * wf.steps[0].repeat > wf.sla.e2e_latency_s:  # one LLM step
            continue
        cost = 0.0
        for d, n in use.items():
            owned = min(n, offers[d].owned)
            cost += owned * offers[d].owned_cost + (n - owned) * offers[d].rent_cost
        used = frozenset(({"prefill", "decode"} if dis > 0 else set()) | ({"colocated"} if col > 0 else set()))
        if best is None or cost < best[0] - 1e-9 * cost:
            best = (cost, {used})
        elif cost <= best[0] + 1e-9 * cost:
            best[1].add(used)
    return best


@pytest.mark.parametrize(
    ("rate", "sla", "owned_l4", "prompt", "phases"),
    [
        (0.5, 20.0, 2, 1000, {"colocated"}),
        (2.0, 12.0, 1, 1000, {"colocated"}),
        (1.0, 6.0, 2, 1000, {"colocated"}),
        (1.0, 5.0, 3, 1000, {"prefill", "decode"}),  # tight SLA: decode stalled behind prefill would be too slow
        (3.0, 8.0, 3, 4000, None),  # optimum tied between a split and a disaggregated-only plan
    ],
)
def test_milp_matches_brute_force_on_tiny_instances(
    monkeypatch: pytest.MonkeyPatch,
    rate: float,
    sla: float,
    owned_l4: int,
    prompt: int,
    phases: set[str] | None,
) -> None:
    monkeypatch.setattr(pools_module, "TENSOR_PARALLEL", (1, 2))
    monkeypatch.setattr(pools_module, "PREFILL_BATCHES", (1, 4))
    monkeypatch.setattr(pools_module, "DECODE_BATCHES", (1, 16))
    hardware = {"owned": [{"device": "l4", "count": owned_l4}], "rentable": [{"device": "a10g", "max_count": 4}]}
    resolved = load_case(one_llm_call(rate, sla, hardware, prompt))
    expected = brute_force(resolved)
    outcome = solve_scenario(resolved, "highs", baselines=False)
    if expected is None:
        assert outcome.status == "infeasible"
        return
    assert outcome.status == "optimal"
    plan = solved_plan(outcome)
    cost, optimal_phase_sets = expected
    assert plan.tco.total_usd_per_year == pytest.approx(cost, rel=1e-9)
    assert frozenset(p.phase for p in plan.pools) in optimal_phase_sets
    if phases is not None:  # the serving mode this case is about is among the optimal ones
        assert frozenset(phases) in optimal_phase_sets
    cpsat = solve_scenario(resolved, "cpsat", baselines=False)
    assert solved_plan(cpsat).tco.total_usd_per_year == pytest.approx(cost, rel=1e-3)
