"""What-if sweep speed: every point cold against every point warm-started from its neighbours, in one run.

Run: python -m benchmarks.sweep [--points 100] [--workers 2] [--gap 0.005] [--axis price:b200] [--low 0.7]
[--high 1.3] [--scenario PATH] [--time-limit S]
A sweep of one axis over evenly spaced values on the default scenario (default: the B200 price from 0.7× to
1.3×, a device the default plan buys), solved as `hetplace whatif` does (process pool, HiGHS, one thread per
point), first with warm starts, then with `--no-warm-start`. Prints a Markdown table: points, points proven within
the gap, wall and CPU seconds (this process and its workers), mean and max gap, and cold / warm ratios; then how
far the two runs' objectives differ at worst (both are within the gap of the same optimum). The goal (issue 14):
100 points, every one proven within 0.5 %, in ≤ 3 minutes on 2 workers. Speed is measured here, never asserted
in the tests; on the shared machine, say so beside the numbers.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetplace.problems.loader import default_scenario_path
from hetplace.problems.sweep_point import PointResult
from hetplace.whatif.executors import run_points
from hetplace.whatif.sweep import Axis, SolveOptions, build_tasks


@dataclass(frozen=True)
class Run:
    label: str
    rows: list[PointResult]
    wall_s: float
    cpu_s: float

    def proven(self, gap: float) -> int:
        return sum(r.status == "optimal" and r.gap is not None and r.gap <= gap * (1 + 1e-9) for r in self.rows)

    def gaps(self) -> list[float]:
        return [r.gap for r in self.rows if r.gap is not None]


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers, reaped at shutdown)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_sweep(scenario: Path, axis: Axis, options: SolveOptions, workers: int, label: str) -> Run:
    tasks = build_tasks(scenario, [], [axis], options)
    c0, w0 = _cpu_s(), time.perf_counter()

    def progress(row: PointResult) -> None:
        gap = f"{100 * row.gap:.2f} %" if row.gap is not None else "—"
        print(f"  {label}: point {row.index} {row.status} gap {gap} in {row.wall_time_s:.1f} s", file=sys.stderr)

    rows = run_points(tasks, "process", workers, on_done=progress)
    return Run(label, rows, time.perf_counter() - w0, _cpu_s() - c0)


def table(runs: list[Run], gap: float) -> str:
    lines = [
        "| run | points | proven within gap | wall s | CPU s | mean gap | max gap |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        gaps = run.gaps()
        mean = f"{100 * np.mean(gaps):.3f} %" if gaps else "—"
        worst = f"{100 * max(gaps):.3f} %" if gaps else "—"
        lines.append(
            f"| {run.label} | {len(run.rows)} | {run.proven(gap)} | {run.wall_s:.0f} | {run.cpu_s:.0f} | {mean} | "
            f"{worst} |"
        )
    if len(runs) == 2:
        cold, warm = runs
        lines.append(f"| cold / warm | | | {cold.wall_s / warm.wall_s:.2f}× | {cold.cpu_s / warm.cpu_s:.2f}× | | |")
    return "\n".join(lines)


def objective_spread(cold: Run, warm: Run) -> float:
    """The largest relative difference of the two runs' objectives at one point."""
    spread = 0.0
    for c, w in zip(cold.rows, warm.rows, strict=True):
        if c.total_usd_per_year is not None and w.total_usd_per_year is not None:
            spread = max(spread, abs(c.total_usd_per_year - w.total_usd_per_year) / c.total_usd_per_year)
    return spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.005)
    parser.add_argument("--axis", default="price:b200")
    parser.add_argument("--low", type=float, default=0.7)
    parser.add_argument("--high", type=float, default=1.3)
    parser.add_argument("--scenario", type=Path, default=None)
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    scenario = args.scenario or default_scenario_path()
    values = tuple(round(float(v), 6) for v in np.linspace(args.low, args.high, args.points))
    axis = Axis(args.axis, values)
    print(
        f"### {args.points}-point sweep of {args.axis} from {args.low:g} to {args.high:g} on {scenario.name}: "
        f"HiGHS, gap {100 * args.gap:g} %, {args.workers} workers, time limit {args.time_limit or 'none'} "
        f"({platform.node()}, {time.strftime('%Y-%m-%d %H:%M')})\n"
    )
    runs = []  # warm first: on a busy machine its numbers are there even if the cold run is cut short
    for label, warm_start in (("warm (neighbours' plans)", True), ("cold (--no-warm-start)", False)):
        options = SolveOptions(gap=args.gap, time_limit_s=args.time_limit, warm_start=warm_start)
        runs.append(run_sweep(scenario, axis, options, args.workers, label))
        print(f"{label}: {runs[-1].wall_s:.0f} s wall, {runs[-1].cpu_s:.0f} s CPU", flush=True)
    warm, cold = runs
    print()
    print(table([cold, warm], args.gap))
    print(f"\nlargest objective difference between the runs at one point: {100 * objective_spread(cold, warm):.3f} %")
    print("\n| point | value | cold USD/yr | cold gap | cold s | warm USD/yr | warm gap | warm s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c, w in zip(cold.rows, warm.rows, strict=True):

        def cells(r: PointResult) -> str:
            usd = f"{r.total_usd_per_year:,.0f}" if r.total_usd_per_year is not None else r.status
            gap = f"{100 * r.gap:.2f} %" if r.gap is not None else "—"
            return f"{usd} | {gap} | {r.wall_time_s:.1f}"

        print(f"| {c.index} | {c.params[args.axis]:g} | {cells(c)} | {cells(w)} |")


if __name__ == "__main__":
    main()
