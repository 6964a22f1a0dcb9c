"""Exact menu reductions: hand-built cases for each rule, and pruned vs unpruned solves on random scenarios."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hetplace.common.enums import Phase
from hetplace.optimizer.backends import solve
from hetplace.optimizer.pools import Config, Pool, StepRef
from hetplace.optimizer.presolve import (
    _dominates,
    dominated_mask,
    path_margins,
    prune_by_critical_path,
    prune_dominated,
)
from hetplace.optimizer.solve import formulate
from hetplace.problems.schema import Workflow
from tests.conftest import load_case

A = StepRef("w", "a")


def _cfg(device: str, tp: int, batch: int, throughput: float, latency_s: float) -> Config:
    return Config("p", device, tp, batch, "bf16", throughput, {A: latency_s})


def test_dominance_needs_a_divisible_tensor_parallel_degree_and_no_slower_step() -> None:
    tp1 = _cfg("h100", 1, 8, 100.0, 0.5)
    tp2_worse = _cfg("h100", 2, 8, 190.0, 0.6)  # 2 × tp1 gives 200 ≥ 190 tokens/s and 0.5 s ≤ 0.6 s: dominated
    tp2_faster = _cfg("h100", 2, 4, 150.0, 0.3)  # faster than tp1: kept
    other_device = _cfg("l4", 2, 8, 10.0, 5.0)  # never compared across devices
    pool = Pool("p", Phase.decode, "decode_tokens", 1000.0, "m", [A], [tp1, tp2_worse, tp2_faster, other_device])
    assert prune_dominated([pool]) == 1
    assert pool.configs == [tp1, tp2_faster, other_device]


def test_exact_ties_keep_the_smaller_tensor_parallel_degree() -> None:
    a, b = _cfg("h100", 1, 8, 100.0, 0.5), _cfg("h100", 2, 8, 200.0, 0.5)
    pool = Pool("p", Phase.decode, "decode_tokens", 1000.0, "m", [A], [b, a])
    assert prune_dominated([pool]) == 1
    assert pool.configs == [a]


B = StepRef("w", "b")
_config = st.builds(
    lambda tp, batch, thr, la, lb, kv, cov: (
        Config("p", "h100", tp, batch, "bf16", thr, {A: la, B: lb}, kv_dtype=kv),
        cov,
    ),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([1, 8, 64]),
    st.sampled_from([50.0, 100.0, 200.0, 400.0]),  # few values: exact ties in throughput happen
    st.sampled_from([0.1, 0.2, 0.4]),
    st.sampled_from([0.1, 0.2, 0.4]),
    st.sampled_from(["bf16", "fp8"]),
    st.sampled_from([0.5, 0.8]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_config, min_size=1, max_size=12))
def test_vectorised_dominance_is_the_pairwise_rule(group: list[tuple[Config, float]]) -> None:
    """All pairs at once (numpy) against the one-pair rule it replaced, coverage included."""
    configs = [c for c, _ in group]
    cov = [v for _, v in group]
    expected = [
        any(cov[i] >= cov[j] and _dominates(o, c, [A, B]) for i, o in enumerate(configs)) for j, c in enumerate(configs)
    ]
    assert list(dominated_mask(configs, cov, [A, B])) == expected


def _diamond(sla_s: float) -> Workflow:
    steps = [
        {"id": "a", "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.1},
        {"id": "b", "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.1, "after": ["a"]},
        {"id": "c", "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.1, "after": ["a"], "repeat": 2},
        {"id": "d", "kind": "tool", "tool": "t", "latency_s": 1.0, "cpu_s": 0.1, "after": ["b", "c"]},
    ]
    return Workflow.model_validate(
        {
            "id": "w",
            "name": "w",
            "description": "d",
            "arrival_rate_rps": 1.0,
            "sla": {"e2e_latency_s": sla_s},
            "steps": steps,
        }
    )


def test_path_margins_by_hand() -> None:
    # durations a=1, b=2, c=4, d=1 (c's 2 repeats included): longest path a→c→d = 6 s.
    wf = _diamond(10.0)
    durations = {StepRef("w", s): v for s, v in {"a": 1.0, "b": 2.0, "c": 4.0, "d": 1.0}.items()}
    margins = path_margins([wf], durations)
    # b: starts at 1, tail 1 → may take 10 - 2 = 8 s; c likewise; a: tail max(2,4)+1 = 5 → 5; d: start 5 → 5.
    assert margins == {StepRef("w", "a"): 5.0, StepRef("w", "b"): 8.0, StepRef("w", "c"): 8.0, StepRef("w", "d"): 5.0}


def test_critical_path_pruning_drops_a_config_that_cannot_fit_beside_the_fastest_rest() -> None:
    wf = _diamond(7.0)
    refs = [StepRef("w", s) for s in "abcd"]
    fast = Config("tool", "cpu1", 1, 1, None, 10.0, dict.fromkeys(refs, 1.0))
    # on this config step c takes 2.6 s per repeat: 1 + 2 × 2.6 + 1 = 7.2 s > 7 s, although c alone (5.2 s) fits
    slow = Config("tool", "cpu2", 1, 1, None, 50.0, {**dict.fromkeys(refs, 1.0), StepRef("w", "c"): 2.6})
    ok = Config("tool", "cpu3", 1, 1, None, 50.0, {**dict.fromkeys(refs, 1.0), StepRef("w", "c"): 2.4})
    pool = Pool("tool", Phase.tool, "cpu_seconds", 1.0, None, refs, [fast, slow, ok])
    assert prune_by_critical_path([pool], [wf]) == 1
    assert pool.configs == [fast, ok]


@st.composite
def chained_scenarios(draw) -> dict:
    """Two LLM calls and a tool in a chain under a tight-ish SLA, so both pruning rules have work to do."""
    sla = draw(st.sampled_from([2.0, 4.0, 8.0, 30.0]))
    rate = draw(st.sampled_from([0.5, 2.0, 6.0]))
    steps = [
        {
            "id": "plan",
            "kind": "llm",
            "model": "llama-3.1-8b",
            "prompt_tokens": draw(st.sampled_from([400, 3000])),
            "output_tokens": draw(st.sampled_from([30, 150])),
        },
        {"id": "act", "kind": "tool", "tool": "api", "after": ["plan"], "latency_s": 0.4, "cpu_s": 0.2},
        {
            "id": "answer",
            "kind": "llm",
            "model": "llama-3.1-8b",
            "after": ["act"],
            "prompt_tokens": draw(st.sampled_from([800, 5000])),
            "output_tokens": draw(st.sampled_from([60, 300])),
        },
    ]
    gpus = draw(st.lists(st.sampled_from(["l4", "a10g", "h100-sxm"]), min_size=1, max_size=3, unique=True))
    workflow = {
        "id": "w",
        "name": "w",
        "description": "chain",
        "arrival_rate_rps": rate,
        "sla": {"e2e_latency_s": sla},
        "steps": steps,
    }
    scenario = {
        "id": "chain",
        "name": "chain",
        "workflows": [{"path": "w.yaml"}],
        "hardware": {
            "owned": [{"device": g, "count": 4} for g in gpus if g == "l4"],
            "purchasable": [{"device": "xeon-6980p", "max_count": 4}],
            "rentable": [{"device": g, "max_count": 32} for g in gpus if g != "l4"],
        },
    }
    return {"workflow": workflow, "scenario": scenario}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chained_scenarios())
def test_presolve_and_tightening_keep_the_optimum(case: dict) -> None:
    resolved = load_case(case)
    full = formulate(resolved, plain=True)  # unpruned, untightened
    pruned = formulate(resolved)
    if any(not p.configs for p in full.pools):
        assert any(not p.configs for p in pruned.pools)
        return
    event(f"pruned {'some' if pruned.dropped_configs > full.dropped_configs else 'none'}")
    a = solve(full.model, "highs", gap=1e-9)
    b = solve(pruned.model, "highs", gap=1e-9)
    assert a.status == b.status
    if a.objective is not None:
        assert b.objective == pytest.approx(a.objective, rel=1e-7, abs=1e-6)
