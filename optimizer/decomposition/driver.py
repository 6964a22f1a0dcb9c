"""Solve a min-TCO formulation by decomposition: column generation for a proven bound, the integer master over the
columns for a plan, and, when the two are further apart than the gap asked for, the whole model with the bound as
an objective cut and the master's plan as a start (its own bound then counts too). The reported bound is always
a valid lower bound on the whole model's optimum, so the gap is a proof.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from hetplace.common.enums import Backend, SolverStatus, TerminationCondition
from hetplace.optimizer.backends import SolveResult, solve
from hetplace.optimizer.decomposition.colgen import Generation, Infeasible, Progress, generate_columns
from hetplace.optimizer.decomposition.master import IntegerMaster
from hetplace.optimizer.decomposition.partition import partition
from hetplace.optimizer.decomposition.quickprice import QuickPricer
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.linear import LinearModel

COLUMN_SHARE = 0.5  # of a time limit, at most, for column generation
NO_LIMIT_S = 3600.0  # column generation's own deadline when the solve has none
BY_ROUTE = False  # True: one block per route, the split between routes links (measured slower on the default)
QUICK = True  # single-config plans priced with numpy between exact rounds (quickprice.py)


@dataclass
class DecompositionRun:
    result: SolveResult  # values of the whole model
    master: IntegerMaster | None  # the integer master (tie-breaking re-solves it with another objective)
    master_values: list[float] | None
    generation: Generation | None


def _device_prices(f: Formulation, model: LinearModel) -> dict[int, float]:
    """Row index of each device's fleet row -> minus its cheapest device-year price (a first multiplier)."""
    rows = {r.name: k for k, r in enumerate(model.rows)}
    out = {}
    for dev, off in f.offers.items():
        k = rows.get(f"fleet[{dev}]")
        if k is not None and math.isfinite(off.cheapest_year_usd):
            out[k] = -off.cheapest_year_usd
    return out


def solve_by_decomposition(
    f: Formulation,
    backend: Backend | str = Backend.highs,
    time_limit_s: float | None = None,
    gap: float = 1e-4,
    threads: int = 1,
    progress: Progress | None = None,
    model: LinearModel | None = None,
) -> DecompositionRun:
    """`model`: the formulation's model or a copy of it with more rows and variables (it must keep the
    formulation's variable indices); the returned values are of that model."""
    model = model or f.model
    t0 = time.perf_counter()
    limit = time_limit_s if time_limit_s is not None else NO_LIMIT_S
    deadline = t0 + limit
    part = partition(f, model, by_route=BY_ROUTE)
    prices = [o.cheapest_year_usd for o in f.offers.values() if math.isfinite(o.cheapest_year_usd)]
    try:
        gen = generate_columns(
            model,
            part,
            budget_plan(f),
            t0 + COLUMN_SHARE * limit,
            gap / 5,
            max(prices, default=1.0),
            _device_prices(f, model),
            progress,
            quick=QuickPricer(f, [b.family for b in part.blocks]).best if QUICK else None,
        )
    except Infeasible:
        wall = time.perf_counter() - t0
        res = SolveResult.without_plan(
            backend, SolverStatus.infeasible, wall, time_limit_s, threads, TerminationCondition.infeasible
        )
        return DecompositionRun(res, None, None, None)
    im = IntegerMaster.build(model, part, gen.columns)
    start = im.start_of(gen.start_columns) if gen.start_columns else None
    remaining = max(1.0, deadline - time.perf_counter()) if time_limit_s is not None else None
    bound = gen.bound

    def master_progress(incumbent: float | None, _master_bound: float | None) -> None:
        if progress is not None:  # the master's own bound sees only the columns: report the proven one
            progress(incumbent, bound if math.isfinite(bound) else None)

    first = solve(im.model, backend, remaining, gap, threads, start=start, progress=master_progress)
    found_s = time.perf_counter() - t0 if first.values is not None else None
    values = im.lift(first.values) if first.values is not None else None
    objective = model.evaluate_objective(values) if values is not None else None
    if progress is not None:
        progress(objective, bound)
    need_more = objective is None or objective - bound > gap * abs(objective)
    whole: SolveResult | None = None
    if need_more and (time_limit_s is None or time.perf_counter() < deadline - 0.5):
        # The whole model, told the bound (an objective cut: no plan is lost) and started from the master's plan.
        # CP-SAT gets no cut: its integer rows round coefficients conservatively, which would make the cut cut off
        # plans just above the bound.
        # The cut sits a relative 1e-6 below the bound, for the LP tolerances the bound was computed with.
        cut = replace(model, rows=[*model.rows], vars=list(model.vars), _index=dict(model._index))
        with_cut = math.isfinite(bound) and backend != Backend.cpsat
        if with_cut:
            lowered = bound - 1e-6 * abs(bound) - 1e-6 - model.objective_constant
            cut.add_row("decomposition_bound", dict(model.objective), ">=", lowered)
        remaining = max(1.0, deadline - time.perf_counter()) if time_limit_s is not None else None
        whole = solve(cut, backend, remaining, gap, threads, start=values, progress=progress)
        if whole.status == SolverStatus.infeasible and with_cut:  # make sure the cut is not what made it so
            remaining = max(1.0, deadline - time.perf_counter()) if time_limit_s is not None else None
            whole = solve(model, backend, remaining, gap, threads, start=values, progress=progress)
        if whole.status == SolverStatus.infeasible and values is None:  # the whole model proves it: no plan exists
            res = SolveResult.without_plan(
                backend,
                SolverStatus.infeasible,
                time.perf_counter() - t0,
                time_limit_s,
                threads,
                TerminationCondition.infeasible,
            )
            return DecompositionRun(res, im, None, gen)
        better = objective is None or (whole.objective is not None and whole.objective < objective)
        if whole.values is not None and better:
            values, objective = whole.values, whole.objective
            found_s = found_s or time.perf_counter() - t0
        if whole.best_bound is not None:
            bound = max(bound, whole.best_bound)
    solver_says_optimal = False  # the whole model's solver proved its plan within the gap (its own status)
    if whole is not None and whole.status == SolverStatus.optimal and whole.values is not None:
        solver_says_optimal = values is whole.values
    wall = time.perf_counter() - t0
    if values is None or objective is None:
        early = TerminationCondition.time_limit if time_limit_s is not None else TerminationCondition.other
        res = SolveResult.without_plan(backend, SolverStatus.no_solution, wall, time_limit_s, threads, early)
        return DecompositionRun(res, im, None, gen)
    proven_bound = min(bound, objective) if math.isfinite(bound) else None
    # Proven by the bound, or by the whole model's solver as `--method milp` reports it (CP-SAT's status counts its
    # own rounded model; hinted with a master plan it was once seen to end OPTIMAL with a bound below the plan's).
    proven = solver_says_optimal or (
        proven_bound is not None and objective - proven_bound <= gap * abs(objective) + 1e-9
    )
    res = SolveResult(
        Backend(backend),
        SolverStatus.optimal if proven else SolverStatus.feasible,
        objective,
        proven_bound,
        wall,
        values,
        time_limit_s,
        threads,
        found_s,
        TerminationCondition.optimal if proven else TerminationCondition.time_limit,
    )
    if progress is not None:
        progress(objective, proven_bound)
    master_values = first.values if first.values is not None and values == im.lift(first.values) else None
    return DecompositionRun(res, im, master_values, gen)
