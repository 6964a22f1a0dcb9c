"""Solve a scenario end to end: build → prune → solve → assemble the plan → baselines; diagnose infeasibility.

Exit semantics for the CLI: a plan (optimal or feasible) → 0; infeasible with a diagnosis → 1; no plan within
the time limit → 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hetplace.catalogs.schema import DeviceKind
from hetplace.common.enums import LLM_PHASES, Backend, Method, Objective, SolverStatus
from hetplace.costmodels.capacity import min_devices_for_weights
from hetplace.costmodels.precision import Precision
from hetplace.optimizer.assemble import assemble_plan, critical_paths
from hetplace.optimizer.availability import availability_causes, node_limited_purchases
from hetplace.optimizer.backends import Progress, SolveResult, solve
from hetplace.optimizer.baselines import Menus, homogeneous_baselines
from hetplace.optimizer.decomposition.driver import solve_by_decomposition
from hetplace.optimizer.extensions import apply_extensions, diagnosis_note, load_extensions, record_extensions
from hetplace.optimizer.formulation import (
    LIMITS,
    TIME_RESOLUTION_S,
    DeviceOffer,
    Formulation,
    build_formulation,
    define_latency_objective,
    formulation_from_pools,
)
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.model_file import write_model
from hetplace.optimizer.neighbour_start import SweepStart, solve_from_neighbours
from hetplace.optimizer.pools import Pool, StepRef
from hetplace.optimizer.presolve import fastest_routes, prune_by_critical_path, prune_dominated
from hetplace.optimizer.stopwatch import Stopwatch
from hetplace.optimizer.tiebreak import (
    fastest_within,
    provably_fastest,
    start_with_makespans,
    tight_start,
    with_latency_rows,
)
from hetplace.optimizer.warmstart import WARM_START_KEEP, restrict_menus, solve_with_warm_start
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan


@dataclass
class SolveOutcome:
    status: SolverStatus
    plan: Plan | None
    diagnosis: list[str] = field(default_factory=list)
    result: SolveResult | None = None
    parts: Stopwatch = field(default_factory=Stopwatch)  # where the time went (min_tco: build, solve, tie-break, ...)


def formulate(
    resolved: ResolvedScenario,
    device_filter: set[str] | None = None,
    relax: frozenset[str] = frozenset(),
    plain: bool = False,
    restrict: Callable[[list[Pool], dict[str, DeviceOffer]], int] | None = None,
    menus: Menus | None = None,
) -> Formulation:
    """The model as solved: presolved and tightened. `plain=True` gives the untightened, unpruned model with the
    same optimum (benchmarks measure the difference); `restrict` may drop more configs after the exact presolve
    (a restricted model for warm starts — its optimum can be worse); `menus` keeps the whole menus before any
    pruning (the baselines reuse them)."""

    def prune(pools: list[Pool], offers: dict[str, DeviceOffer]) -> int:
        if menus is not None:
            menus.keep(pools, offers)
        dropped = prune_by_critical_path(pools, resolved.workflows) + prune_dominated(pools)
        return dropped + (restrict(pools, offers) if restrict is not None else 0)

    return build_formulation(resolved, device_filter, prune=None if plain else prune, relax=relax, tighten=not plain)


def diagnose_limits(resolved: ResolvedScenario) -> list[str]:
    """Each limit on its own: the least power, up-front purchase and annual TCO any SLA-feasible fleet needs,
    against the scenario's cap or budget (the least value is the solver's proven bound, so a reported excess is
    certain)."""
    limits = resolved.scenario.limits
    checks = [
        ("power_cap", limits.power_cap_kw, "power cap {limit:g} kW < minimum {need:.1f} kW the demand needs"),
        ("capex_budget", limits.capex_budget_usd, "capex budget {limit:,.0f} USD < minimum purchases {need:,.0f} USD"),
        (
            "annual_budget",
            limits.annual_budget_usd,
            "annual budget {limit:,.0f} USD < minimum TCO {need:,.0f} USD/year",
        ),
    ]
    causes = []
    relaxed = None
    for name, limit, message in checks:
        if limit is None:
            continue
        relaxed = relaxed or formulate(resolved, relax=frozenset(LIMITS))  # one model; only the objective changes
        relaxed.model.objective = {
            "power_cap": relaxed.power_coeffs,
            "capex_budget": relaxed.capex_coeffs,
            "annual_budget": relaxed.tco_objective,
        }[name]
        res = solve(relaxed.model, "highs", time_limit_s=60)
        if res.best_bound is not None and res.best_bound > limit * (1 + 1e-9):
            causes.append(message.format(limit=limit, need=res.best_bound))
    return causes


ROBUST_NOTE = (
    "robust planning: every LLM latency above is at the slow end of its device's serving error band (× 1 + band) "
    "and every LLM throughput is derated by it; the nominal estimate may be feasible (solve without --robust)"
)


def diagnose(resolved: ResolvedScenario) -> list[str]:
    """Name the causes of infeasibility with their numbers.

    Works on the unpruned model (every config that fits the available devices), so a pool emptied only by the
    SLA is reported as an SLA problem, not as "nothing can serve it"."""
    f = build_formulation(resolved)
    repeat = {StepRef(wf.id, s.id): s.repeat for wf in f.workflows for s in wf.steps}
    causes: list[str] = []
    offered = [o.device for o in f.offers.values()]
    reported: set[str] = set()
    for pool in f.pools:
        if pool.configs or pool.family in reported:
            continue
        reported.add(pool.family)
        if pool.model is not None:
            model = resolved.catalog.model(pool.model)
            precision = Precision(model.weight_dtype, model.kv_dtype)
            needs = []
            for dev in offered:
                if dev.kind == DeviceKind.cpu and pool.phase in LLM_PHASES:
                    continue
                k = min_devices_for_weights(model, precision, dev.mem_gb)
                if k and dev.supports(model.weight_dtype):
                    needs.append(f"{k}× {dev.id} ({dev.mem_gb:g} GB, {f.offers[dev.id].available} available)")
            detail = "; ".join(needs[:4]) if needs else f"no offered device runs {model.weight_dtype.value}"
            causes.append(f"pool {pool.id}: no offered device can serve model {pool.model} — it needs {detail}")
        else:
            causes.append(f"pool {pool.id}: no offered device can serve it (tools need CPUs; indexes must fit)")
    # Fastest possible critical path per workflow: every step on its fastest route and configs.
    fastest = fastest_routes(f.pools, f.workflows)
    all_repeats_s = {ref: r.duration_s * repeat[ref] for ref, r in fastest.items()}
    paths = critical_paths(f, all_repeats_s)
    for wf in f.workflows:
        path = paths[wf.id]
        if path.critical_path_s > wf.sla.e2e_latency_s:
            on_path_s = {s: all_repeats_s[StepRef(wf.id, s)] for s in path.critical_steps}
            slowest = max(path.critical_steps, key=on_path_s.__getitem__)
            ref = StepRef(wf.id, slowest)
            causes.append(
                f"workflow {wf.id}: fastest possible critical path {path.critical_path_s:.2f} s > SLA "
                f"{wf.sla.e2e_latency_s:g} s (step {slowest}: {all_repeats_s[ref]:.2f} s on {fastest[ref].device})"
            )
    if not causes:
        causes.extend(diagnose_limits(resolved))
    if not causes:
        causes.extend(availability_causes(resolved))
    if not causes:
        causes.append(
            "infeasible, but no single cause was isolated: every pool has configs, every critical path can meet "
            "its SLA and each limit alone can be met, so limits combine (inventory, availability, power cap, "
            "budgets); try raising max_count, budgets or the power cap"
        )
    causes.extend(node_limited_purchases(resolved))  # e.g. 4 H100 allowed, nodes of 8: none can be bought
    if resolved.scenario.robust:
        causes.append(ROBUST_NOTE)
    return causes


OBJECTIVES = tuple(Objective)


def solve_scenario(
    resolved: ResolvedScenario,
    backend: Backend | str = Backend.highs,
    time_limit_s: float | None = None,
    gap: float = 1e-4,
    threads: int = 1,
    baselines: bool = True,
    objective: Objective | str = Objective.min_tco,
    model_file: Path | None = None,
    method: Method | str = Method.milp,
    progress: Progress | None = None,
    tiebreak: bool = True,
    start_from: SweepStart | None = None,
) -> SolveOutcome:
    """min_tco: the cheapest fleet meeting every SLA and limit, of those within the gap the one with the lowest
    arrival-weighted mean critical path (tiebreak.py; `method` says how the TCO is minimised). min_latency: the
    lowest arrival-weighted mean end-to-end latency within the limits (set limits.annual_budget_usd for "fastest
    under a budget"), then the cheapest fleet achieving it (a second, lexicographic solve). Baselines are TCO
    comparisons, min_tco only. The scenario's extra_constraints add user rows (extensions.py); `model_file` gets
    the min-TCO model as built. `tiebreak=False` returns the cost solve's plan as it is (same TCO, possibly a
    slower one): for callers that need that plan, and 2–5 s faster. `SolveOutcome.parts` says where the time went.
    `start_from` (sweeps: the plans of neighbouring points) starts the min-TCO MILP from the best plan over their
    configs (neighbour_start.py)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    extensions = load_extensions(resolved)  # before the slow build, so a typo fails fast
    menus, watch = Menus(), Stopwatch()
    with watch.part("build"):
        f = formulate(resolved, menus=menus)
        user_rows = apply_extensions(f, extensions, resolved.source)
    if model_file is not None:
        write_model(f.model, model_file)
    if any(not p.configs for p in f.pools):
        return SolveOutcome(SolverStatus.infeasible, None, diagnose(resolved))
    if objective == Objective.min_latency:
        fastest = _solve_min_latency(resolved, f, backend, time_limit_s, gap, threads)
        record_extensions(fastest.plan, user_rows)
        return fastest
    res = solve_fastest_cheapest(
        resolved, f, backend, time_limit_s, gap, threads, method, progress, tiebreak, watch, start_from
    )
    if res.status == SolverStatus.infeasible:
        return SolveOutcome(SolverStatus.infeasible, None, diagnose(resolved) + diagnosis_note(user_rows), res)
    if res.values is None:
        return SolveOutcome(SolverStatus.no_solution, None, [], res)
    base = []
    if baselines:
        with watch.part("baselines"):
            solve_one = baseline_solver(resolved, backend, time_limit_s, gap, threads, method)
            base = homogeneous_baselines(resolved, menus, solve_one, res.objective)
    with watch.part("plan"):
        plan = assemble_plan(f, res, resolved.scenario.id, base)
        record_extensions(plan, user_rows)
    return SolveOutcome(res.status, plan, [], res, watch)


# The tie-breaking solve gets a twentieth of the TCO solve's wall time, between TIE_BREAK_MIN_S and TIE_BREAK_MAX_S.
# The floor is far above what a small model needs (0.1 s on the small scenario), so a busy machine does not change
# which plan comes back; on the default scenario no budget up to a minute finds a faster plan from the full model.
TIE_BREAK_SHARE = 0.05
TIE_BREAK_MIN_S = 2.0
TIE_BREAK_MAX_S = 5.0


def solve_fastest_cheapest(
    resolved: ResolvedScenario,
    f: Formulation,
    backend: Backend | str,
    time_limit_s: float | None,
    gap: float,
    threads: int,
    method: Method | str = Method.milp,
    progress: Progress | None = None,
    tiebreak: bool = True,
    watch: Stopwatch | None = None,
    start_from: SweepStart | None = None,
) -> SolveResult:
    """The min-TCO plan, then of the plans no dearer the fastest (tiebreak.py), within a twentieth of the first
    solve's time (2-5 s, and within the time limit), unless the plan is provably the fastest already. Only a
    faster plan replaces the first; the TCO result, bound and gap stay the first solve's. `watch` gets the two
    solves' times."""
    watch = watch or Stopwatch()
    with watch.part("solve"):
        n = len(f.model.vars)
        if method == Method.decomposition:  # its values are of the model with the makespan rows, which it keeps
            model, latency = with_latency_rows(f)
            run = solve_by_decomposition(f, backend, time_limit_s, gap, threads, progress, model)
            res = run.result
        else:
            res = solve_model(resolved, f, backend, time_limit_s, gap, threads, progress, start_from)
    if res.values is None or res.objective is None:
        return res
    with watch.part("tiebreak"):
        first_values = res.values[:n]
        budget = min(max(TIE_BREAK_MIN_S, TIE_BREAK_SHARE * res.wall_time_s), TIE_BREAK_MAX_S)
        if time_limit_s is not None:
            budget = min(budget, max(0.0, time_limit_s - res.wall_time_s))
        res.values = first_values
        if budget <= 0.0 or not tiebreak:
            return res
        if method != Method.decomposition:  # built only when the tie-break runs
            model, latency = with_latency_rows(f)
        tight = tight_start(model, latency, first_values)
        if tight is not None and provably_fastest(f, tight[1]):
            return res
        if method == Method.decomposition and run.master is not None and run.master_values is not None:
            im, cap = run.master, res.objective
            tie = fastest_within(im.model, im.objective_of(latency), cap, run.master_values, backend, budget, 1)
            tied = im.lift(tie.values)[:n] if tie is not None and tie.values is not None else None
        else:
            start = tight[0] if tight is not None else start_with_makespans(model, first_values)
            tie = fastest_within(model, latency, res.objective, start, backend, budget, threads)
            tied = tie.values[:n] if tie is not None and tie.values is not None else None
        if tied is not None and tie is not None:
            res.wall_time_s += tie.wall_time_s
            candidate = replace(res, values=tied, objective=f.model.evaluate_objective(tied))
            before = assemble_plan(f, res, resolved.scenario.id).mean_critical_path_s
            after = assemble_plan(f, candidate, resolved.scenario.id).mean_critical_path_s
            if before is not None and after is not None and after < before - 1e-9:
                return candidate
        return res


def solve_model(
    resolved: ResolvedScenario,
    f: Formulation,
    backend: Backend | str,
    time_limit_s: float | None,
    gap: float,
    threads: int,
    progress: Progress | None = None,
    start_from: SweepStart | None = None,
) -> SolveResult:
    """Solve a min-TCO formulation from the budget heuristic's plan (heuristic.py); large models on HiGHS then
    start from a restricted model's plan (warmstart.py). With `start_from`, from the best plan over its plans' and
    the heuristic's configs instead (neighbour_start.py)."""
    if start_from is not None:
        return solve_from_neighbours(f, start_from, backend, time_limit_s, gap, threads, progress)
    if backend != Backend.highs:
        return solve(f.model, backend, time_limit_s, gap, threads, start=budget_plan(f))

    def restricted(must_keep: frozenset[str]) -> Formulation:
        pools = [replace(p, configs=list(p.configs)) for p in f.pools]  # the menus are reused, not rebuilt
        restrict_menus(pools, f.offers, WARM_START_KEEP, must_keep)
        return formulation_from_pools(resolved, pools, f.offers)

    return solve_with_warm_start(f, restricted, time_limit_s, gap, threads, progress)


def _solve_min_latency(
    resolved: ResolvedScenario,
    f: Formulation,
    backend: Backend | str,
    time_limit_s: float | None,
    gap: float,
    threads: int,
) -> SolveOutcome:
    define_latency_objective(f)
    first = solve(f.model, backend, time_limit_s, gap, threads)
    if first.status == SolverStatus.infeasible:
        return SolveOutcome(SolverStatus.infeasible, None, diagnose(resolved), first)
    if first.values is None or first.objective is None:  # a solve with values always has their objective
        return SolveOutcome(SolverStatus.no_solution, None, [], first)
    # Second stage: hold the mean latency (with a few CP-SAT time units of slack) and minimise TCO.
    weights = dict(f.model.objective)
    target = first.objective
    f.model.add_row("latency_target", weights, "<=", target + 1e-6 * target + 5 * TIME_RESOLUTION_S)
    f.model.objective = dict(f.tco_objective)
    second = solve(f.model, backend, time_limit_s, gap, threads)
    if second.values is None:  # keep the first stage's plan (fastest, not necessarily cheapest)
        second = first
        second.objective = f.model.evaluate_objective(first.values)
        second.best_bound = None
    second.wall_time_s = first.wall_time_s + (second.wall_time_s if second is not first else 0.0)
    if first.status != SolverStatus.optimal:
        second.status = SolverStatus.feasible
    plan = assemble_plan(f, second, resolved.scenario.id)
    plan.objective = Objective.min_latency
    return SolveOutcome(second.status, plan, [], second)


def baseline_solver(
    resolved: ResolvedScenario,
    backend: Backend | str,
    time_limit_s: float | None,
    gap: float,
    threads: int,
    method: Method | str,
) -> Callable[[Formulation], SolveResult]:
    """How a baseline the counting proof cannot settle is solved: by the plan's method and settings."""

    def solve_one(f: Formulation) -> SolveResult:
        if method == Method.decomposition:
            return solve_by_decomposition(f, backend, time_limit_s, gap, threads).result
        return solve_model(resolved, f, backend, time_limit_s, gap, threads)

    return solve_one
