"""Whole-command speed of `hetplace solve` (issue 14, item 2): where the command spends its time.

    python -m benchmarks.solve_command                       # default scenario, with baselines, 2 runs
    python -m benchmarks.solve_command --repeat 3 --no-baselines --gap 0.01
    python -m benchmarks.solve_command --scenario tests/fixtures/scenarios/small-agent.yaml

Two measurements per run, as Markdown tables:
- the command itself, `python -m hetplace.cli solve [SCENARIO] …` in a child process (its screen to /dev/null):
  wall seconds and the child's CPU seconds (user + system, from getrusage), start-up and imports included;
- its parts, in this process, through the same `solve_scenario` the command calls (`SolveOutcome.parts`): load,
  build (menus and model), solve (TCO, to the gap), tie-break, baselines, plan assembly and the solve screen, wall
  and CPU seconds each.
The machine may be shared: CPU seconds are the figure to compare; repeat and read the spread.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hetplace.optimizer.solve import solve_scenario
from hetplace.optimizer.stopwatch import Stopwatch
from hetplace.problems.loader import default_scenario_path, load_scenario

PARTS = ("load", "build", "solve", "tiebreak", "baselines", "plan", "screen")


@dataclass
class CommandRun:
    wall_s: float
    cpu_s: float
    exit_code: int


@dataclass
class PartsRun:
    parts: Stopwatch = field(default_factory=Stopwatch)
    tco_usd: float | None = None
    critical_path_s: float | None = None


def run_command(args: list[str]) -> CommandRun:
    """The CLI in a child process (output discarded): wall and the child's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hetplace.cli", "solve", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return CommandRun(wall, cpu, done.returncode)


def run_parts(scenario: Path, gap: float, baselines: bool) -> PartsRun:
    """`solve_scenario` as the command calls it, timed part by part, then the solve screen."""
    from hetplace.reports import terminal as screens

    out = PartsRun()
    with out.parts.part("load"):
        resolved = load_scenario(scenario)
    outcome = solve_scenario(resolved, "highs", None, gap, 1, baselines)
    for name, wall in outcome.parts.wall_s.items():
        out.parts.wall_s[name] = wall
        out.parts.cpu_s[name] = outcome.parts.cpu_s[name]
    if outcome.plan is not None:
        with out.parts.part("screen"):
            screens.plan_screen(resolved, outcome.plan, outcome.status)
        out.tco_usd = outcome.plan.tco.total_usd_per_year
        out.critical_path_s = outcome.plan.mean_critical_path_s
    return out


def command_table(runs: list[CommandRun], command: str) -> str:
    lines = ["| run | command | exit | wall s | CPU s |", "| ---: | --- | ---: | ---: | ---: |"]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | `{command}` | {r.exit_code} | {r.wall_s:.1f} | {r.cpu_s:.1f} |")
    return "\n".join(lines)


def parts_table(runs: list[PartsRun]) -> str:
    head = " | ".join(f"{p} wall / CPU s" for p in PARTS)
    lines = [f"| run | {head} | total CPU s | TCO USD/yr | mean critical path s |"]
    lines.append("| ---: |" + " ---: |" * (len(PARTS) + 3))
    for i, r in enumerate(runs, 1):
        cells = [f"{r.parts.wall_s.get(p, 0.0):.2f} / {r.parts.cpu_s.get(p, 0.0):.2f}" for p in PARTS]
        tco = f"{r.tco_usd:,.2f}" if r.tco_usd is not None else "—"
        cp = f"{r.critical_path_s:.3f}" if r.critical_path_s is not None else "—"
        lines.append(f"| {i} | {' | '.join(cells)} | {sum(r.parts.cpu_s.values()):.2f} | {tco} | {cp} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=None, help="scenario YAML (default: the bundled default)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--gap", type=float, default=1e-4, help="the CLI's default 0.01 %% unless given")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--parts-only", action="store_true", help="skip the child-process runs")
    a = parser.parse_args()
    args = [*([str(a.scenario)] if a.scenario else []), "--gap", f"{a.gap:g}"]
    args += ["--no-baselines"] if a.no_baselines else []
    env_note = f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
    print(f"hetplace solve {' '.join(args)} — {env_note}\n")
    if not a.parts_only:
        print(command_table([run_command(args) for _ in range(a.repeat)], f"hetplace solve {' '.join(args)}") + "\n")
    scenario = a.scenario or default_scenario_path()
    print(parts_table([run_parts(scenario, a.gap, not a.no_baselines) for _ in range(a.repeat)]))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
