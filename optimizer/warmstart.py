"""A warm start for large models: solve a restricted model first, then hand its plan to the full solve.

The restricted model keeps, per pool, the few configs cheapest per unit of coverage at each device's cheapest
source price, plus the fastest config for every step the pool serves (so an SLA the full model can meet usually
stays reachable). It is the same model with fewer columns, so its solution, with every dropped config at zero,
is feasible for the full model as it stands: a valid incumbent, never a change of the optimum.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hetplace.optimizer.backends import Progress, SolveResult, Start, solve
from hetplace.optimizer.formulation import DeviceOffer, Formulation
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.pools import Config, Pool
from hetplace.optimizer.presolve import fastest_config, step_latency


def restrict_menus(
    pools: list[Pool], offers: dict[str, DeviceOffer], keep: int, must_keep: frozenset[str] = frozenset()
) -> int:
    """Keep `keep` cheapest-per-coverage configs, the fastest config per served step, a latency ladder and the
    configs named in `must_keep` (those of a heuristic plan, so it stays feasible) in every pool."""
    dropped = 0
    for pool in pools:
        if len(pool.configs) <= keep:
            continue

        def cost(c: Config) -> float:
            return c.tp * offers[c.device].cheapest_year_usd / max(c.throughput, 1e-12)

        chosen = {id(c) for c in sorted(pool.configs, key=cost)[:keep]}
        chosen |= {id(c) for c in pool.configs if c.key in must_keep}
        fastest = {ref: min(step_latency(c, ref) for c in pool.configs) for ref in pool.steps}
        chosen |= {id(fastest_config(pool.configs, ref)) for ref in pool.steps}
        # A latency ladder: the cheapest config within 1.25×, 1.5×, 2×, 4× of the fastest on every served step, so
        # the restricted model can trade speed for cost where an SLA leaves room.
        for factor in LADDER:
            within = [c for c in pool.configs if all(step_latency(c, r) <= factor * t for r, t in fastest.items())]
            if within:
                chosen.add(id(min(within, key=cost)))
        kept = [c for c in pool.configs if id(c) in chosen]
        dropped += len(pool.configs) - len(kept)
        pool.configs = kept
    return dropped


log = logging.getLogger(__name__)
LADDER = (1.25, 1.5, 2.0, 4.0)
WARM_START_MIN_VARS = 20_000  # below this HiGHS finds good plans on its own within seconds
WARM_START_KEEP = 6  # configs per pool in the restricted model (plus each step's fastest)


def solve_with_warm_start(
    full: Formulation,
    build_restricted: Callable[[frozenset[str]], Formulation],
    time_limit_s: float | None,
    gap: float,
    threads: int,
    progress: Progress | None = None,
) -> SolveResult:
    """HiGHS on `full`, started from a plan. Every model first gets the budget heuristic's plan (heuristic.py).
    Large models then solve a restricted model (small menus plus the heuristic's configs) from that plan, with a
    third of the time limit (20 s without one), and its plan, lifted, starts the full solve. The reported wall
    time covers everything after the model is built."""
    t0 = time.perf_counter()
    heuristic = budget_plan(full)
    plan: Start = heuristic
    first_plan_s = None
    if len(full.model.vars) >= WARM_START_MIN_VARS:
        in_plan = frozenset(
            c for c, v in full.config_vars.items() if heuristic is not None and heuristic.get(v.replicas, 0.0) > 0
        )
        restricted = build_restricted(in_plan)
        restricted_start = _rename(heuristic, full, restricted) if heuristic is not None else None
        limit = (time_limit_s or 60.0) / 3
        t1 = time.perf_counter()
        first = solve(restricted.model, "highs", limit, max(gap, 0.01), threads, start=restricted_start)
        if first.values is not None:
            plan = _lift(first.values, restricted, full)
            if first.first_solution_s is not None:
                first_plan_s = t1 - t0 + first.first_solution_s
        log.info(
            "warm start: heuristic and restricted model %.1f s, restricted solve %.1f s (%s, %s)",
            t1 - t0,
            first.wall_time_s,
            first.status,
            first.objective,
        )
    spent = time.perf_counter() - t0
    remaining = None if time_limit_s is None else max(1.0, time_limit_s - spent)
    res = solve(full.model, "highs", remaining, gap, threads, start=plan, progress=progress)
    res.wall_time_s += spent
    if res.first_solution_s is not None:
        res.first_solution_s += spent
    if first_plan_s is not None:
        res.first_solution_s = min(first_plan_s, res.first_solution_s or first_plan_s)
    return res


def _rename(plan: dict[int, float], full: Formulation, restricted: Formulation) -> dict[int, float]:
    """A partial start of the full model as one of the restricted model (same variable names)."""
    out: dict[int, float] = {}
    for i, v in plan.items():
        j = restricted.model.find_var(full.model.vars[i].name)
        if j is not None:
            out[j] = v
    return out


def _lift(values: list[float], restricted: Formulation, full: Formulation) -> list[float] | None:
    """The restricted solution as values of the full model's variables (dropped configs at zero)."""
    out = [0.0] * len(full.model.vars)
    for i, v in enumerate(restricted.model.vars):
        j = full.model.find_var(v.name)
        if j is None:
            return None  # the two models differ in more than columns: no start
        out[j] = values[i]
    return out
