"""Issue 16, part 3: a plan solved for a p99 SLA meets it in simulation.

The optimizer adds each pool's analytic p99 queueing wait (M/G/c, `costmodels/queueing.py`) to the critical path
of service times; the simulator (`simulate/`) serves the same plan request by request under Poisson arrivals with
its own queues. The claim checked here: the share of simulated requests finishing within the SLA (attainment) is
≥ 99 % for every workflow and seed — the SLA's own percentile definition, measured instead of computed.

Two variants of the small scenario, both built from tests/fixtures/scenarios/small-agent.yaml and validated by the
project's loaders:
- "small": the scenario as it is (3 req/s, SLA 8 s) with `percentile: 99`, its 0.7 cap kept. Its pools run
  lightly loaded (prefill 34 %, decode 51 %), so this is the easy case.
- "tight": 20 req/s, SLA 2.45 s, `percentile: 99`, the cap dropped, so pools are sized by their queueing delay
  alone. The plan's critical path (service times + p99 waits) is 2.10 s; the single co-located Llama-3.1-8B pool
  runs at 76 % load, and the simulated p99 (2.2–2.26 s) lies within 10 % of the SLA: the queueing model binds.
- "edge": 20 req/s, SLA 2.4 s, cap dropped: the solver's plan (79,011.80 USD/year, a different co-located config
  at 59 % load) has a critical path of 2.391 s, 0.4 % under the SLA. It MISSES in simulation and is marked
  xfail(strict=True): see EDGE_MISS for the numbers and the reason.
Measured when written (1,800 s, seeds 0–2): attainment 100 % on "small" (p99 6.08–6.18 s; the plan is the fixture's
18,561.24 USD/year optimum, critical path 7.22 s), 99.75–99.96 % on "tight" (p99 2.20–2.26 s; 79,011.80 USD/year),
98.49–99.00 % on "edge".

Why "edge" misses: the M/G/c term covers the wait for a free slot (here ~0: 64 slots at 59 % load), not the
variability of the service itself. A co-located call's decode is stretched by the prefills that happen to land on
its replica while it decodes and speeds up when few sequences are in flight; the optimizer prices decode at the full
batch and the stall at the pool's mean load, i.e. the mean service time. With slack (as in "small" and "tight")
the full-batch pricing covers that tail; with none, the per-request p99 of the decode time exceeds its mean and the
plan misses by ~1 %. A fix would price the stall (and the occupancy) at the SLA's percentile, a change to the
optimizer's co-located latency model rather than a bug fix, so it is left open.

The simulated p99 falls below the plan's critical path on "small" because the plan prices decode at the config's
full batch (README "Simulation"); on "tight" it is 5–7 % above it, yet within the SLA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.schema import Workflow
from hetplace.simulate.arrivals import NO_TOKENS, Arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.run import SimOptions, simulate_plan
from hetplace.simulate.service import CORES, ConfigTable, PoolTable, ServiceModel, StepKey
from tests.conftest import SMALL, read_yaml, solved_plan, write_yaml

SEEDS = (0, 1, 2)
DURATION_S = 1800.0  # "small": ~4,900 measured requests per seed (~49 beyond the p99); "tight": ~32,000
TARGET = 0.99

# variant: (arrival rate req/s or None = the fixture's, SLA s or None = the fixture's, keep the stated 0.7 cap)
VARIANTS: dict[str, tuple[float | None, float | None, bool]] = {
    "small": (None, None, True),
    "tight": (20.0, 2.45, False),
    "edge": (20.0, 2.4, False),
}
EDGE_MISS = (
    "analytic p99 optimistic when the plan's path sits on the SLA: measured attainment 98.97 / 99.00 / 98.49 % "
    "(p99 2.401 / 2.400 / 2.423 s, seeds 0-2, SLA 2.4 s, plan path 2.391 s). The slot wait is ~0 (Erlang C over 64 "
    "slots at 59 % load; simulated p99 wait 14 ms); the tail is decode-time variability (TPOT p50 6.3 ms, p99 8.4 ms "
    "on the first call), which the optimizer prices at its mean (full batch, prefill stall at the mean load)"
)


def p99_variant(folder: Path, rate_rps: float | None, sla_s: float | None, keep_cap: bool) -> ResolvedScenario:
    """The small scenario with `percentile: 99` on its workflow SLA (and the given rate/SLA), loaded from files."""
    workflow: dict[str, Any] = read_yaml(SMALL.parent / "small-agent-workflow.yaml")
    if rate_rps is not None:
        workflow["arrival_rate_rps"] = rate_rps
    workflow["sla"] = {"e2e_latency_s": sla_s or workflow["sla"]["e2e_latency_s"], "percentile": 99}
    write_yaml(folder / "small-agent-workflow.yaml", workflow)
    scenario: dict[str, Any] = read_yaml(SMALL)
    if not keep_cap:
        del scenario["limits"]["max_utilisation"]
    return load_scenario(write_yaml(folder / "small-agent.yaml", scenario))


@pytest.mark.parametrize(
    "variant",
    ["small", "tight", pytest.param("edge", marks=pytest.mark.xfail(strict=True, reason=EDGE_MISS))],
)
def test_plan_solved_for_p99_attains_it_in_simulation(variant: str, tmp_path: Path) -> None:
    resolved = p99_variant(tmp_path, *VARIANTS[variant])
    assert all(w.sla.percentile == 99 for w in resolved.workflows)
    # The cost solve's plan (no tie-break toward speed): it packs the pools tightest, the hard case for the
    # queueing model; the tie-broken plan of equal TCO runs its pools cooler.
    plan = solved_plan(solve_scenario(resolved, "highs", baselines=False, gap=1e-4, tiebreak=False))
    assert check_plan(resolved, plan) == []  # the independent checker agrees the plan meets its p99 SLA on paper
    paths = {w.workflow: w.critical_path_s for w in plan.workflows}
    for wf in resolved.workflows:
        assert paths[wf.id] <= wf.sla.e2e_latency_s + 1e-9
    if variant == "tight":  # the queueing model binds: a pool runs hot and the plan's path is close to the SLA
        assert max(p.utilisation for p in plan.pools) > 0.7
        assert paths["small-agent"] > 0.8 * 2.45
    if variant == "edge":  # no slack: the plan's path is within 1 % of the SLA
        assert paths["small-agent"] > 0.99 * 2.4

    attained: dict[str, list[float]] = {wf.id: [] for wf in resolved.workflows}
    p99_over_sla: dict[str, list[float]] = {wf.id: [] for wf in resolved.workflows}
    for seed in SEEDS:
        result = simulate_plan(resolved, plan, SimOptions(DURATION_S, seed))
        assert result.conservation.arrived > 4000  # enough requests for a p99 (≥ 40 beyond it)
        for w in result.workflows:
            assert w.sla_percentile == 99
            attained[w.workflow].append(w.attainment)
            p99_over_sla[w.workflow].append(w.p99_s / w.sla_s)
    for workflow, shares in attained.items():
        assert min(shares) >= TARGET, f"{workflow}: attainment per seed {np.round(shares, 4).tolist()} < {TARGET}"
        assert max(p99_over_sla[workflow]) <= 1.0  # the same claim as a latency: the simulated p99 is within the SLA


# ---- The simulator bug this validation found: a parallel tool call ran on one core ----------------------------


def tool_latencies_s(cores: int, times_s: list[float]) -> list[float]:
    """End-to-end latencies of one-step requests (coding-agent's final test suite: 45 s wall clock, 120 CPU-s)
    arriving at `times_s` on a CPU pool of `cores` cores."""
    wf = Workflow.model_validate(
        {
            "id": "t",
            "name": "tests",
            "description": "one parallel tool call",
            "arrival_rate_rps": 0.1,
            "sla": {"e2e_latency_s": 300},
            "steps": [{"id": "tests", "kind": "tool", "tool": "pytest -n 3", "latency_s": 45.0, "cpu_s": 120.0}],
        }
    )
    key = StepKey("t", "tests")
    service = ServiceModel(
        {"tool:cpu": PoolTable("tool:cpu", CORES, [ConfigTable("cpu", "x", 1, 1, cores=cores)])}, {}, {key: "tool:cpu"}
    )
    n = len(times_s)
    none = np.full(n, NO_TOKENS)
    arrivals = Arrivals(np.asarray(times_s, dtype=float), np.zeros(n, dtype=int), none, none, none)
    return sorted(Engine([wf], service, arrivals, 10.0, 0.0, 500.0, 1, 10).run().latency[0])


def test_a_parallel_tool_call_takes_its_stated_latency() -> None:
    # 120 CPU-s in 45 s: k = ceil(120 / 45) = 3 cores for 40 s each, so the call ends at its 45 s (it used to hold
    # one core for 120 s, which put every coding-agent request 75 s behind its plan)
    assert tool_latencies_s(8, [0.0, 1.0]) == pytest.approx([45.0, 45.0])
    # 4 cores: the second call (t = 1) waits for 3 free cores until t = 40, runs 40–80: latency 79 s
    assert tool_latencies_s(4, [0.0, 1.0]) == pytest.approx([45.0, 79.0])
    # 2 cores: at most the pool's cores, 2 × 60 s
    assert tool_latencies_s(2, [0.0]) == pytest.approx([60.0])
