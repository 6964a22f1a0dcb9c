"""A warm start for large models: solve a restricted model first, then hand its plan to the full solve.

The restricted model keeps, per pool, the few configs cheapest per unit of coverage at each device's cheapest
source price, plus the fastest config for every step the pool serves (so an SLA the full model can meet usually
stays reachable). It is the same model with fewer columns, so its solution, with every dropped config at zero,
is feasible for the full model as it stands: a valid incumbent, never a change of the optimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from optimizer.backends import SolveResult, solve
from optimizer.formulation import DeviceOffer, Formulation
from optimizer.pools import Config, Pool
from optimizer.presolve import step_latency


def device_year_price(offer: DeviceOffer) -> float:
    """The cheapest way to have one more device of this type for a year (owned if any are owned)."""
    prices = [
        p
        for p, n in (
            (offer.owned_cost, offer.owned),
            (offer.buy_cost, offer.buy_max),
            (offer.rent_cost, offer.rent_max),
        )
        if n
    ]
    return min(prices) if prices else float("inf")


def restrict_menus(pools: list[Pool], offers: dict[str, DeviceOffer], keep: int) -> int:
    """Keep `keep` cheapest-per-coverage configs and the fastest config per served step in every pool."""
    dropped = 0
    for pool in pools:
        if len(pool.configs) <= keep:
            continue

        def cost(c: Config) -> float:
            return c.tp * device_year_price(offers[c.device]) / max(c.throughput, 1e-12)

        chosen = {id(c) for c in sorted(pool.configs, key=cost)[:keep]}
        fastest = {ref: min(step_latency(c, ref) for c in pool.configs) for ref in pool.steps}
        chosen |= {id(min(pool.configs, key=lambda c, r=ref: step_latency(c, r))) for ref in pool.steps}
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


LADDER = (1.25, 1.5, 2.0, 4.0)
WARM_START_MIN_VARS = 20_000  # below this HiGHS finds good plans on its own within seconds
WARM_START_KEEP = 6  # configs per pool in the restricted model (plus each step's fastest)


def solve_with_warm_start(
    full: Formulation,
    build_restricted: Callable[[], Formulation],
    time_limit_s: float | None,
    gap: float,
    threads: int,
) -> SolveResult:
    """HiGHS on `full`, started from the restricted model's plan when the model is large. The restricted solve gets
    a third of the time limit (20 s without one); the reported wall time covers both solves."""
    if len(full.model.vars) < WARM_START_MIN_VARS:
        return solve(full.model, "highs", time_limit_s, gap, threads)
    t0 = time.perf_counter()
    restricted = build_restricted()
    first = solve(restricted.model, "highs", (time_limit_s or 60.0) / 3, max(gap, 0.01), threads)
    start = _lift(first.values, restricted, full) if first.values is not None else None
    spent = time.perf_counter() - t0
    remaining = None if time_limit_s is None else max(1.0, time_limit_s - spent)
    res = solve(full.model, "highs", remaining, gap, threads, start=start)
    res.wall_time_s += spent
    if start is not None:
        res.first_solution_s = spent if res.first_solution_s is None else min(spent, spent + res.first_solution_s)
    return res


def _lift(values: list[float], restricted: Formulation, full: Formulation) -> list[float] | None:
    """The restricted solution as values of the full model's variables (dropped configs at zero)."""
    out = [0.0] * len(full.model.vars)
    for i, v in enumerate(restricted.model.vars):
        j = full.model._index.get(v.name)
        if j is None:
            return None  # the two models differ in more than columns: no start
        out[j] = values[i]
    return out
