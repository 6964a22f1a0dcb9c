"""Simulation speed, what today's default plan attains in simulation, and single-pool queues against Erlang C.

Run: python -m benchmarks.simulate [--plan plan.json] [--duration 3600] [--seeds 0 1 2] [--queueing]
Without --plan the default scenario is solved first (HiGHS, no baselines, about 30 s; not timed). Prints Markdown
tables: CPU seconds per simulated hour (the goal: ≤ 60 s on 2 cores), the default plan's per-workflow latency
percentiles and SLA attainment (today's SLA = the plan's critical path of service times ≤ SLA), and with
--queueing the simulated p99 wait of one pool of c servers against Erlang C (M/M/c, exact) and Allen–Cunneen
(M/G/c). Speed is measured here, never asserted in the tests.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import numpy as np

from hetplace.common.io import load_mapping, parse_model
from hetplace.problems.loader import default_scenario_path, load_scenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Workflow
from hetplace.simulate.arrivals import renewal_arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.run import SimOptions, simulate_plan
from hetplace.simulate.service import BATCH, ConfigTable, PoolTable, ServiceModel, StepKey, build_service_model


def default_plan(path: Path | None) -> Plan:
    if path is not None:
        return parse_model(Plan, load_mapping(path), str(path))
    from hetplace.optimizer.solve import solve_scenario  # benchmarks may solve; the simulator never imports it

    outcome = solve_scenario(load_scenario(default_scenario_path()), "highs", baselines=False)
    assert outcome.plan is not None, outcome.diagnosis
    return outcome.plan


def speed_and_attainment(plan: Plan, duration_s: float, seeds: list[int]) -> None:
    resolved = load_scenario(default_scenario_path())
    t0 = time.process_time()
    service = build_service_model(resolved, plan)
    build_s = time.process_time() - t0
    print(
        f"\n### Default plan ({plan.tco.total_usd_per_year:,.0f} USD/year), {duration_s:,.0f} s of Poisson arrivals\n"
    )
    print(f"service tables built in {build_s:.2f} s CPU\n")
    print("| seed | requests | events | CPU s | wall s | simulated s per CPU s | events/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    results = []
    for seed in seeds:
        c0, w0 = time.process_time(), time.perf_counter()
        res = simulate_plan(resolved, plan, SimOptions(duration_s, seed), service=service)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        results.append(res)
        print(
            f"| {seed} | {res.conservation.arrived:,} | {res.events:,} | {cpu:.1f} | {wall:.1f} | "
            f"{duration_s / cpu:,.0f} | {res.events / cpu:,.0f} |"
        )
    print("\n| workflow | seed | mean s | p50 s | p90 s | p99 s | SLA s | attained (≤ SLA) | plan critical path s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for seed, res in zip(seeds, results, strict=True):
        for w in res.workflows:
            print(
                f"| {w.workflow} | {seed} | {w.mean_s:.2f} | {w.p50_s:.2f} | {w.p90_s:.2f} | {w.p99_s:.2f} | "
                f"{w.sla_s:g} | {w.attainment:.2%} | {w.plan_critical_path_s or float('nan'):.2f} |"
            )
    print("\n| pool | busy | load | plan load | mean queue | p99 wait s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for p in results[0].pools:
        plan_u = f"{p.plan_utilisation:.0%}" if p.plan_utilisation is not None else "-"
        print(f"| {p.pool} | {p.utilisation:.0%} | {p.load:.0%} | {plan_u} | {p.mean_queue:.2f} | {p.wait_p99_s:.3f} |")


# ---- single pools: Erlang C (written here, independently of costmodels.queueing) ---------------------------


def erlang_c(c: int, a: float) -> float:
    top = a**c / math.factorial(c) / (1.0 - a / c)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def wait_p99_s(c: int, rho: float, cv: float) -> float:
    a = rho * c
    waits = erlang_c(c, a)
    return 0.0 if waits <= 0.01 else math.log(waits / 0.01) / (c - a) * (1.0 + cv * cv) / 2.0


def simulated_wait_p99_s(c: int, rho: float, cv: float, calls: int, seed: int) -> float:
    wf = Workflow.model_validate(
        {
            "id": "q",
            "name": "q",
            "description": "one pool",
            "arrival_rate_rps": rho * c,
            "sla": {"e2e_latency_s": 100},
            "steps": [{"id": "serve", "kind": "retrieval", "corpus_vectors": 1000, "dim": 8, "top_k": 1}],
        }
    )
    key = StepKey("q", "serve")
    service = ServiceModel(
        {"p": PoolTable("p", BATCH, [ConfigTable("s", "x", c, 1, pass_s={key: [1.0]})])}, {}, {key: "p"}
    )
    duration = calls / (rho * c)
    arrivals = renewal_arrivals([rho * c], duration, np.random.default_rng(seed))
    engine = Engine([wf], service, arrivals, duration, 0.05 * duration, 10 * duration, seed + 1, 10, service_cv=cv)
    return float(np.percentile(engine.run().wait["p"], 99))


def queueing_table(calls: int) -> None:
    print(f"\n### One pool of c servers, S = 1 s, Poisson arrivals, {calls:,} calls per cell: p99 wait (s)\n")
    print("| service cv | c | load | simulated | formula | error |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cv in (1.0, 0.0, 0.5, 2.0):
        for c in (1, 4, 16):
            for rho in (0.5, 0.7, 0.9):
                sim = simulated_wait_p99_s(c, rho, cv, calls, seed=3)
                ref = wait_p99_s(c, rho, cv)
                err = f"{(sim - ref) / ref:+.1%}" if ref > 0 else ("0" if sim == 0 else f"{sim:.3f} s vs 0")
                print(f"| {cv:g} | {c} | {rho:.0%} | {sim:.3f} | {ref:.3f} | {err} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, help="a default-scenario plan (else solved first)")
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--queueing", action="store_true", help="also the single-pool table (about 2 minutes)")
    parser.add_argument("--calls", type=int, default=200_000, help="calls per single-pool cell")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    speed_and_attainment(default_plan(args.plan), args.duration, args.seeds)
    if args.queueing:
        queueing_table(args.calls)


if __name__ == "__main__":
    main()
