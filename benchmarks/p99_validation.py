"""Plans solved for p99 SLAs, simulated: does each workflow attain its p99 (issue 16, part 3)?

Run: python -m benchmarks.p99_validation [--variants p99,p99-nocap] [--gap 0.01] [--duration 3600] [--seeds 0 1 2]
Each variant is the default scenario with `percentile: 99` on every workflow's SLA (benchmarks/percentile_sla.py
builds it; "-nocap" also drops the scenario's stated 0.7 max_utilisation). It is solved with HiGHS at the gap,
checked with the independent checker, then simulated under Poisson arrivals for each seed. Prints a Markdown table
per variant: per workflow and seed the simulated mean/p50/p99, the SLA, the plan's critical path (service times plus
p99 waits) and the attainment (share of requests within the SLA; the target is ≥ 99 %). CPU seconds of this process
(shared machines: wall time means little).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.percentile_sla import variant_scenario
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.simulate.run import SimOptions, simulate_plan
from hetplace.simulate.service import build_service_model

TARGET = 0.99


def validate(variant: str, folder: Path, gap: float, duration_s: float, seeds: list[int]) -> None:
    resolved = load_scenario(variant_scenario(folder, variant))
    t0 = time.process_time()
    outcome = solve_scenario(resolved, "highs", None, gap, 1, False)
    solve_s = time.process_time() - t0
    plan = outcome.plan
    if plan is None:
        print(f"\n### {variant}: no plan ({outcome.status})\n")
        return
    violations = check_plan(resolved, plan)
    print(
        f"\n### {variant}: {plan.tco.total_usd_per_year:,.0f} USD/year (gap {plan.solver.gap or 0:.2%}, solve "
        f"{solve_s:.0f} s CPU, checker: {len(violations)} violations), {duration_s:,.0f} s of Poisson arrivals\n"
    )
    paths = {w.workflow: w.critical_path_s for w in plan.workflows}
    service = build_service_model(resolved, plan)
    rows: list[tuple[str, int, str]] = []
    worst: dict[str, float] = {}
    sim_s = 0.0
    for seed in seeds:
        t0 = time.process_time()
        result = simulate_plan(resolved, plan, SimOptions(duration_s, seed), service=service)
        sim_s += time.process_time() - t0
        for w in result.workflows:
            worst[w.workflow] = min(worst.get(w.workflow, 1.0), w.attainment)
            rows.append(
                (
                    w.workflow,
                    seed,
                    f"| {w.workflow} | {seed} | {w.requests:,} | {w.mean_s:.2f} | {w.p50_s:.2f} | {w.p99_s:.2f} | "
                    f"{w.sla_s:g} | {paths[w.workflow]:.2f} | {w.attainment:.2%} |",
                )
            )
    print("| workflow | seed | requests | mean s | p50 s | p99 s | SLA s | plan path s | attained |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for _, _, line in sorted(rows):
        print(line)
    missed = sorted(w for w, a in worst.items() if a < TARGET)
    print(f"\nsimulation {sim_s:.0f} s CPU; below {TARGET:.0%} on some seed: {', '.join(missed) or 'none'}")
    print("\n| pool | replicas | plan load | simulated load | p99 wait s |")
    print("| --- | --- | --- | --- | --- |")
    for p in result.pools:
        plan_u = f"{p.plan_utilisation:.0%}" if p.plan_utilisation is not None else "-"
        print(f"| {p.pool} | {p.replicas} | {plan_u} | {p.load:.0%} | {p.wait_p99_s:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="p99,p99-nocap")
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            validate(variant, Path(tmp), args.gap, args.duration, args.seeds)


if __name__ == "__main__":
    main()
