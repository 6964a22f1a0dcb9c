"""What-if sweeps: a grid of scenario variants, each solved on its own and summarised in one row.

Axes come from `--sweep SPEC=V1,V2,…` (several form a grid) or a sweep file; fixed changes from `--set SPEC=V`.
SPEC is a ready-made question or a PATH (see `whatif.overrides`). Every variant is validated before any solve, so
a typo fails in a second with the offending option named; a point that fails while solving is recorded with its
error and the sweep goes on.

Points are plain data (picklable), so the same `solve_point` runs in-process, on a local process pool or on Ray.
With warm starts (the default) a point also carries the configs of its neighbours' finished plans, which start
its solve (optimizer/neighbour_start.py; the order is whatif/warm.py): faster, with the same optimum.
"""

from __future__ import annotations

import itertools
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hetplace.common.errors import InputError
from hetplace.common.io import load_mapping
from hetplace.problems.loader import ResolvedScenario, resolve_scenario_mapping
from hetplace.problems.sweep_point import PointResult
from hetplace.whatif.overrides import OverrideError, apply_override, parse_value

if TYPE_CHECKING:
    from hetplace.optimizer.neighbour_start import PlanConfigs


@dataclass(frozen=True)
class Axis:
    spec: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SolveOptions:
    backend: str = "highs"
    gap: float = 1e-4
    time_limit_s: float | None = None
    objective: str = "min_tco"
    warm_start: bool = True  # start each point from its neighbours' plans (whatif/warm.py)


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to solve one variant, as plain data."""

    index: int
    scenario_path: str
    base_data: dict
    assignments: tuple[tuple[str, Any], ...]
    options: SolveOptions = field(default_factory=SolveOptions)
    neighbours: tuple[PlanConfigs, ...] = ()  # finished plans of neighbouring points, nearest first
    lower_bound_usd: float | None = None  # proven from other points (whatif/warm.py), USD/year


def split_assignment(text: str, option: str) -> tuple[str, str]:
    """'SPEC=VALUE' → (SPEC, VALUE), splitting at the first '=' outside [...] selectors."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "=" and depth == 0:
            spec, value = text[:i].strip(), text[i + 1 :].strip()
            if spec and value:
                return spec, value
            break
    raise InputError.single(option, text, "expected SPEC=VALUE (e.g. price:h100-sxm=0.7 or limits.power_cap_kw=500)")


def parse_axis(text: str) -> Axis:
    spec, values = split_assignment(text, "--sweep")
    try:
        parsed = tuple(parse_value(v.strip()) for v in values.split(",") if v.strip())
    except OverrideError as exc:
        raise InputError.single("--sweep", spec, str(exc)) from exc
    if not parsed:
        raise InputError.single("--sweep", spec, "no values")
    return Axis(spec, parsed)


def parse_sweep_file(path: Path) -> tuple[list[tuple[str, Any]], list[Axis]]:
    """A YAML file with `set: {SPEC: value}` and `sweep: {SPEC: [values]}`."""
    data = load_mapping(path)
    unknown = set(data) - {"set", "sweep"}
    if unknown:
        raise InputError.single(str(path), sorted(unknown)[0], "unknown key; a sweep file has 'set' and 'sweep'")
    sets = data.get("set") or {}
    sweeps = data.get("sweep") or {}
    if not isinstance(sets, dict) or not isinstance(sweeps, dict):
        raise InputError.single(str(path), "set" if not isinstance(sets, dict) else "sweep", "must be a mapping")
    axes = []
    for spec, values in sweeps.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise InputError.single(str(path), f"sweep.{spec}", "no values")
        axes.append(Axis(str(spec), tuple(values)))
    return [(str(k), v) for k, v in sets.items()], axes


def check_specs(sets: list[tuple[str, Any]], axes: list[Axis]) -> None:
    """An axis given twice, or fixed by --set and swept too, would silently keep one of the values: exit 2."""
    seen: set[str] = set()
    for axis in axes:
        if axis.spec in seen:
            raise InputError.single("--sweep", axis.spec, "the same axis is swept twice; give its values once")
        seen.add(axis.spec)
    for spec, _ in sets:
        if spec in seen:
            raise InputError.single("--set", spec, "is also swept (--sweep); the sweep would override it: drop one")


def variant_data(base_data: dict, base: ResolvedScenario, assignments) -> dict:
    data = base_data
    for spec, value in assignments:
        data = apply_override(data, base, spec, value)
    return data


def build_tasks(
    scenario_path: Path, sets: list[tuple[str, Any]], axes: list[Axis], options: SolveOptions
) -> list[PointTask]:
    """The grid of variants, each checked to be a valid scenario (InputError names the option otherwise)."""
    check_specs(sets, axes)
    source = str(scenario_path)
    base_data = load_mapping(scenario_path)
    base = resolve_scenario_mapping(base_data, scenario_path)
    for spec, value in sets:
        try:
            base_data = apply_override(base_data, base, spec, value)
        except OverrideError as exc:
            raise InputError.single("--set", spec, str(exc)) from exc
    base = resolve_scenario_mapping(base_data, scenario_path, f"{source} with --set")
    tasks = []
    grid = itertools.product(*[[(a.spec, v) for v in a.values] for a in axes]) if axes else [()]
    for index, assignments in enumerate(grid):
        label = ", ".join(f"{s}={v}" for s, v in assignments) or "base"
        try:
            data = variant_data(base_data, base, assignments)
        except OverrideError as exc:
            raise InputError.single("--sweep", label, str(exc)) from exc
        resolve_scenario_mapping(data, scenario_path, f"{source} with {label}")
        tasks.append(PointTask(index, str(scenario_path), base_data, tuple(assignments), options))
    return tasks


def solve_point(task: PointTask) -> PointResult:
    """Solve one variant; never raises (a failure becomes a row with status 'error')."""
    return solve_point_with_plan(task)[0]


def solve_point_with_plan(task: PointTask) -> tuple[PointResult, PlanConfigs | None]:
    """`solve_point`, and the configs of the point's plan (None without one) for the points it starts."""
    from hetplace.optimizer.neighbour_start import PlanConfigs, SweepStart
    from hetplace.optimizer.solve import solve_scenario

    params = {spec: value for spec, value in task.assignments}
    t0 = time.perf_counter()
    try:
        path = Path(task.scenario_path)
        base = resolve_scenario_mapping(task.base_data, path)
        variant = resolve_scenario_mapping(variant_data(task.base_data, base, task.assignments), path)
        o = task.options
        warm = SweepStart(task.neighbours, task.lower_bound_usd) if o.warm_start and task.neighbours else None
        outcome = solve_scenario(
            variant, o.backend, o.time_limit_s, o.gap, baselines=False, objective=o.objective, start_from=warm
        )
    except Exception as exc:  # a failed point is recorded, the sweep goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        error = PointResult(
            index=task.index, params=params, status="error", error=last, wall_time_s=time.perf_counter() - t0
        )
        return error, None
    wall = time.perf_counter() - t0
    if outcome.plan is None:
        no_plan = PointResult(
            index=task.index, params=params, status=outcome.status, diagnosis=outcome.diagnosis, wall_time_s=wall
        )
        return no_plan, None
    plan = outcome.plan
    row = PointResult(
        index=task.index,
        params=params,
        status=outcome.status,
        total_usd_per_year=plan.tco.total_usd_per_year,
        usd_per_request=plan.tco.usd_per_request,
        purchases_usd=plan.tco.purchases_usd,
        mean_critical_path_s=plan.mean_critical_path_s,
        gap=plan.solver.gap,
        wall_time_s=wall,
        devices={e.device: e.owned_used + e.bought + e.rented for e in plan.fleet},
        bought={e.device: e.bought for e in plan.fleet if e.bought},
        rented={e.device: e.rented for e in plan.fleet if e.rented},
        owned_idle={e.device: e.owned_idle for e in plan.fleet if e.owned_idle},
    )
    return row, PlanConfigs.of(plan)
