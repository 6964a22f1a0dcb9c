"""The order a warm-started sweep solves its points in, and which finished plans start each point.

Bisection along the sweep's order: the first and last points are solved cold (the budget heuristic's start, as
without warm starts), then the middle point from the plans of those two, then the middle of each half from the
plans at its two ends, and so on. Half of the points end up between two solved nearest neighbours. A point's start
depends only on where it sits in the sweep, never on which worker finished first, so the rows are the same in
one process, on a process pool or on Ray, with any number of workers. The points of one level run in parallel
(1, 2, 4, … at a time after the two ends); a point that failed or has no plan simply gives no start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

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


@dataclass
class BisectionSchedule:
    """Hands out tasks as their parents finish (see module docstring); each carries its parents' plans."""

    tasks: list[PointTask]
    parents: dict[int, tuple[int, ...]] = field(init=False)
    plans: dict[int, PlanConfigs | None] = field(init=False, default_factory=dict)
    _position: dict[int, int] = field(init=False)
    _children: dict[int, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.parents = bisection_parents(len(self.tasks))
        self._position = {t.index: pos for pos, t in enumerate(self.tasks)}
        self._children = {pos: [] for pos in self.parents}
        for pos, ps in self.parents.items():
            for p in ps:
                self._children[p].append(pos)

    def first(self) -> list[PointTask]:
        """The tasks to start with (the two ends)."""
        return [self.tasks[pos] for pos in sorted(p for p, ps in self.parents.items() if not ps)]

    def finished(self, index: int, plan: PlanConfigs | None) -> list[PointTask]:
        """Record task `index`'s plan (None: no plan); the tasks that are now ready, with their parents' plans."""
        self.plans[self._position[index]] = plan
        ready = []
        for child in sorted(self._children[self._position[index]]):
            if all(p in self.plans for p in self.parents[child]):
                starts = tuple(s for p in self.parents[child] if (s := self.plans[p]) is not None)
                ready.append(replace(self.tasks[child], neighbours=starts))
        return ready
