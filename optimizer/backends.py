"""Solver backends behind one interface: HiGHS (default, via highspy), CBC (via PuLP) and OR-Tools CP-SAT.

Each takes the solver-neutral LinearModel and returns a SolveResult with status, objective, best bound, gap and
wall time. Single-threaded by default so results are reproducible; `threads` opts in to more.

CP-SAT has integers only. Continuous variables are counted in their `resolution` (10 µs for times). Each row is
multiplied by a per-row power of ten putting its smallest coefficient at ≥ 1000 (at most 1e9) and rounded
conservatively (every integer solution satisfies the real row, see `_conservative_row`); the objective is scaled
the same way and rounded to nearest. CP-SAT's optimum can therefore sit slightly above the MILP's; the plan is
always re-evaluated with the exact (unrounded) numbers. The search interleaves CP-SAT's whole portfolio, so it is
deterministic for any thread count.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hetplace.common.enums import Backend, SolverStatus, TerminationCondition
from hetplace.common.interrupts import interrupt_requested, solver_section, stop_on_sigint
from hetplace.optimizer.linear import LinearModel

BACKENDS = tuple(Backend)
Start = list[float] | dict[int, float] | None  # a whole assignment, or index -> value for some variables
Progress = Callable[[float | None, float | None], None]  # (incumbent, bound) while solving, either may be unknown


@dataclass
class SolveResult:
    backend: Backend
    status: SolverStatus
    objective: float | None
    best_bound: float | None
    wall_time_s: float
    values: list[float] | None
    time_limit_s: float | None
    threads: int
    first_solution_s: float | None = None  # seconds to the first feasible plan (HiGHS, CP-SAT; CBC does not say)
    termination: TerminationCondition = TerminationCondition.other  # why the solver stopped

    @classmethod
    def without_plan(
        cls,
        backend: Backend | str,
        status: SolverStatus,
        wall_time_s: float,
        time_limit_s: float | None,
        threads: int,
        termination: TerminationCondition,
        first_solution_s: float | None = None,
    ) -> SolveResult:
        """A solve that ended with no plan (infeasible, or none found in time): no objective, bound or values."""
        return cls(
            backend=Backend(backend),
            status=status,
            objective=None,
            best_bound=None,
            wall_time_s=wall_time_s,
            values=None,
            time_limit_s=time_limit_s,
            threads=threads,
            first_solution_s=first_solution_s,
            termination=termination,
        )

    @property
    def gap(self) -> float | None:
        """Proven relative gap. "optimal" means within the requested gap, not necessarily 0, so it is computed from
        the bound whenever the solver gives one."""
        if self.objective is None or self.best_bound is None:
            return None
        return max(0.0, self.objective - self.best_bound) / max(abs(self.objective), 1e-9)


def _solve_highs(
    model: LinearModel,
    time_limit_s: float | None,
    gap: float,
    threads: int,
    start: Start,
    progress: Progress | None = None,
    max_nodes: int | None = None,
) -> SolveResult:
    """HiGHS through highspy directly: the model goes in as CSR arrays, which on a 200k-row instance saves the
    ~8 s PuLP spends building and writing expressions. (CBC still goes through PuLP.)"""
    import highspy
    import numpy as np

    h = highspy.Highs()
    for name, setting in (("output_flag", False), ("threads", threads), ("random_seed", 0), ("mip_rel_gap", gap)):
        h.setOptionValue(name, setting)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    if max_nodes is not None:
        h.setOptionValue("mip_max_nodes", max_nodes)
    n = len(model.vars)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, len(model.rows)
    cost = np.zeros(n)
    for i, c in model.objective.items():
        cost[i] = c
    lp.col_cost_ = cost
    lp.offset_ = model.objective_constant
    lp.col_lower_ = np.array([v.lb for v in model.vars], dtype=float)
    lp.col_upper_ = np.array([v.ub if not math.isinf(v.ub) else highspy.kHighsInf for v in model.vars], dtype=float)
    inf = highspy.kHighsInf
    lp.row_lower_ = np.array([r.rhs if r.sense in (">=", "==") else -inf for r in model.rows], dtype=float)
    lp.row_upper_ = np.array([r.rhs if r.sense in ("<=", "==") else inf for r in model.rows], dtype=float)
    starts: list[int] = [0]
    index: list[int] = []
    value: list[float] = []
    for r in model.rows:
        index.extend(r.coeffs.keys())
        value.extend(r.coeffs.values())
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value, dtype=float)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if v.integer else highspy.HighsVarType.kContinuous for v in model.vars
    ]
    h.passModel(lp)
    if isinstance(start, dict):  # partial start: HiGHS fixes these values and completes the rest by a small MIP
        idx = np.array(sorted(start), dtype=np.int32)
        h.setSolution(len(idx), idx, np.array([start[i] for i in idx], dtype=float))
    elif start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        sol.value_valid = True
        h.setSolution(sol)
    found: list[float] = []
    kinds = highspy.cb.HighsCallbackType
    interrupt_kinds = (kinds.kCallbackSimplexInterrupt, kinds.kCallbackIpmInterrupt, kinds.kCallbackMipInterrupt)
    interrupts = {int(k) for k in interrupt_kinds}
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s if time_limit_s is not None else math.inf

    def callback(kind, _message, data_out, data_in, _user_data) -> None:
        # HiGHS checks its own time limit only between LPs; on a 400k-row model one root LP with its cut rounds
        # overran a 60 s limit by 15-20 s. Interrupting from inside simplex and IPM iterations keeps the limit,
        # and stops the search within moments of a Ctrl-C (common.interrupts).
        if int(kind) in interrupts:
            if interrupt_requested() or time.perf_counter() > deadline:
                data_in.user_interrupt = True
        else:
            found.append(time.perf_counter())
        if progress is not None and int(kind) in reports:
            progress(_finite(data_out.objective_function_value), _finite(data_out.mip_dual_bound))

    reports = {int(kinds.kCallbackMipImprovingSolution), int(kinds.kCallbackMipInterrupt)}
    h.setCallback(callback, None)
    h.startCallback(kinds.kCallbackMipImprovingSolution)
    for kind in interrupt_kinds:  # kCallbackMipInterrupt among them: it also feeds `progress`
        h.startCallback(kind)
    with solver_section():  # Ctrl-C: the callback stops HiGHS, then KeyboardInterrupt
        h.run()
    wall = time.perf_counter() - t0
    first = found[0] - t0 if found else None
    status = h.getModelStatus()
    info = h.getInfo()
    ms = highspy.HighsModelStatus
    if status == ms.kOptimal:
        why = TerminationCondition.optimal
    elif status == ms.kInfeasible:
        why = TerminationCondition.infeasible
    elif status == ms.kTimeLimit or (status == ms.kInterrupt and time.perf_counter() > deadline):
        why = TerminationCondition.time_limit  # the callback interrupts only at the time limit
    else:
        why = TerminationCondition.interrupted if status == ms.kInterrupt else TerminationCondition.other
    if status == ms.kInfeasible:
        return SolveResult.without_plan(Backend.highs, SolverStatus.infeasible, wall, time_limit_s, threads, why, first)
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        none = SolverStatus.no_solution
        return SolveResult.without_plan(Backend.highs, none, wall, time_limit_s, threads, why, first)
    values = list(h.getSolution().col_value)
    obj = model.evaluate_objective(values)
    bound = float(info.mip_dual_bound) if any(v.integer for v in model.vars) else obj
    state = SolverStatus.optimal if status == ms.kOptimal else SolverStatus.feasible
    return SolveResult(Backend.highs, state, obj, bound, wall, values, time_limit_s, threads, first, why)


def solve(
    model: LinearModel,
    backend: Backend | str = Backend.highs,
    time_limit_s: float | None = None,
    gap: float = 1e-4,
    threads: int = 1,
    start: Start = None,
    progress: Progress | None = None,
    max_nodes: int | None = None,
) -> SolveResult:
    """`start`: an assignment to begin from, whole (list) or partial (index -> value): HiGHS completes a partial
    one, CP-SAT takes it as a hint; CBC ignores it. `progress` hears HiGHS's incumbent and bound while it runs.
    `max_nodes` (HiGHS only; benchmarks): stop after that many branch-and-bound nodes — 1 gives the bound after
    the root's cut rounds."""
    if max_nodes is not None and backend != "highs":
        raise ValueError("max_nodes is a HiGHS option")
    if backend == "highs":
        return _solve_highs(model, time_limit_s, gap, threads, start, progress, max_nodes)
    if backend == "cbc":
        return _solve_cbc(model, time_limit_s, gap, threads)
    if backend == "cpsat":
        return _solve_cpsat(model, time_limit_s, gap, threads, start)
    raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) and abs(x) < 1e30 else None


def pulp_problem(
    model: LinearModel, var_names: list[str] | None = None, row_names: list[str] | None = None
) -> tuple[Any, list[Any]]:
    """The model as a PuLP problem (for CBC and for writing LP/MPS files) and its variables in index order.
    Names default to v<i> and c<k>; PuLP replaces the characters it cannot write (-+[] ->/) by "_"."""
    import pulp

    prob = pulp.LpProblem("hetplace", pulp.LpMinimize)
    xs = [
        pulp.LpVariable(
            var_names[i] if var_names else f"v{i}",
            lowBound=v.lb,
            upBound=None if math.isinf(v.ub) else v.ub,
            cat="Integer" if v.integer else "Continuous",
        )
        for i, v in enumerate(model.vars)
    ]
    prob += pulp.lpSum(c * xs[i] for i, c in model.objective.items()) + model.objective_constant
    for k, r in enumerate(model.rows):
        expr = pulp.lpSum(c * xs[i] for i, c in r.coeffs.items())
        name = row_names[k] if row_names else f"c{k}"
        if r.sense == "<=":
            prob += expr <= r.rhs, name
        elif r.sense == ">=":
            prob += expr >= r.rhs, name
        else:
            prob += expr == r.rhs, name
    return prob, xs


def _solve_cbc(model: LinearModel, time_limit_s: float | None, gap: float, threads: int) -> SolveResult:
    """CBC through PuLP (bundled binary). Its bound on an early stop is read from its log."""
    import pulp

    prob, xs = pulp_problem(model)
    fd, log_path = tempfile.mkstemp(prefix="hetplace-cbc-", suffix=".log")
    os.close(fd)
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap, threads=threads, logPath=log_path)
    t0 = time.perf_counter()
    try:
        prob.solve(solver)  # Ctrl-C reaches CBC (same process group) and raises KeyboardInterrupt in the wait
    finally:
        log_bound = _cbc_log_bound(log_path)
    wall = time.perf_counter() - t0
    status_text = pulp.LpStatus[prob.status]
    values = [x.value() if x.value() is not None else 0.0 for x in xs]
    has_values = all(x.value() is not None for x in xs) and status_text in ("Optimal", "Not Solved")
    sol_status = getattr(prob, "sol_status", None)
    # CBC through PuLP stops short of optimality only at its time limit (the gap stop counts as optimal).
    early = TerminationCondition.time_limit if time_limit_s is not None else TerminationCondition.other
    if status_text == "Infeasible":
        return SolveResult.without_plan(
            Backend.cbc, SolverStatus.infeasible, wall, time_limit_s, threads, TerminationCondition.infeasible
        )
    if status_text == "Optimal" and sol_status in (None, pulp.LpSolutionOptimal):
        obj = model.evaluate_objective(values)  # CBC reports no bound when it finishes: within the gap asked for
        return SolveResult(
            Backend.cbc,
            SolverStatus.optimal,
            obj,
            obj,
            wall,
            values,
            time_limit_s,
            threads,
            None,
            TerminationCondition.optimal,
        )
    if has_values and sol_status in (pulp.LpSolutionIntegerFeasible, pulp.LpSolutionOptimal):
        obj = model.evaluate_objective(values)
        return SolveResult(
            Backend.cbc, SolverStatus.feasible, obj, log_bound, wall, values, time_limit_s, threads, None, early
        )
    return SolveResult.without_plan(Backend.cbc, SolverStatus.no_solution, wall, time_limit_s, threads, early)


def _cbc_log_bound(path: str) -> float | None:
    """The 'Lower bound:' CBC prints when it stops early (then delete the log)."""
    try:
        text = Path(path).read_text(errors="replace")
        Path(path).unlink()
    except OSError:
        return None
    found = re.findall(r"^Lower bound:\s+(\S+)", text, flags=re.MULTILINE)
    try:
        return float(found[-1]) if found else None
    except ValueError:
        return None


def _row_scale(coeffs: list[float]) -> float:
    """Power of ten that puts the row's smallest coefficient at ≥ 1000 (≤ 0.1 % rounding), capped at 1e9."""
    smallest = min((abs(c) for c in coeffs if c != 0), default=1.0)
    return float(min(10 ** max(0, math.ceil(math.log10(1000.0 / smallest))), 1e9))


def _conservative_row(coeffs: dict[int, float], sense: str, rhs: float, scale: float) -> tuple[dict[int, int], int]:
    """Integer row whose solutions all satisfy the real row (variables are ≥ 0): for ≥ rows coefficients round
    down and the right-hand side up; for ≤ rows the reverse. Equalities round to nearest."""
    if sense == ">=":
        return {i: math.floor(c * scale + 1e-9) for i, c in coeffs.items()}, math.ceil(rhs * scale - 1e-9)
    if sense == "<=":
        return {i: math.ceil(c * scale - 1e-9) for i, c in coeffs.items()}, math.floor(rhs * scale + 1e-9)
    return {i: round(c * scale) for i, c in coeffs.items()}, round(rhs * scale)


def _indicator_split(model: LinearModel, row) -> tuple[int, dict[int, float], dict[int, float | None]] | None:
    """A ≤/≥ row with exactly one binary b and other terms is two implications: b = 0 ⇒ rest ⋚ rhs and
    b = 1 ⇒ rest ⋚ rhs − coeff_b. CP-SAT propagates enforced constraints far better than big-M rows (L ≥ ℓ·x,
    r ≤ U·x). Returns (b, rest, {0: rhs or None, 1: rhs or None}), None where a branch is implied by the bounds."""
    if row.sense == "==" or len(row.coeffs) < 2:
        return None
    binaries = [i for i in row.coeffs if model.vars[i].integer and model.vars[i].lb == 0 and model.vars[i].ub == 1]
    if len(binaries) != 1:
        return None
    b = binaries[0]
    rest = {i: c for i, c in row.coeffs.items() if i != b}
    lo = sum(c * (model.vars[i].lb if c > 0 else model.vars[i].ub) for i, c in rest.items())
    hi = sum(c * (model.vars[i].ub if c > 0 else model.vars[i].lb) for i, c in rest.items())
    out: dict[int, float | None] = {}
    for value in (0, 1):
        rhs = row.rhs - row.coeffs[b] * value
        implied = (row.sense == ">=" and lo >= rhs) or (row.sense == "<=" and hi <= rhs)
        out[value] = None if implied else rhs
    return b, rest, out


def _solve_cpsat(model: LinearModel, time_limit_s: float | None, gap: float, threads: int, start: Start) -> SolveResult:
    from ortools.sat.python import cp_model

    cp = cp_model.CpModel()
    xs = []
    for v in model.vars:
        if v.integer:
            lo, hi = math.ceil(v.lb - 1e-9), math.floor(v.ub + 1e-9) if not math.isinf(v.ub) else 10**9
        else:  # bounds of auxiliary continuous variables widen to whole units; the rows carry the meaning
            lo = math.floor(v.lb / v.resolution + 1e-9)
            hi = math.ceil(v.ub / v.resolution - 1e-9) if not math.isinf(v.ub) else 10**12
        xs.append(cp.new_int_var(lo, hi, v.name))
    unit = [1.0 if v.integer else v.resolution for v in model.vars]

    def add(coeffs: dict[int, float], sense: str, rhs: float, literal=None) -> None:
        eff = {i: c * unit[i] for i, c in coeffs.items()}
        icoeffs, irhs = _conservative_row(eff, sense, rhs, _row_scale(list(eff.values())))
        expr = sum(c * xs[i] for i, c in icoeffs.items())
        ct = cp.add(expr <= irhs) if sense == "<=" else cp.add(expr >= irhs) if sense == ">=" else cp.add(expr == irhs)
        if literal is not None:
            ct.only_enforce_if(literal)

    for r in model.rows:
        split = _indicator_split(model, r)
        if split is None:
            add(r.coeffs, r.sense, r.rhs)
            continue
        b, rest, rhs_if = split
        for branch, literal in ((0, xs[b].Not()), (1, xs[b])):
            branch_rhs = rhs_if[branch]
            if branch_rhs is not None:
                add(rest, r.sense, branch_rhs, literal)
    if start is not None:  # a hint: CP-SAT tries it first and repairs it if its rounded rows reject it
        for i, x in start.items() if isinstance(start, dict) else enumerate(start):
            cp.add_hint(xs[i], round(x / unit[i]))
    # Objective coefficients are scaled like rows (smallest ≥ 1000) and rounded to nearest, so the bound CP-SAT
    # proves is within 0.05 % of the true objective's; dollars per year and mean latencies alike.
    scaled_objective = {i: c * unit[i] for i, c in model.objective.items()}
    obj_scale = _row_scale(list(scaled_objective.values()))
    cp.minimize(sum(round(c * obj_scale) * xs[i] for i, c in scaled_objective.items()))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, threads)
    # Interleave CP-SAT's portfolio (LP, core, local search, ...) deterministically, whatever the thread count.
    # A single plain worker stalled at a 58 % gap on the default scenario; interleaved it reaches the optimum.
    solver.parameters.interleave_search = True
    solver.parameters.random_seed = 0
    solver.parameters.relative_gap_limit = gap
    if time_limit_s is not None:
        solver.parameters.max_time_in_seconds = time_limit_s
    found: list[float] = []

    class _FirstSolution(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            found.append(time.perf_counter())

    # Ctrl-C: CP-SAT would catch SIGINT itself and return as if at its time limit, indistinguishable from a real
    # stop there (it can return a few seconds short of the limit). So it leaves SIGINT alone, and a watcher thread
    # stops the search at once and records the interrupt, raised when the solve returns.
    solver.parameters.catch_sigint_signal = False
    t0 = time.perf_counter()
    with solver_section(), stop_on_sigint(solver.stop_search):
        status = solver.solve(cp, _FirstSolution())
    wall = time.perf_counter() - t0
    first = found[0] - t0 if found else None
    if status == cp_model.OPTIMAL:
        why = TerminationCondition.optimal
    elif status == cp_model.INFEASIBLE:
        why = TerminationCondition.infeasible
    elif status in (cp_model.FEASIBLE, cp_model.UNKNOWN) and time_limit_s is not None:
        why = TerminationCondition.time_limit  # CP-SAT stops short of a proof only at its limit
    else:
        why = TerminationCondition.other
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = [solver.value(x) * unit[i] for i, x in enumerate(xs)]
        obj = model.evaluate_objective(values)
        best = solver.best_objective_bound
        if status == cp_model.OPTIMAL:
            # OPTIMAL means CP-SAT's own gap test passed (or its search completed), whatever best_objective_bound
            # says: when presolve settles a model it can report the objective's initial lower bound instead (seen on
            # a decomposition's finishing solve: OPTIMAL at 11,068 with a reported bound of 10,344).
            found_obj = solver.objective_value
            best = max(best, found_obj - gap * max(1.0, abs(found_obj)))
        bound = best / obj_scale + model.objective_constant
        return SolveResult(
            Backend.cpsat,
            SolverStatus.optimal if status == cp_model.OPTIMAL else SolverStatus.feasible,
            obj,
            float(bound),
            wall,
            values,
            time_limit_s,
            threads,
            first,
            why,
        )
    if status == cp_model.INFEASIBLE:
        return SolveResult.without_plan(Backend.cpsat, SolverStatus.infeasible, wall, time_limit_s, threads, why)
    return SolveResult.without_plan(Backend.cpsat, SolverStatus.no_solution, wall, time_limit_s, threads, why)
