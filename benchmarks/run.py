"""Solver benchmark: generated instances × backends × (plain, improved, all-cuts, decomposition), as a Markdown table.

    python -m benchmarks.run --quick              # default, S and M; HiGHS and CP-SAT; 60 s limit: about 8 minutes
    python -m benchmarks.run --sizes S M L XL --backends highs cpsat cbc --time-limit 60 --out benchmarks/RESULTS.md
    python -m benchmarks.run --sizes --backends highs cpsat cbc --gap 0.001     # the default scenario only
    python -m benchmarks.run --gaps --sizes S M --time-limit 300   # where the gap lives (benchmarks/gaps.py)

For every instance it reports the model size after presolve, time to the first plan, wall time, status, objective,
proven bound and gap, for the plain formulation (no presolve pruning, no strengthening rows, no start), the
improved one as `hetplace solve` runs it (presolve, strengthening, the budget heuristic's start and, on large
models, the restricted warm start), the same with every cut family of optimizer/cuts.py ("all-cuts"; they are off
by default) and the decomposition by model family (`--method decomposition`) in the same run, and the budget
heuristic alone. CPU seconds are printed beside wall seconds (the machine may be shared). The default scenario is
included as a row of its own. Cost-model throughput (`benchmarks.costmodel_throughput`) is appended. Timings are
from this machine and single-threaded. `--gaps` prints where the gap lives instead (benchmarks/gaps.py).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import costmodel_throughput, gaps
from benchmarks.instances import SIZES, generate
from hetplace.common.io import atomic_write_text
from hetplace.optimizer.backends import solve
from hetplace.optimizer.decomposition.driver import solve_by_decomposition
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.solve import formulate, solve_model
from hetplace.problems.loader import default_scenario_path, load_scenario


@dataclass
class Row:
    instance: str
    steps: int
    backend: str
    formulation: str
    configs: int
    variables: int
    rows: int
    build_s: float
    first_s: float | None
    wall_s: float
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    cpu_s: float = 0.0


FORMULATIONS = ("plain", "improved", "all-cuts", "decomposition")


def bench_one(name: str, path: Path, backend: str, formulation: str, time_limit_s: float, gap: float) -> Row:
    resolved = load_scenario(path)
    plain = formulation == "plain"
    t0 = time.perf_counter()
    f = gaps.formulate_with_cuts(resolved) if formulation == "all-cuts" else formulate(resolved, plain=plain)
    build = time.perf_counter() - t0
    # the improved run solves as `hetplace solve` does (warm start on large HiGHS models); plain solves directly
    cpu0 = time.process_time()
    if plain:
        res = solve(f.model, backend, time_limit_s, gap)
    elif formulation == "decomposition":
        res = solve_by_decomposition(f, backend, time_limit_s, gap, 1).result
    else:
        res = solve_model(resolved, f, backend, time_limit_s, gap, 1)
    cpu = time.process_time() - cpu0
    return Row(
        name,
        sum(len(wf.steps) for wf in resolved.workflows),
        backend,
        formulation,
        sum(len(p.configs) for p in f.pools),
        len(f.model.vars),
        len(f.model.rows),
        build,
        res.first_solution_s,
        res.wall_time_s,
        res.status,
        res.objective,
        res.best_bound,
        res.gap,
        cpu,
    )


@dataclass
class HeuristicRow:
    instance: str
    time_s: float
    objective: float | None


def bench_heuristic(name: str, path: Path) -> HeuristicRow:
    """The budget heuristic alone: its time, and its plan's TCO (replicas, in-use flags and shares held, the rest
    completed by HiGHS)."""
    f = formulate(load_scenario(path))
    t0 = time.perf_counter()
    plan = budget_plan(f)
    elapsed = time.perf_counter() - t0
    if plan is None:
        return HeuristicRow(name, elapsed, None)
    fixed = copy.deepcopy(f.model)
    for i, v in plan.items():
        fixed.vars[i].lb = fixed.vars[i].ub = v
    res = solve(fixed, "highs", time_limit_s=60.0)
    return HeuristicRow(name, elapsed, res.objective)


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def markdown(rows: list[Row], time_limit_s: float, gap: float, heuristic: list[HeuristicRow]) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Solver benchmark",
        "",
        f"Machine: {platform.system()} {platform.release()}, {cpu}, {len(os.sched_getaffinity(0))} CPUs available; "
        f"Python {platform.python_version()}; one solver thread; time limit {time_limit_s:g} s; gap target {gap:g}.",
        "",
        "| instance | steps | backend | formulation | configs | vars | rows | build s | first plan s | wall s | "
        "cpu s | status | objective USD/yr | bound | gap |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.instance} | {r.steps} | {r.backend} | {r.formulation} | {r.configs} | {r.variables} | {r.rows} | "
            f"{r.build_s:.1f} | {_fmt(r.first_s, '.1f')} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.status} | "
            f"{_fmt(r.objective, ',.0f')} | {_fmt(r.bound, ',.0f')} | {_fmt(r.gap, '.2%')} |"
        )
    lines += ["", "Side by side (wall s / gap at the end):", ""]
    lines += [
        "| instance | backend | plain | improved | all-cuts | decomposition |",
        "|---|---|---:|---:|---:|---:|",
    ]
    done: set[tuple[str, str]] = set()
    for r in rows:
        if (r.instance, r.backend) in done:
            continue
        done.add((r.instance, r.backend))
        cells = []
        for form in FORMULATIONS:
            q = next((q for q in rows if (q.instance, q.backend, q.formulation) == (r.instance, r.backend, form)), None)
            cells.append("—" if q is None else f"{q.wall_s:.1f} s / {_fmt(q.gap, '.2%')}")
        lines.append(f"| {r.instance} | {r.backend} | {' | '.join(cells)} |")
    lines += ["", "Budget heuristic alone (its plan completed by HiGHS; gap to the best bound in the table above):", ""]
    lines += ["| instance | time s | TCO USD/yr | gap to best bound |", "|---|---:|---:|---:|"]
    for h in heuristic:
        bound = max((r.bound for r in rows if r.instance == h.instance and r.bound is not None), default=None)
        gap_h = None if h.objective is None or bound is None else max(0.0, h.objective - bound) / h.objective
        lines.append(f"| {h.instance} | {h.time_s:.2f} | {_fmt(h.objective, ',.0f')} | {_fmt(gap_h, '.2%')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S and M only, HiGHS and CP-SAT")
    parser.add_argument("--sizes", nargs="*", choices=list(SIZES), default=["S", "M", "L", "XL"])
    parser.add_argument("--backends", nargs="+", choices=["highs", "cbc", "cpsat"], default=["highs", "cpsat"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-default", action="store_true", help="skip the bundled default scenario row")
    parser.add_argument(
        "--formulations", nargs="+", choices=list(FORMULATIONS), default=list(FORMULATIONS), help="what to run"
    )
    parser.add_argument("--out", type=Path, help="also write the table here (e.g. benchmarks/RESULTS.md)")
    parser.add_argument(
        "--gaps", action="store_true", help="print where the gap lives instead (benchmarks.gaps) for each instance"
    )
    args = parser.parse_args()
    if args.gaps:
        with tempfile.TemporaryDirectory() as tmp:
            todo = [] if args.no_default else [("default", default_scenario_path())]
            todo += [(s, generate(s, args.seed, Path(tmp) / s)) for s in ([] if args.quick else args.sizes)]
            forms = [f for f in args.formulations if f in gaps.FORMULATIONS] or ["improved"]
            text = "\n".join(gaps.table(name, path, forms, args.time_limit) for name, path in todo)
        print(text)
        if args.out:
            atomic_write_text(args.out, text)
        return
    sizes = ["S", "M"] if args.quick else args.sizes
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        instances = [] if args.no_default else [("default", default_scenario_path())]
        instances += [(s, generate(s, args.seed, Path(tmp) / s)) for s in sizes]
        heuristic = [bench_heuristic(name, path) for name, path in instances]
        for name, path in instances:
            for backend in args.backends:
                for form in args.formulations:
                    row = bench_one(name, path, backend, form, args.time_limit, args.gap)
                    rows.append(row)
                    print(
                        f"{name:8s} {backend:6s} {row.formulation:13s} {row.status:11s} {row.wall_s:7.1f} s "
                        f"(cpu {row.cpu_s:.1f} s) gap {_fmt(row.gap, '.2%')}",
                        flush=True,
                    )
    text = markdown(rows, args.time_limit, args.gap, heuristic)
    cm = costmodel_throughput.run(target_configs=200_000 if args.quick else 1_000_000)
    text += (
        "\nCost-model throughput (llama-3.1-70b decode menus): "
        f"{cm['vector_rate']:,.0f} configs/s vectorised ({cm['vector_configs']:,.0f} configs) vs "
        f"{cm['loop_rate']:,.0f} configs/s in a per-config loop, {cm['ratio']:,.0f}×.\n"
    )
    print(text)
    if args.out:
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
