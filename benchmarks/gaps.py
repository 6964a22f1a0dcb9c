"""Where the optimality gap lives: the bounds of relaxations between the LP and the optimum, as a Markdown table.

    python -m benchmarks.run --gaps --sizes             # the default scenario, every formulation
    python -m benchmarks.gaps default --formulations improved

For one instance: the best plan found (HiGHS to a 0.01 % gap within the time limit), then the bound of
- the LP relaxation;
- the MILP with only some variable groups integer (replicas r, in-use flags x, fleet counts), each to a 0.01 % gap;
- HiGHS's root node after its cut rounds (one branch-and-bound node, started from the budget heuristic's plan);
- the LP relaxation with one variable group fixed at the best plan's values (fleet counts, purchase nodes only,
  config choice x, replicas r, route shares, latencies and start times).
A group whose fixing closes most of the gap is where the relaxation is weak; what integrality alone buys says which
integers matter. Each row states its bound, its gap to the best plan and the CPU seconds it took.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hetplace.optimizer.backends import solve
from hetplace.optimizer.formulation import CUTS, DeviceOffer, Formulation, build_formulation
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.linear import LinearModel, Var
from hetplace.optimizer.pools import Pool
from hetplace.optimizer.presolve import prune_by_critical_path, prune_dominated
from hetplace.optimizer.solve import formulate, solve_model
from hetplace.problems.loader import ResolvedScenario, default_scenario_path, load_scenario

FORMULATIONS = ("plain", "improved", "all-cuts")


def formulate_with_cuts(resolved: ResolvedScenario) -> Formulation:
    """The improved model (exact presolve, strengthening rows) with every cut family of optimizer/cuts.py, whether
    on by default or not: what the cuts buy is this against "improved"."""

    def prune(pools: list[Pool], _offers: dict[str, DeviceOffer]) -> int:
        return prune_by_critical_path(pools, resolved.workflows) + prune_dominated(pools)

    return build_formulation(resolved, prune=prune, cuts=frozenset(CUTS))


def formulate_as(resolved: ResolvedScenario, formulation: str) -> Formulation:
    """One of FORMULATIONS: plain, improved as `hetplace solve` builds it, or improved with every cut family."""
    if formulation == "all-cuts":
        return formulate_with_cuts(resolved)
    return formulate(resolved, plain=formulation == "plain")


GROUPS: dict[str, Callable[[str], bool]] = {
    "fleet counts (own, nodes, rent)": lambda n: n.startswith(("own[", "buy_nodes[", "rent[")),
    "purchase nodes": lambda n: n.startswith("buy_nodes["),
    "config choice x": lambda n: n.startswith("x["),
    "replicas r": lambda n: n.startswith("r["),
    "route shares": lambda n: n.startswith("share["),
    "latencies and starts": lambda n: n.startswith(("L[", "D[", "S[")),
}
INTEGER_ONLY = {
    "replicas r": ("replicas r",),
    "config choice x": ("config choice x",),
    "fleet counts": ("fleet counts (own, nodes, rent)",),
    "replicas r and config choice x": ("replicas r", "config choice x"),
}


@dataclass
class GapRow:
    what: str
    bound: float | None
    cpu_s: float


def _relaxed(model: LinearModel, keep_integer: Callable[[Var], bool]) -> LinearModel:
    out = copy.deepcopy(model)
    for v in out.vars:
        v.integer = v.integer and keep_integer(v)
    return out


def _timed(what: str, run: Callable[[], float | None]) -> GapRow:
    t0 = time.process_time()
    bound = run()
    return GapRow(what, bound, time.process_time() - t0)


def localise(f: Formulation, best: list[float], time_limit_s: float) -> list[GapRow]:
    """The bounds listed in the module docstring, for formulation `f` and its best known plan `best`."""
    m = f.model

    def bound_of(model: LinearModel) -> float | None:
        return solve(model, "highs", time_limit_s, 1e-4).best_bound

    rows = [_timed("LP relaxation", lambda: bound_of(_relaxed(m, lambda v: False)))]
    for label, groups in INTEGER_ONLY.items():
        tests = [GROUPS[g] for g in groups]

        def integer_only(t: list[Callable[[str], bool]] = tests) -> float | None:
            return bound_of(_relaxed(m, lambda v: any(g(v.name) for g in t)))

        rows.append(_timed(f"integer {label} only", integer_only))
    start = budget_plan(f)
    rows.append(
        _timed(
            "root node after HiGHS's cuts",
            lambda: solve(m, "highs", time_limit_s, 1e-4, start=start, max_nodes=1).best_bound,
        )
    )
    for label, test in GROUPS.items():

        def fixed(test: Callable[[str], bool] = test) -> float | None:
            lp = _relaxed(m, lambda v: False)
            for i, v in enumerate(lp.vars):
                if test(v.name):
                    value = round(best[i]) if m.vars[i].integer else best[i]
                    v.lb = v.ub = value
            return bound_of(lp)

        rows.append(_timed(f"LP, {label} fixed at the plan", fixed))
    return rows


def best_plan(resolved: ResolvedScenario, f: Formulation, time_limit_s: float) -> tuple[list[float], float, float]:
    """The plan the table is measured against (HiGHS to a 0.01 % gap), its TCO and proven bound."""
    res = solve_model(resolved, f, "highs", time_limit_s, 1e-4, 1)
    if res.values is None or res.objective is None or res.best_bound is None:
        raise SystemExit("no plan within the time limit: raise --time-limit")
    return res.values, res.objective, res.best_bound


def table(name: str, path: Path, formulations: list[str], time_limit_s: float) -> str:
    """The gap-localisation table of one instance, one column pair per formulation."""
    resolved = load_scenario(path)
    per_form: dict[str, list[GapRow]] = {}
    best_tco: dict[str, tuple[float, float]] = {}
    for form in formulations:
        f = formulate_as(resolved, form)
        values, tco, bound = best_plan(resolved, f, time_limit_s)
        best_tco[form] = (tco, bound)
        per_form[form] = localise(f, values, time_limit_s)
        print(f"{name} {form}: plan {tco:,.0f}, bound {bound:,.0f}", flush=True)
    target = min(t for t, _ in best_tco.values())
    head = " | ".join(f"{form} bound | gap | cpu s" for form in formulations)
    lines = [
        f"Gap localisation, {name} (best plan {target:,.0f} USD/yr; gaps are to it):",
        "",
        f"| relaxation | {head} |",
        "|---|" + "---:|---:|---:|" * len(formulations),
    ]
    for i, row in enumerate(per_form[formulations[0]]):
        cells = []
        for form in formulations:
            r = per_form[form][i]
            gap = "—" if r.bound is None else f"{(target - r.bound) / target:.2%}"
            cells.append(f"{'—' if r.bound is None else format(r.bound, ',.0f')} | {gap} | {r.cpu_s:.1f}")
        lines.append(f"| {row.what} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="default", help="'default' or a scenario YAML path")
    parser.add_argument("--formulations", nargs="+", choices=FORMULATIONS, default=list(FORMULATIONS))
    parser.add_argument("--time-limit", type=float, default=300.0, help="per solve, wall seconds")
    args = parser.parse_args()
    path = default_scenario_path() if args.scenario == "default" else Path(args.scenario)
    print(table(args.scenario, path, args.formulations, args.time_limit))


if __name__ == "__main__":
    main()
