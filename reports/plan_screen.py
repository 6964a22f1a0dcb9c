"""The `solve` screen: headline, fleet, pools, steps, workflows with their cost per request, TCO, purchases, what
binds the plan, the best single-accelerator fleet and the assumptions that matter. Figures come from
reports.plan_facts, the same ones the batch report prints."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan
from hetplace.reports.fit_table import DASH, Col, FitTable, fmt, styled
from hetplace.reports.plan_facts import (
    UTILISATION_DEFINITION,
    assumption_line,
    bindings,
    device_utilisation,
    fleet_cells,
    idle_owned_line,
    purchases,
    route_of,
    workflow_costs,
)


def plan_headline(plan: Plan, status: str) -> Text:
    t, s = plan.tco, plan.solver
    gap = DASH if s.gap is None else f"{s.gap:.2%}"
    limit = "no time limit" if s.time_limit_s is None else f"time limit {s.time_limit_s:g} s"
    return styled(
        (plan.scenario, "bold"),
        f": {status} · ",
        (f"{t.total_usd_per_year:,.0f} USD/year", "bold"),
        f" · {t.usd_per_request:.5f} USD/request · {t.usd_per_million_tokens:.4f} USD/1M tokens",
        f"\nsolver {s.backend.value} {s.wall_time_s:.1f} s, gap {gap} ({s.threads} thread(s), {limit})",
    )


def fleet_table(plan: Plan) -> FitTable:
    util = device_utilisation(plan)
    cols = [
        Col("device"),
        Col("owned", True),
        Col("idle", True),
        Col("bought", True),
        Col("rented", True),
        Col("nodes", True),
        Col("kW", True),
        Col("util", True),
    ]
    rows = [[*fleet_cells(e), f"{util[e.device]:.0%}" if e.device in util else DASH] for e in plan.fleet]
    return FitTable("Fleet (owned = owned in use; idle = owned, not used)", cols, rows)


def pools_table(plan: Plan) -> FitTable:
    cols = [
        Col("pool"),
        Col("device"),
        Col("tp", True),
        Col("batch", True),
        Col("replicas", True),
        Col("throughput", True),
        Col("util", True),
    ]
    rows = [
        [
            a.pool,
            a.device,
            str(a.tensor_parallel),
            str(a.batch),
            str(a.replicas),
            f"{a.throughput:,.1f} {a.throughput_unit}/s",
            f"{a.utilisation:.0%}",
        ]
        for a in sorted(plan.pools, key=lambda a: a.pool)
    ]
    return FitTable("Pools", cols, rows)


def steps_table(plan: Plan) -> FitTable:
    """Per step: when it starts on the critical-path schedule, how long all its repeats take, and where it runs."""
    critical = {(w.workflow, s) for w in plan.workflows for s in w.critical_steps}
    robust = plan.robust is not None
    cols = [Col("workflow"), Col("step"), Col("×", True), Col("start s", True), Col("latency s", True)]
    if robust:
        cols.append(Col("nominal s", True))
    cols += [Col("KV s", True), Col("device"), Col("served by", wrap=True), Col("critical")]
    rows = []
    for s in plan.steps:
        route = route_of(s.pool)
        served = " + ".join(s.pool.split("+")) + (f" ({route})" if route else "")
        row = [s.workflow, s.step, str(s.repeat), f"{s.start_s:,.2f}", f"{s.latency_s:,.3f}"]
        if robust:
            row.append(fmt(s.latency_nominal_s, ",.3f"))
        row += [f"{s.transfer_s:,.3f}" if s.transfer_s else DASH, s.device, served]
        row.append("yes" if (s.workflow, s.step) in critical else "")
        rows.append(row)
    return FitTable("Steps (latency = all repeats; KV = transfer included in it)", cols, rows, heading_cols=2)


def workflows_table(resolved: ResolvedScenario, plan: Plan) -> FitTable:
    costs = {c.workflow: c for c in workflow_costs(resolved, plan)}
    cols = [
        Col("workflow"),
        Col("req/s", True),
        Col("path s", True),
        Col("SLA s", True),
        Col("slack s", True),
        Col("USD/request", True),
        Col("of TCO", True),
        Col("critical steps", wrap=True),
    ]
    rows = []
    for w in plan.workflows:
        c = costs.get(w.workflow)
        rows.append(
            [
                w.workflow,
                f"{w.arrival_rate_rps:g}",
                f"{w.critical_path_s:,.2f}",
                f"{w.sla_s:g}",
                f"{w.slack_s:,.2f}",
                DASH if c is None else f"{c.usd_per_request:.6f}",
                DASH if c is None else f"{c.share:.0%}",
                " → ".join(w.critical_steps),
            ]
        )
    return FitTable("Workflows (path = critical path of service times)", cols, rows)


def tco_line(plan: Plan) -> Text:
    t = plan.tco
    return Text(
        f"TCO/year: capex {t.capex_usd_per_year:,.0f} · energy {t.energy_usd_per_year:,.0f} · hosting "
        f"{t.hosting_usd_per_year:,.0f} · rental {t.rental_usd_per_year:,.0f} · purchases up front "
        f"{t.purchases_usd:,.0f} USD"
    )


def baseline_line(plan: Plan) -> Text | None:
    feasible = [b for b in plan.baselines if b.total_usd_per_year is not None]
    if feasible:
        best = min(feasible, key=lambda b: b.total_usd_per_year or 0.0)
        return Text(
            f"Best homogeneous fleet: {best.device} at {best.total_usd_per_year or 0.0:,.0f} USD/year → "
            f"heterogeneous plan saves {best.saving_fraction or 0.0:.1%} "
            f"({len(feasible)} of {len(plan.baselines)} single-accelerator fleets feasible)"
        )
    if plan.baselines:
        return Text(f"No single-accelerator fleet is feasible ({len(plan.baselines)} tried).")
    return None


def bindings_view(resolved: ResolvedScenario, plan: Plan) -> Group:
    """Each finding on its own line, wrapped with a hanging indent under its kind."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for kind, lines in bindings(resolved, plan).items():
        for i, line in enumerate(lines):
            grid.add_row(f"  {kind}:" if i == 0 else "", Text(line))
    return Group(Text("What binds the plan", style="bold"), grid)


def plan_screen(resolved: ResolvedScenario, plan: Plan, status: str) -> Group:
    """The whole `solve` screen: headline, fleet, pools, steps, workflows with their cost, TCO, purchases, what
    binds the plan, the best single-accelerator fleet and the assumptions that matter."""
    parts: list[RenderableType] = [plan_headline(plan, status)]
    if plan.objective.value == "min_latency":
        parts.append(
            Text(
                f"objective min_latency: arrival-weighted mean critical path {plan.mean_critical_path_s or 0.0:.3f} "
                "s, then the cheapest fleet that achieves it"
            )
        )
    parts.append(fleet_table(plan))
    idle = idle_owned_line(resolved, plan)
    if idle is not None:
        parts.append(Text(idle))
    parts += [pools_table(plan), steps_table(plan), workflows_table(resolved, plan)]
    if plan.engine is not None:
        parts.append(Text(f"serving engine: {plan.engine} (menus priced with its terms per device)"))
    if plan.robust is not None:
        bands = ", ".join(f"{d} {b:.0%}" for d, b in sorted(plan.robust.error_band.items()))
        parts.append(Text(f"robust: each device at the slow end of its serving error band ({bands})"))
        for w in plan.workflows:
            parts.append(
                Text(
                    f"  {w.workflow}: critical path {w.critical_path_nominal_s or 0.0:,.2f} s nominal, "
                    f"{w.critical_path_s:,.2f} s at the slow end (SLA {w.sla_s:g} s)"
                )
            )
    parts.append(tco_line(plan))
    bought = purchases(resolved, plan)
    if bought:
        parts.append(
            Text(
                "Purchases: "
                + " · ".join(f"{p.count}× {p.device} at {p.unit_usd:,.0f} = {p.total_usd:,.0f} USD" for p in bought)
            )
        )
    parts.append(bindings_view(resolved, plan))
    base = baseline_line(plan)
    if base is not None:
        parts.append(base)
    parts.append(styled(("Assumptions: ", "bold"), assumption_line(resolved, plan), " ", UTILISATION_DEFINITION))
    return Group(*parts)
