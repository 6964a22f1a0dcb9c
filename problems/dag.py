"""Longest paths through a workflow's step DAG: the one pass the optimizer, its presolve and its heuristic share.

The independent plan checker (`optimizer/checker.py`) keeps its own pass on purpose; a property test holds the two
against each other on random DAGs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter

from hetplace.problems.schema import Workflow


@dataclass(frozen=True)
class DagTimes:
    """Per step: earliest start and longest tail after it; per workflow: the critical path and its steps."""

    start_s: dict[str, float]
    tail_s: dict[str, float]
    critical_path_s: float
    critical_steps: list[str]

    def through_s(self, step_id: str, duration_s: float) -> float:
        """The longest path through `step_id` if that step took `duration_s`."""
        return self.start_s[step_id] + duration_s + self.tail_s[step_id]


def topological_order(wf: Workflow) -> list[str]:
    """Step ids, every step after all of its predecessors (the loader has already rejected cycles)."""
    return list(TopologicalSorter({s.id: set(s.after) for s in wf.steps}).static_order())


def longest_paths(wf: Workflow, duration_s: Mapping[str, float]) -> DagTimes:
    """Earliest starts, tails and the critical path of `wf` with each step taking `duration_s[step id]`.

    Ties between equally long predecessors go to the one listed first in `after`, so the critical chain is stable.
    """
    order = topological_order(wf)
    after = {s.id: list(s.after) for s in wf.steps}
    successors: dict[str, list[str]] = {s: [] for s in order}
    for s, preds in after.items():
        for p in preds:
            successors[p].append(s)
    start: dict[str, float] = {}
    best_pred: dict[str, str | None] = {}
    for s in order:
        finishes = [(start[p] + duration_s[p], p) for p in after[s]]
        start[s] = max((f for f, _ in finishes), default=0.0)
        best_pred[s] = max(finishes, key=lambda fp: fp[0])[1] if finishes else None
    tail: dict[str, float] = {}
    for s in reversed(order):
        tail[s] = max((duration_s[n] + tail[n] for n in successors[s]), default=0.0)
    if not order:
        return DagTimes({}, {}, 0.0, [])
    last = max(order, key=lambda s: start[s] + duration_s[s])
    chain: list[str] = []
    node: str | None = last
    while node is not None:
        chain.append(node)
        node = best_pred[node]
    return DagTimes(start, tail, start[last] + duration_s[last], list(reversed(chain)))
