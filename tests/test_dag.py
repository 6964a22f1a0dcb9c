"""The shared DAG pass against hand-computed longest paths."""

from __future__ import annotations

import pytest

from hetplace.problems.dag import longest_paths, topological_order
from hetplace.problems.schema import Workflow


def _workflow(edges: dict[str, list[str]]) -> Workflow:
    steps = [
        {"id": s, "kind": "tool", "tool": "shell", "latency_s": 1.0, "cpu_s": 0.1, "after": after}
        for s, after in edges.items()
    ]
    return Workflow.model_validate(
        {"id": "w", "name": "w", "description": "", "arrival_rate_rps": 1.0, "sla": {"e2e_latency_s": 10.0},
         "steps": steps}
    )


def test_diamond_by_hand() -> None:
    # a(1) -> b(4) -> d(2); a -> c(2) -> d: critical path a, b, d = 7 s; c has 2 s of slack.
    wf = _workflow({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})
    times = longest_paths(wf, {"a": 1.0, "b": 4.0, "c": 2.0, "d": 2.0})
    assert times.critical_path_s == pytest.approx(7.0)
    assert times.critical_steps == ["a", "b", "d"]
    assert times.start_s == {"a": 0.0, "b": 1.0, "c": 1.0, "d": 5.0}
    assert times.tail_s == {"a": 6.0, "b": 2.0, "c": 2.0, "d": 0.0}
    assert times.through_s("c", 2.0) == pytest.approx(5.0)
    order = topological_order(wf)
    assert order.index("a") < order.index("b") < order.index("d") and order.index("c") < order.index("d")


def test_parallel_roots_end_at_the_longest() -> None:
    wf = _workflow({"x": [], "y": []})
    times = longest_paths(wf, {"x": 3.0, "y": 5.0})
    assert (times.critical_path_s, times.critical_steps) == (5.0, ["y"])
