"""The independent checker: its own DAG pass against the library's, and tampered fleets reported (not crashing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplace.optimizer.checker import check_plan, critical_path_s, finish_times_s
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.dag import longest_paths
from hetplace.problems.loader import load_scenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Workflow
from tests.conftest import FIXTURES

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"


@st.composite
def dags(draw: st.DrawFn) -> tuple[Workflow, dict[str, float]]:
    """A random DAG of tool steps (edges only from earlier to later nodes, then listed in a shuffled order, so
    the listing is not a topological order) with random durations, zero included."""
    n = draw(st.integers(1, 12))
    ids = [f"s{i}" for i in range(n)]
    after = {ids[i]: draw(st.lists(st.sampled_from(ids[:i]), unique=True)) if i else [] for i in range(n)}
    order = draw(st.permutations(ids))
    durations = {s: draw(st.floats(0.0, 100.0, allow_nan=False)) for s in ids}
    steps = [{"id": s, "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.01, "after": after[s]} for s in order]
    wf = Workflow.model_validate(
        {"id": "w", "name": "w", "description": "", "arrival_rate_rps": 1.0, "sla": {"e2e_latency_s": 1.0}}
        | {"steps": steps}
    )
    return wf, durations


@settings(max_examples=300, derandomize=True, print_blob=True, deadline=None)
@given(dags())
def test_checker_dag_pass_agrees_with_the_library(case: tuple[Workflow, dict[str, float]]) -> None:
    wf, durations = case
    lib = longest_paths(wf, durations)
    assert critical_path_s(wf, durations) == pytest.approx(lib.critical_path_s, rel=1e-12, abs=1e-12)
    finish = finish_times_s(wf, durations)
    assert set(finish) == {s.id for s in wf.steps}
    for s, t in finish.items():
        assert t == pytest.approx(lib.start_s[s] + durations[s], rel=1e-12, abs=1e-12)


def test_checker_dag_pass_by_hand() -> None:
    # Listed out of order: d after b and c, b and c after a. a 1 s, b 4 s, c 2 s, d 2 s: a → b → d = 7 s.
    wf = Workflow.model_validate(
        {
            "id": "w",
            "name": "w",
            "description": "",
            "arrival_rate_rps": 1.0,
            "sla": {"e2e_latency_s": 1.0},
            "steps": [
                {"id": s, "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.01, "after": after}
                for s, after in (("d", ["b", "c"]), ("c", ["a"]), ("b", ["a"]), ("a", []))
            ],
        }
    )
    assert finish_times_s(wf, {"a": 1.0, "b": 4.0, "c": 2.0, "d": 2.0}) == {"a": 1.0, "c": 3.0, "b": 5.0, "d": 7.0}
    assert critical_path_s(wf, {"a": 1.0, "b": 4.0, "c": 2.0, "d": 2.0}) == 7.0


@pytest.fixture(scope="module")
def small_plan() -> Plan:
    plan = solve_scenario(load_scenario(SMALL), "highs", baselines=False).plan
    assert plan is not None
    return plan


def _tampered(plan: Plan, change: Any) -> Plan:
    data = copy.deepcopy(plan.model_dump(mode="json"))
    change(data)
    return Plan.model_validate(data)


def _entry(data: dict[str, Any], device: str) -> dict[str, Any]:
    return next(e for e in data["fleet"] if e["device"] == device)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # l4 is owned, not purchasable: bought devices from nowhere (they used to crash the TCO recomputation).
        (
            lambda d: _entry(d, "l4").update(bought=4),
            ["fleet l4: bought 4 exceeds what is purchasable"],
        ),
        # xeon is purchasable, not rentable.
        (lambda d: _entry(d, "xeon-6980p").update(rented=2), ["fleet xeon-6980p: rented 2 exceeds what is rentable"]),
        # xeon is not owned: 2 owned_used claimed, 0 owned.
        (
            lambda d: _entry(d, "xeon-6980p").update(owned_used=2),
            ["fleet xeon-6980p: owned_used + owned_idle = 2 ≠ owned 0"],
        ),
        # the scenario offers at most 16 h100s (whole nodes of 8): 24 bought.
        (
            lambda d: d["fleet"].append(
                {
                    "device": "h100-sxm",
                    "owned_used": 0,
                    "owned_idle": 0,
                    "bought": 24,
                    "rented": 0,
                    "nodes": 3,
                    "power_kw": 0.0,
                }
            ),
            ["fleet h100-sxm: bought 24 exceeds what is purchasable"],
        ),
    ],
)
def test_fleet_from_a_source_not_offered_is_a_violation(small_plan: Plan, change: Any, expected: list[str]) -> None:
    violations = check_plan(load_scenario(SMALL), _tampered(small_plan, change))
    # (the tampered entries' reported nodes and power no longer match their devices either: "plan reports" lines)
    fleet_lines = [v for v in violations if v.startswith("fleet ") and "plan reports" not in v]
    assert fleet_lines == expected
    # Devices from a source the scenario does not offer cost nothing in the recomputation, so the TCO still
    # matches unless real (offered) devices were added: only the h100 case adds an offered source.
    assert any(v.startswith("tco: plan reports") for v in violations) == ("h100" in expected[0])
