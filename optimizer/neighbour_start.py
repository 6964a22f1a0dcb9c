"""A start for one point of a sweep from the plans of its neighbours (points solved before it).

Neighbouring points of a sweep mostly run the same configs. A neighbour's plan cannot be handed over as it is: the
point may price, size or limit things differently (its plan may need more replicas, a device may no longer be
offered, an SLA may be tighter), and its variables are another model's. So the start is the best plan that uses
only the configs of the neighbours' plans and of the budget heuristic's plan (heuristic.py): the point's own model
with every other config fixed at zero, a small MIP that HiGHS solves in a fraction of the full solve. It is at
least as cheap as the heuristic's plan and as the neighbours' plans re-sized for the point (both are among its
solutions), and it is a solution of the point's full model (only bounds were tightened), so it can change the
time to the optimum, never the optimum. When no neighbour config exists in the point's model, or the restricted
model has no solution in its time, the heuristic's plan is the start, as in a cold solve.

Why no cutoff from a neighbour's objective: another point's optimum bounds nothing here in general (a dearer
price, more demand or a tighter SLA raise this point's optimum above it). The start's own objective, re-evaluated
on this point's model, is the valid incumbent, and HiGHS uses it as one. Where the sweep can prove a lower bound
for the point from other points (a price axis, whatif/warm.py), it comes as `SweepStart.lower_bound_usd`: when the
start is within the gap of it, the start is the point's plan, proven by that bound, and the MILP is skipped.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from hetplace.common.enums import Backend, SolverStatus, TerminationCondition
from hetplace.optimizer.backends import Progress, SolveResult, Start, solve
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.pools import Config
from hetplace.problems.plan import Plan

# pool, device, tensor parallel, batch, weight dtype, KV dtype: what names a config in every variant of a scenario
# (a config's key also carries a load-level tag the plan does not record; all level variants are kept)
ConfigSig = tuple[str, str, int, int, str | None, str | None]

RESTRICTED_SHARE = 0.2  # of the point's time limit for the restricted model
RESTRICTED_MAX_S = 10.0  # without a time limit
RESTRICTED_GAP = 1e-4  # the restricted model is small: solve it closely, its plan may be proven by a sweep's bound


@dataclass(frozen=True)
class PlanConfigs:
    """The configs a finished plan runs (picklable: it travels from a worker to the next point's worker)."""

    configs: frozenset[ConfigSig]

    @classmethod
    def of(cls, plan: Plan) -> PlanConfigs:
        return cls(
            frozenset((a.pool, a.device, a.tensor_parallel, a.batch, a.weight_dtype, a.kv_dtype) for a in plan.pools)
        )


@dataclass(frozen=True)
class SweepStart:
    """What a sweep knows about a point before solving it."""

    plans: tuple[PlanConfigs, ...]  # neighbours' plans, nearest first
    lower_bound_usd: float | None = None  # a proven lower bound on the point's min TCO (USD/year), if any


def config_sig(c: Config) -> ConfigSig:
    return (c.pool, c.device, c.tp, c.batch, c.dtype, c.kv_dtype)


def restricted_model(f: Formulation, keep: set[str]) -> LinearModel:
    """f's model with the replica and in-use variables of every config not in `keep` (keys) fixed at zero. Rows
    and objective are shared with f's model, not copied (neither is changed)."""
    m = copy.copy(f.model)
    m.vars = list(f.model.vars)
    for key, v in f.config_vars.items():
        if key not in keep:
            m.vars[v.replicas] = replace(m.vars[v.replicas], ub=0.0)
            m.vars[v.in_use] = replace(m.vars[v.in_use], ub=0.0)
    return m


@dataclass(frozen=True)
class NeighbourStart:
    """The start `neighbour_start` found and where it came from (for logs and tests)."""

    start: Start
    objective: float | None  # of the start on the point's model; None for the heuristic's partial plan
    neighbour_configs: int  # neighbour configs found in the point's model
    source: str  # "neighbours" (the restricted model's plan) or "heuristic"


def neighbour_start(
    f: Formulation, plans: Sequence[PlanConfigs], gap: float, time_limit_s: float | None, threads: int = 1
) -> NeighbourStart:
    """The best plan over the neighbours' and the heuristic's configs (see module docstring), else the heuristic's."""
    heuristic = budget_plan(f)
    wanted = set().union(*(p.configs for p in plans)) if plans else set()
    from_neighbours = {c.key for pool in f.pools for c in pool.configs if config_sig(c) in wanted}
    if not from_neighbours:
        return NeighbourStart(heuristic, None, 0, "heuristic")
    keep = set(from_neighbours)
    if heuristic is not None:
        keep |= {k for k, v in f.config_vars.items() if heuristic.get(v.replicas, 0.0) > 0}
    limit = RESTRICTED_MAX_S if time_limit_s is None else min(RESTRICTED_MAX_S, RESTRICTED_SHARE * time_limit_s)
    res = solve(restricted_model(f, keep), Backend.highs, limit, min(gap, RESTRICTED_GAP), threads, start=heuristic)
    if res.values is None:  # the neighbours' configs cannot serve this point, not even with the heuristic's
        return NeighbourStart(heuristic, None, len(from_neighbours), "heuristic")
    return NeighbourStart(res.values, f.model.evaluate_objective(res.values), len(from_neighbours), "neighbours")


def solve_from_neighbours(
    f: Formulation,
    sweep: SweepStart,
    backend: Backend | str,
    time_limit_s: float | None,
    gap: float,
    threads: int,
    progress: Progress | None = None,
) -> SolveResult:
    """Solve f's model from `neighbour_start`, or take the start when the sweep's lower bound proves it within the
    gap. The wall time covers the start too. CBC takes no start: it solves cold."""
    if backend == Backend.cbc:
        return solve(f.model, backend, time_limit_s, gap, threads)
    t0 = time.perf_counter()
    found = neighbour_start(f, sweep.plans, gap, time_limit_s, threads)
    spent = time.perf_counter() - t0
    bound, usd = sweep.lower_bound_usd, found.objective
    if isinstance(found.start, list) and usd is not None and bound is not None and usd - bound <= gap * abs(usd):
        return SolveResult(
            Backend(backend),
            SolverStatus.optimal,
            usd,
            min(bound, usd),
            spent,
            found.start,
            time_limit_s,
            threads,
            spent,
            TerminationCondition.optimal,
        )
    remaining = None if time_limit_s is None else max(1.0, time_limit_s - spent)
    res = solve(f.model, backend, remaining, gap, threads, start=found.start, progress=progress)
    res.wall_time_s += spent
    if res.first_solution_s is not None:
        res.first_solution_s += spent
    return res
