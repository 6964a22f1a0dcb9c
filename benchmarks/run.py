"""Solver benchmark: generated instances × backends × (plain, improved) formulation, as a Markdown table.

    python -m benchmarks.run --quick              # S and M, HiGHS and CP-SAT, 60 s limit: a few minutes
    python -m benchmarks.run --sizes S M L XL --backends highs cpsat cbc --time-limit 60 --out benchmarks/RESULTS.md

For every instance it reports the model size after presolve, time to the first plan, wall time, status, objective,
proven bound and gap, for the plain formulation (no presolve pruning, no strengthening rows) and the improved one
in the same run, and the ratios between them. The default scenario is included as a row of its own. Cost-model
throughput (`benchmarks.costmodel_throughput`) is appended. Timings are from this machine and single-threaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import costmodel_throughput
from benchmarks.instances import SIZES, generate
from common.io import atomic_write_text
from optimizer.backends import solve
from optimizer.solve import formulate, solve_model
from problems.loader import default_scenario_path, load_scenario


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


def bench_one(name: str, path: Path, backend: str, plain: bool, time_limit_s: float, gap: float) -> Row:
    resolved = load_scenario(path)
    t0 = time.perf_counter()
    f = formulate(resolved, plain=plain)
    build = time.perf_counter() - t0
    # the improved run solves as `hetplace solve` does (warm start on large HiGHS models); plain solves directly
    res = (
        solve(f.model, backend, time_limit_s, gap) if plain else solve_model(resolved, f, backend, time_limit_s, gap, 1)
    )
    return Row(
        name,
        sum(len(wf.steps) for wf in resolved.workflows),
        backend,
        "plain" if plain else "improved",
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
    )


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def markdown(rows: list[Row], time_limit_s: float, gap: float) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Solver benchmark",
        "",
        f"Machine: {platform.system()} {platform.release()}, {cpu}, {len(os.sched_getaffinity(0))} CPUs available; "
        f"Python {platform.python_version()}; one solver thread; time limit {time_limit_s:g} s; gap target {gap:g}.",
        "",
        "| instance | steps | backend | formulation | configs | vars | rows | build s | first plan s | wall s | "
        "status | objective USD/yr | bound | gap |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.instance} | {r.steps} | {r.backend} | {r.formulation} | {r.configs} | {r.variables} | {r.rows} | "
            f"{r.build_s:.1f} | {_fmt(r.first_s, '.1f')} | {r.wall_s:.1f} | {r.status} | "
            f"{_fmt(r.objective, ',.0f')} | {_fmt(r.bound, ',.0f')} | {_fmt(r.gap, '.2%')} |"
        )
    lines += ["", "Ratios, plain / improved (wall time; gap at the limit):", ""]
    lines += ["| instance | backend | wall time ratio | plain gap | improved gap |", "|---|---|---:|---:|---:|"]
    for r in rows:
        if r.formulation != "improved":
            continue
        p = next((q for q in rows if (q.instance, q.backend, q.formulation) == (r.instance, r.backend, "plain")), None)
        if p is not None:
            ratio = p.wall_s / r.wall_s
            lines.append(f"| {r.instance} | {r.backend} | {ratio:.2f} | {_fmt(p.gap, '.2%')} | {_fmt(r.gap, '.2%')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="S and M only, HiGHS and CP-SAT")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["S", "M", "L", "XL"])
    parser.add_argument("--backends", nargs="+", choices=["highs", "cbc", "cpsat"], default=["highs", "cpsat"])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-default", action="store_true", help="skip the bundled default scenario row")
    parser.add_argument("--out", type=Path, help="also write the table here (e.g. benchmarks/RESULTS.md)")
    args = parser.parse_args()
    sizes = ["S", "M"] if args.quick else args.sizes
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        instances = [] if args.no_default else [("default", default_scenario_path())]
        instances += [(s, generate(s, args.seed, Path(tmp) / s)) for s in sizes]
        for name, path in instances:
            for backend in args.backends:
                for plain in (True, False):
                    row = bench_one(name, path, backend, plain, args.time_limit, args.gap)
                    rows.append(row)
                    print(
                        f"{name:8s} {backend:6s} {row.formulation:8s} {row.status:11s} {row.wall_s:7.1f} s "
                        f"gap {_fmt(row.gap, '.2%')}",
                        flush=True,
                    )
    text = markdown(rows, args.time_limit, args.gap)
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
