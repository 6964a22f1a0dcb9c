"""Ties broken toward speed: of the plans no dearer than the one found, the one with the lowest arrival-weighted
mean critical path.

A second, lexicographic solve: the same model with the makespan rows of the min_latency objective
(formulation.define_latency_objective), the TCO held at or below the found plan's (a relative 1e-7 of slack; 1e-4,
the default gap, for CP-SAT, whose integer rows round the cap's coefficients up) and the mean latency minimised,
started from the found plan. The TCO cannot rise beyond that slack, and the first solve's bound stays a bound, so
the reported gap stays a proof.

Two things keep it cheap without changing what it returns: the start is the found plan with its start times and
makespans as early as its latencies allow (an LP over the continuous variables, the integers held: `tight_start`),
so the search only ever accepts a really faster plan; and when that plan is already as fast as any plan can be
(every step on its fastest route: `latency_floor`, a bound on every plan's mean critical path), there is no solve.
"""

from __future__ import annotations

from dataclasses import replace

from hetplace.common.enums import Backend, SolverStatus
from hetplace.optimizer.assemble import critical_paths
from hetplace.optimizer.backends import SolveResult, solve
from hetplace.optimizer.formulation import Formulation, define_latency_objective
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.pools import StepRef
from hetplace.optimizer.presolve import fastest_routes

TCO_SLACK = {Backend.highs: 1e-7, Backend.cbc: 1e-7, Backend.cpsat: 1e-4}  # CP-SAT rounds the cap row's coefficients up
LATENCY_GAP = 1e-4  # relative gap on the mean latency


def copy_model(model: LinearModel) -> LinearModel:
    """A copy that can take more variables and rows without touching the original (rows are shared, unchanged)."""
    return replace(
        model, vars=list(model.vars), rows=list(model.rows), objective=dict(model.objective), _index=dict(model._index)
    )


def with_latency_rows(f: Formulation) -> tuple[LinearModel, dict[int, float]]:
    """A copy of the min-TCO model with the makespan variables and rows added (TCO still the objective; the
    formulation's variables keep their indices), and the mean-latency objective over it."""
    model = copy_model(f.model)
    define_latency_objective(replace(f, model=model))
    latency = model.objective
    model.objective = dict(f.model.objective)
    return model, latency


def start_with_makespans(model: LinearModel, values: list[float]) -> list[float]:
    """A whole start for the model with makespan rows: the plan's values, each makespan at its upper bound (the
    SLA, which every feasible plan's paths meet)."""
    return [*values, *(v.ub for v in model.vars[len(values) :])]


def tight_start(model: LinearModel, latency: dict[int, float], values: list[float]) -> tuple[list[float], float] | None:
    """The plan `values` (of the model without makespan rows) as a whole start of `model`: integers as they are,
    every latency, start time and makespan as low as the plan allows (an LP, HiGHS; milliseconds), and the plan's
    mean latency so measured. None when the LP finds no such point (then `start_with_makespans` serves)."""
    fixed = copy_model(model)
    fixed.vars = [
        replace(v, lb=float(round(values[i])), ub=float(round(values[i]))) if i < len(values) and v.integer else v
        for i, v in enumerate(model.vars)
    ]
    fixed.objective = dict(latency)
    fixed.objective_constant = 0.0
    res = solve(fixed, Backend.highs)
    if res.status != SolverStatus.optimal or res.values is None or res.objective is None:
        return None
    return res.values, res.objective


def latency_floor(f: Formulation) -> float:
    """The arrival-weighted mean critical path with every step on its fastest route and configs: no plan of `f`
    (in particular none of the cost-tied ones) is faster, whatever it costs."""
    repeat = {StepRef(wf.id, s.id): s.repeat for wf in f.workflows for s in wf.steps}
    fastest = fastest_routes(f.pools, f.workflows)
    paths = critical_paths(f, {ref: r.duration_s * repeat[ref] for ref, r in fastest.items()})
    total_rps = sum(wf.arrival_rate_rps for wf in f.workflows)
    return sum(paths[wf.id].critical_path_s * wf.arrival_rate_rps for wf in f.workflows) / total_rps


def provably_fastest(f: Formulation, plan_latency_s: float) -> bool:
    """The plan is within the tie-break's own gap of `latency_floor`: no cost-tied plan can be faster."""
    return plan_latency_s <= latency_floor(f) * (1 + LATENCY_GAP) + 1e-9


def fastest_within(
    model: LinearModel,
    latency: dict[int, float],
    tco_usd: float,
    start: list[float] | dict[int, float] | None,
    backend: Backend | str,
    time_limit_s: float | None,
    threads: int,
) -> SolveResult | None:
    """The fastest plan of `model` whose TCO (its objective) is within the slack of `tco_usd`; None when the solve
    finds none (the caller keeps its plan)."""
    m = copy_model(model)
    cap = tco_usd * (1 + TCO_SLACK[Backend(backend)]) + 1e-6
    m.add_row("tco_tie", dict(model.objective), "<=", cap - model.objective_constant)
    m.objective = dict(latency)
    m.objective_constant = 0.0
    res = solve(m, backend, time_limit_s, LATENCY_GAP, threads, start=start)
    return res if res.values is not None else None
