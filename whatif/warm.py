"""The order a warm-started sweep solves its points in, and which finished plans start each point.

Bisection along the sweep's order: the first and last points are solved cold (the budget heuristic's start, as
without warm starts), then the middle point from the plans of those two, then the middle of each half from the
plans at its two ends, and so on. Half of the points end up between two solved nearest neighbours. A point's start
depends only on where it sits in the sweep, never on which worker finished first, so the rows are the same in
one process, on a process pool or on Ray, with any number of workers. The points of one level run in parallel
(1, 2, 4, … at a time after the two ends); a point that failed or has no plan simply gives no start.

A price sweep also proves lower bounds. Along a `price:DEVICE` axis every plan's TCO is c0 + f·c1 in the price
factor f (c1 ≥ 0: that device's purchases and rentals), and which plans are feasible does not depend on f — as long
as no capex or annual budget and no user rows (which may name costs) take part; and only on HiGHS, whose bounds
are bounds of the model itself. The min TCO is then the minimum of
lines in f: nondecreasing and concave. So a point between two solved ones is at least the chord through their
proven lower bounds, and a point above a solved one at least its bound. A start within the gap of that bound is the
point's plan without a MILP (optimizer/neighbour_start.py). The bounds used are each point's own proven ones
(objective × (1 − gap)), so they stay valid down the bisection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hetplace.problems.loader import resolve_scenario_mapping
from hetplace.problems.sweep_point import PointResult
from hetplace.whatif.sweep import PointTask

if TYPE_CHECKING:
    from hetplace.optimizer.neighbour_start import PlanConfigs


def bisection_parents(n: int) -> dict[int, tuple[int, ...]]:
    """Position → the positions whose plans start it: () for the two ends, else the ends of the interval it
    halves (nearest first: the lower end on a tie)."""
    if n <= 0:
        return {}
    parents: dict[int, tuple[int, ...]] = {0: (), n - 1: ()}
    intervals = [(0, n - 1)]
    while intervals:
        lo, hi = intervals.pop(0)
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        parents[mid] = (lo, hi) if mid - lo <= hi - mid else (hi, lo)
        intervals += [(lo, mid), (mid, hi)]
    return parents


BOUND_SAFETY = 1e-9  # relative: a point's TCO and its model's objective may differ in the last digits


def price_factors(tasks: list[PointTask]) -> list[float] | None:
    """Each point's price factor when the sweep's one axis is a `price:` question whose min TCO is concave and
    nondecreasing in it (see module docstring), else None."""
    specs = {tuple(spec for spec, _ in t.assignments) for t in tasks}
    if len(specs) != 1 or len(spec := next(iter(specs))) != 1 or not spec[0].startswith("price:"):
        return None
    if tasks[0].options.objective != "min_tco" or tasks[0].options.backend != "highs":
        return None  # CBC reports its objective as the bound when it stops at the gap; CP-SAT bounds a rounded model
    factors = [t.assignments[0][1] for t in tasks]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in factors):
        return None
    scenario = resolve_scenario_mapping(tasks[0].base_data, Path(tasks[0].scenario_path)).scenario
    if scenario.limits.capex_budget_usd is not None or scenario.limits.annual_budget_usd is not None:
        return None
    if scenario.extra_constraints:
        return None
    return [float(v) for v in factors]


def proven_lower_bound_usd(row: PointResult) -> float | None:
    """What a finished point proved about its own min TCO."""
    if row.total_usd_per_year is None or row.gap is None or row.status not in ("optimal", "feasible"):
        return None
    return row.total_usd_per_year * (1 - row.gap) * (1 - BOUND_SAFETY)


def price_lower_bound(factor: float, solved: list[tuple[float, float]]) -> float | None:
    """The best lower bound at `factor` from (factor, lower bound) of solved points: monotone from any point at a
    lower or equal factor, the chord from two points on either side."""
    best = max((lb for f, lb in solved if f <= factor), default=None)
    for fa, lba in solved:
        for fb, lbb in solved:
            if fa < factor < fb:
                chord = lba + (lbb - lba) * (factor - fa) / (fb - fa)
                best = chord if best is None else max(best, chord)
    return best


@dataclass
class BisectionSchedule:
    """Hands out tasks as their parents finish (see module docstring); each carries its parents' plans."""

    tasks: list[PointTask]
    parents: dict[int, tuple[int, ...]] = field(init=False)
    plans: dict[int, PlanConfigs | None] = field(init=False, default_factory=dict)
    factors: list[float] | None = field(init=False)  # a price axis (see `price_factors`), else None
    bounds: dict[int, float] = field(init=False, default_factory=dict)  # proven lower bounds by position
    _position: dict[int, int] = field(init=False)
    _children: dict[int, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.parents = bisection_parents(len(self.tasks))
        self._position = {t.index: pos for pos, t in enumerate(self.tasks)}
        self.factors = price_factors(self.tasks)
        self._children = {pos: [] for pos in self.parents}
        for pos, ps in self.parents.items():
            for p in ps:
                self._children[p].append(pos)

    def first(self) -> list[PointTask]:
        """The tasks to start with (the two ends)."""
        return [self.tasks[pos] for pos in sorted(p for p, ps in self.parents.items() if not ps)]

    def finished(self, row: PointResult, plan: PlanConfigs | None) -> list[PointTask]:
        """Record a finished point (`plan` None: no plan); the tasks that are now ready, with their parents' plans
        and, on a price axis, the lower bound the parents prove."""
        pos = self._position[row.index]
        self.plans[pos] = plan
        if (bound := proven_lower_bound_usd(row)) is not None:
            self.bounds[pos] = bound
        ready = []
        for child in sorted(self._children[pos]):
            parents = self.parents[child]
            if all(p in self.plans for p in parents):
                starts = tuple(s for p in parents if (s := self.plans[p]) is not None)
                lower = None
                if self.factors is not None:
                    solved = [(self.factors[p], self.bounds[p]) for p in parents if p in self.bounds]
                    lower = price_lower_bound(self.factors[child], solved)
                ready.append(replace(self.tasks[child], neighbours=starts, lower_bound_usd=lower))
        return ready
