"""The batch report: one self-contained HTML page and one Markdown file for a batch of scenarios.

Each scenario gets its plan's fleet, TCO breakdown, utilisation per device, SLA slack per workflow, LLM operators
on the roofline coloured by placement, baselines and savings, and, when asked for, the plan simulated under Poisson
arrivals (`simulate/`), what-if charts and the purchase schedule. PNGs are written beside the pages
(`<scenario>/…png`) and referenced relatively, so the folder opens offline and can be zipped or copied as a whole.
Pages are written last and atomically.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hetplace.common.io import atomic_write_text
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, SchedulePlan
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.plan_charts import (
    fleet_chart,
    placement_roofline,
    sla_chart,
    tco_chart,
    utilisation_chart,
)
from hetplace.reports.plan_facts import (
    UTILISATION_DEFINITION,
    assumption_line,
    bindings,
    device_utilisation,
    fleet_cells,
    idle_owned_line,
    offers,
    purchases,
    route_of,
    workflow_costs,
)
from hetplace.simulate.results import SimulationResult, write_outputs

FOLDER_FILES = ("report.html", "report.md")  # what marks a folder as a previous report (common.output_paths)


@dataclass
class ScenarioSection:
    resolved: ResolvedScenario
    plan: Plan | None
    status: str
    diagnosis: list[str] = field(default_factory=list)
    sweep: list[PointResult] = field(default_factory=list)
    sweep_charts: list[Path] = field(default_factory=list)  # already written, inside the report folder
    schedule: SchedulePlan | None = None
    folder: str = ""  # charts go to <report>/<folder>/; unique per section (default: the scenario id)
    settings: dict[str, str] = field(default_factory=dict)  # solver settings as asked for (gap target, time limit…)
    simulation: SimulationResult | None = None  # the plan simulated (`report` without --no-simulate)


@dataclass
class Block:
    """One piece of a section, rendered to both HTML and Markdown."""

    kind: str  # heading | text | table | image
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)  # first row = header
    path: str = ""  # image path relative to the report folder


def _plan_blocks(section: ScenarioSection, out_dir: Path) -> list[Block]:
    plan, resolved = section.plan, section.resolved
    sid = section.folder or resolved.scenario.id
    blocks = [Block("heading", f"{resolved.scenario.name} ({resolved.scenario.id}, {resolved.source})")]
    if plan is None:
        blocks.append(Block("text", f"No plan: {section.status}."))
        blocks += [Block("text", f"Cause: {c}") for c in section.diagnosis]
        blocks += _input_blocks(resolved)
        return blocks
    t = plan.tco
    s = plan.solver
    gap = "n/a" if s.gap is None else f"{s.gap:.2%}"
    blocks.append(
        Block(
            "text",
            f"{section.status}: {t.total_usd_per_year:,.0f} USD/year, {t.usd_per_request:.5f} USD/request, "
            f"{t.usd_per_million_tokens:.4f} USD per 1M tokens; purchases up front {t.purchases_usd:,.0f} USD. "
            f"Solved by {s.backend} in {s.wall_time_s:.1f} s (gap {gap}).",
        )
    )
    charts = out_dir / sid
    charts.mkdir(parents=True, exist_ok=True)
    drawn = [
        ("Fleet composition", "fleet.png", lambda p: fleet_chart(plan, p)),
        ("TCO breakdown chart", "tco.png", lambda p: tco_chart(plan, p)),
        ("Utilisation per device type", "utilisation.png", lambda p: utilisation_chart(plan, p)),
        ("SLA slack per workflow", "sla.png", lambda p: sla_chart(plan, p)),
        ("Operators on the roofline, by placement", "roofline.png", lambda p: placement_roofline(resolved, plan, p)),
    ]
    blocks += _solver_blocks(section, plan)
    blocks += _input_blocks(resolved)
    fleet_rows = [["device", "owned used", "owned idle", "bought", "rented", "nodes", "power kW", "utilisation"]]
    util = device_utilisation(plan)
    fleet_rows += [[*fleet_cells(e), f"{util.get(e.device, 0):.0%}"] for e in plan.fleet]
    blocks += [Block("heading", "Fleet"), Block("table", rows=fleet_rows)]
    idle = idle_owned_line(resolved, plan)
    if idle is not None:
        blocks.append(Block("text", idle))
    blocks += _pool_blocks(plan)
    blocks += _step_blocks(plan)
    costs = {c.workflow: c for c in workflow_costs(resolved, plan)}
    sla_rows = [["workflow", "req/s", "critical path s", "SLA s", "slack s", "USD/request", "share of TCO"]]
    for w in plan.workflows:
        c = costs[w.workflow]
        sla_rows.append(
            [
                w.workflow,
                f"{w.arrival_rate_rps:g}",
                f"{w.critical_path_s:.2f}",
                f"{w.sla_s:g}",
                f"{w.slack_s:.2f}",
                f"{c.usd_per_request:.6f}",
                f"{c.share:.1%}",
            ]
        )
    blocks += [
        Block("heading", "Workflows"),
        Block("table", rows=sla_rows),
        Block(
            "text",
            "USD/request: each device type's cost shared over the pools on it by devices, each pool's over the "
            "steps it serves by the work they put on it (tokens, items, queries, CPU-seconds; co-located LLM pools "
            "by busy time).",
        ),
    ]
    blocks += _tco_blocks(plan)
    blocks += _purchase_blocks(resolved, plan)
    blocks.append(Block("heading", "What binds the plan"))
    for kind, lines in bindings(resolved, plan).items():
        blocks += [Block("text", f"{kind}: {line}") for line in lines]
    for title, name, draw in drawn:
        draw(charts / name)
        blocks += [Block("heading", title), Block("image", text=title, path=f"{sid}/{name}")]
    blocks += _simulation_blocks(section.simulation, out_dir, sid)
    blocks += _baseline_blocks(plan)
    blocks += _sweep_blocks(section, out_dir)
    blocks += _schedule_blocks(section.schedule)
    blocks.append(Block("heading", "Assumptions"))
    blocks.append(Block("text", assumption_line(resolved, plan)))
    blocks += [Block("text", f"• {a}") for a in plan.assumptions]
    return blocks


def _solver_blocks(section: ScenarioSection, plan: Plan) -> list[Block]:
    s = plan.solver
    rows = [["solver", "value"]]
    rows += [[k, v] for k, v in section.settings.items()]
    rows += [
        ["backend", s.backend.value],
        ["status", s.status.value],
        ["stopped because", "—" if s.termination is None else s.termination.value],
        ["objective", plan.objective.value],
        ["objective value", "—" if s.objective is None else f"{s.objective:,.2f}"],
        ["best bound", "—" if s.best_bound is None else f"{s.best_bound:,.2f}"],
        ["proven gap", "—" if s.gap is None else f"{s.gap:.2%}"],
        ["time limit s", "none" if s.time_limit_s is None else f"{s.time_limit_s:g}"],
        ["threads", str(s.threads)],
        ["first plan after s", "—" if s.first_solution_s is None else f"{s.first_solution_s:.1f}"],
        ["wall time s", f"{s.wall_time_s:.1f}"],
    ]
    if s.extra_constraints:
        rows.append(["user constraints", ", ".join(s.extra_constraints)])
    return [Block("heading", "Solver"), Block("table", rows=rows)]


def _input_blocks(resolved: ResolvedScenario) -> list[Block]:
    """The scenario's inputs a reader needs to judge the plan: demand and SLAs, hardware and prices, economics."""
    demand = [["workflow", "req/s", "SLA s", "SLA percentile", "steps"]]
    for wf in resolved.workflows:
        demand.append(
            [
                wf.id,
                f"{wf.arrival_rate_rps:g}",
                f"{wf.sla.e2e_latency_s:g}",
                "service time" if wf.sla.percentile is None else f"p{wf.sla.percentile:g}",
                str(len(wf.steps)),
            ]
        )
    hw = [["offered device", "source", "count / limit", "unit price", "USD/year per device", "devices per node"]]
    for o in offers(resolved).values():
        if o.owned and o.owned_year is not None:
            hw.append(
                [
                    o.device,
                    "owned",
                    str(o.owned),
                    "sunk or residual",
                    f"{o.owned_year.total_usd:,.0f}",
                    str(o.devices_per_node),
                ]
            )
        if o.buyable and o.bought_year is not None:
            limit = "unlimited" if o.buy_max is None else f"≤ {o.buy_max}"
            price = "—" if o.capex_usd is None else f"{o.capex_usd:,.0f} USD"
            hw.append(
                [o.device, "purchasable", limit, price, f"{o.bought_year.total_usd:,.0f}", str(o.devices_per_node)]
            )
        if o.rentable and o.rented_year is not None:
            limit = "unlimited" if o.rent_max is None else f"≤ {o.rent_max}"
            price = "—" if o.usd_per_hour is None else f"{o.usd_per_hour:.2f} USD/h"
            hw.append([o.device, "rentable", limit, price, f"{o.rented_year.total_usd:,.0f}", str(o.devices_per_node)])
    sc = resolved.scenario
    e, lim = sc.economics, sc.limits
    econ = [
        ["economics and limits", "value"],
        ["energy USD/kWh", f"{e.energy_usd_per_kwh:g}"],
        ["PUE", f"{e.pue:g}"],
        ["hosting USD/kW-month", f"{e.hosting_usd_per_kw_month:g}"],
        ["amortisation years", f"{e.amortisation_years:g}"],
        ["average load (share of TDP)", f"{e.avg_load_fraction:g}"],
        ["max utilisation", f"{lim.max_utilisation:g}"],
        ["power cap kW", "none" if lim.power_cap_kw is None else f"{lim.power_cap_kw:,g}"],
        ["capex budget USD", "none" if lim.capex_budget_usd is None else f"{lim.capex_budget_usd:,.0f}"],
        ["annual budget USD", "none" if lim.annual_budget_usd is None else f"{lim.annual_budget_usd:,.0f}"],
        ["serving engine", sc.engine or "none (plain roofline)"],
        ["robust", "yes" if sc.robust else "no"],
    ]
    return [
        Block("heading", "Inputs: demand and SLAs"),
        Block("table", rows=demand),
        Block("heading", "Inputs: hardware and prices"),
        Block("table", rows=hw),
        Block("heading", "Inputs: economics and limits"),
        Block("table", rows=econ),
    ]


def _pool_blocks(plan: Plan) -> list[Block]:
    rows = [
        ["pool", "device", "dtype", "KV", "tp", "batch", "replicas", "devices", "throughput/s", "unit", "utilisation"]
    ]
    for a in sorted(plan.pools, key=lambda a: a.pool):
        rows.append(
            [
                a.pool,
                a.device,
                a.weight_dtype or "—",
                a.kv_dtype or "—",
                str(a.tensor_parallel),
                str(a.batch),
                str(a.replicas),
                str(a.devices),
                f"{a.throughput:,.1f}",
                a.throughput_unit,
                f"{a.utilisation:.0%}",
            ]
        )
    return [Block("heading", "Pools and replicas"), Block("table", rows=rows)]


def _step_blocks(plan: Plan) -> list[Block]:
    critical = {(w.workflow, s) for w in plan.workflows for s in w.critical_steps}
    rows = [
        [
            "workflow",
            "step",
            "repeat",
            "start s",
            "latency s",
            "KV transfer s",
            "device",
            "served by",
            "route",
            "critical",
        ]
    ]
    for s in plan.steps:
        rows.append(
            [
                s.workflow,
                s.step,
                str(s.repeat),
                f"{s.start_s:,.2f}",
                f"{s.latency_s:,.3f}",
                f"{s.transfer_s:,.3f}",
                s.device,
                " + ".join(s.pool.split("+")),
                route_of(s.pool) or "—",
                "yes" if (s.workflow, s.step) in critical else "",
            ]
        )
    return [
        Block("heading", "Steps"),
        Block("table", rows=rows),
        Block("text", "Latency: all repeats of the step per request, service time, KV transfer included."),
    ]


def _tco_blocks(plan: Plan) -> list[Block]:
    t = plan.tco
    rows = [
        ["TCO item", "USD/year"],
        ["capex (amortised)", f"{t.capex_usd_per_year:,.0f}"],
        ["energy", f"{t.energy_usd_per_year:,.0f}"],
        ["hosting", f"{t.hosting_usd_per_year:,.0f}"],
        ["rental", f"{t.rental_usd_per_year:,.0f}"],
        ["total", f"{t.total_usd_per_year:,.0f}"],
    ]
    per = [
        ["unit cost", "USD"],
        ["per request", f"{t.usd_per_request:.6f}"],
        ["per 1M LLM tokens", f"{t.usd_per_million_tokens:.4f}"],
    ]
    return [
        Block("heading", "TCO breakdown"),
        Block("table", rows=rows),
        Block("heading", "Unit costs"),
        Block("table", rows=per),
    ]


def _purchase_blocks(resolved: ResolvedScenario, plan: Plan) -> list[Block]:
    bought = purchases(resolved, plan)
    if not bought:
        return [Block("heading", "Purchases"), Block("text", "Nothing to buy: the plan uses owned and rented devices.")]
    rows = [["device", "count", "nodes", "unit price USD", "total USD"]]
    rows += [[p.device, str(p.count), str(p.nodes), f"{p.unit_usd:,.0f}", f"{p.total_usd:,.0f}"] for p in bought]
    rows.append(
        [
            "total",
            str(sum(p.count for p in bought)),
            str(sum(p.nodes for p in bought)),
            "",
            f"{plan.tco.purchases_usd:,.0f}",
        ]
    )
    return [Block("heading", "Purchases"), Block("table", rows=rows)]


def _summary_blocks(sections: list[ScenarioSection]) -> list[Block]:
    """The batch at a glance: one row per scenario (only when there are several)."""
    rows = [["scenario", "status", "TCO USD/year", "USD/request", "purchases USD", "devices in use", "proven gap"]]
    for sec in sections:
        p = sec.plan
        if p is None:
            rows.append([sec.folder or sec.resolved.scenario.id, sec.status, "—", "—", "—", "—", "—"])
            continue
        devices = sum(e.owned_used + e.bought + e.rented for e in p.fleet)
        rows.append(
            [
                sec.folder or sec.resolved.scenario.id,
                sec.status,
                f"{p.tco.total_usd_per_year:,.0f}",
                f"{p.tco.usd_per_request:.6f}",
                f"{p.tco.purchases_usd:,.0f}",
                str(devices),
                "—" if p.solver.gap is None else f"{p.solver.gap:.2%}",
            ]
        )
    return [Block("heading", "Summary across scenarios"), Block("table", rows=rows)]


def hetplace_version() -> str:
    try:
        return version("hetplace")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def report_blocks(sections: list[ScenarioSection], out_dir: Path, now: datetime | None = None) -> list[list[Block]]:
    """The page's blocks: a header (date, version, the summary when there are several scenarios), then one list per
    scenario (charts are drawn into out_dir as a side effect)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        Block("text", f"Generated {stamp} by hetplace {hetplace_version()}; {len(sections)} scenario(s)."),
        Block("text", UTILISATION_DEFINITION + " The solve screen prints the same figures."),
    ]
    if len(sections) > 1:
        head += _summary_blocks(sections)
    return [head, *[_plan_blocks(s, out_dir) for s in sections]]


def _seconds(x: float | None) -> str:
    """A latency cell: ∞ for requests that never finished, — for none measured."""
    if x is None or math.isnan(x):
        return "—"
    return "∞" if math.isinf(x) else f"{x:,.2f}"


def _simulation_blocks(sim: SimulationResult | None, out_dir: Path, sid: str) -> list[Block]:
    """What the plan delivers under random arrivals (`simulate/`), beside what it promises (its critical path).
    The CDF chart and the CSV/JSON are simulate's own files, written to <scenario>/simulation/."""
    if sim is None:
        return []
    write_outputs(sim, out_dir / sid / "simulation")
    arrivals = "Poisson" if sim.arrivals == "poisson" else sim.arrivals
    text = (
        f"Simulated with hetplace simulate: {sim.duration_s:g} s of {arrivals} arrivals at each workflow's "
        f"rate (seed {sim.seed}); the first {sim.warmup_s:g} s fill the empty fleet and are not measured, then the "
        "requests in flight finish. Service times come from the same cost models the optimizer prices the plan "
        'with; every pool runs its planned configs and replicas (README "Simulation"). Attainment is the share '
        "of measured requests finishing within the SLA (a request still unfinished at the end is a miss). The "
        "plan's SLAs are critical paths of service times (no queueing), not percentiles, unless a workflow states "
        "a percentile: the simulated percentiles say what the plan delivers under random arrivals."
    )
    wf_rows = [
        [
            "workflow",
            "requests",
            "unfinished",
            "mean s",
            "p50 s",
            "p90 s",
            "p99 s",
            "SLA s",
            "attainment",
            "plan critical path s",
        ]
    ]
    for w in sim.workflows:
        wf_rows.append(
            [
                w.workflow,
                f"{w.requests:,}",
                f"{w.unfinished:,}",
                _seconds(w.mean_s),
                _seconds(w.p50_s),
                _seconds(w.p90_s),
                _seconds(w.p99_s),
                f"{w.sla_s:g}",
                "—" if math.isnan(w.attainment) else f"{w.attainment:.1%}",
                _seconds(w.plan_critical_path_s),
            ]
        )
    pool_rows = [["pool", "kind", "replicas", "busy", "load", "plan utilisation", "mean queue", "p99 wait s"]]
    for p in sorted(sim.pools, key=lambda p: p.pool):
        pool_rows.append(
            [
                p.pool,
                p.kind,
                str(p.replicas),
                f"{p.utilisation:.1%}",
                f"{p.load:.1%}",
                "—" if p.plan_utilisation is None else f"{p.plan_utilisation:.1%}",
                f"{p.mean_queue:,.2f}",
                _seconds(p.wait_p99_s),
            ]
        )
    return [
        Block("heading", "Simulation"),
        Block("text", text),
        Block("table", rows=wf_rows),
        Block("heading", "Simulation: pools"),
        Block(
            "text",
            "Per pool: busy = share of replicas busy (batch pools), slots in use (decode, co-located) or cores "
            "busy (tools); load = work served over the plan's capacity (the plan's utilisation definition); "
            "p99 wait = queueing delay of a call before its pass, slot or core.",
        ),
        Block("table", rows=pool_rows),
        Block("heading", "Simulated latency CDF"),
        Block("image", text="Simulated latency CDF", path=f"{sid}/simulation/latency_cdf.png"),
    ]


def _baseline_blocks(plan: Plan) -> list[Block]:
    if not plan.baselines:
        return []
    rows = [["single-accelerator fleet", "status", "TCO USD/year", "heterogeneous plan saves"]]
    for b in sorted(plan.baselines, key=lambda b: (b.total_usd_per_year is None, b.total_usd_per_year or 0)):
        rows.append(
            [
                b.device,
                b.status,
                "—" if b.total_usd_per_year is None else f"{b.total_usd_per_year:,.0f}",
                "—" if b.saving_fraction is None else f"{b.saving_fraction:.1%}",
            ]
        )
    return [Block("heading", "Baselines"), Block("table", rows=rows)]


def _sweep_blocks(section: ScenarioSection, out_dir: Path) -> list[Block]:
    if not section.sweep:
        return []
    params = list(section.sweep[0].params)
    rows = [[*params, "status", "TCO USD/year", "mean critical path s", "bought"]]
    for r in section.sweep:
        rows.append(
            [
                *[str(r.params[p]) for p in params],
                r.status if not r.diagnosis else f"{r.status}: {r.diagnosis[0]}",
                "—" if r.total_usd_per_year is None else f"{r.total_usd_per_year:,.0f}",
                "—" if r.mean_critical_path_s is None else f"{r.mean_critical_path_s:.2f}",
                " ".join(f"{d}×{n}" for d, n in r.bought.items()),
            ]
        )
    blocks = [Block("heading", "What-if"), Block("table", rows=rows)]
    for chart in section.sweep_charts:
        blocks.append(Block("image", text=chart.stem, path=chart.relative_to(out_dir).as_posix()))
    return blocks


def schedule_rows(schedule: SchedulePlan) -> list[list[str]]:
    """The purchase schedule as text rows (first row = header), for the report and the CLI table."""
    rows = [["period", "demand ×", "bought", "bought so far", "rented", "cost USD"]]
    for p in schedule.periods:
        rows.append(
            [
                str(p.period),
                f"{p.demand_factor:.2f}",
                " ".join(f"{d}×{n}" for d, n in p.bought.items()) or "—",
                " ".join(f"{d}×{n}" for d, n in p.held.items()) or "—",
                " ".join(f"{e.device}×{e.rented}" for e in p.plan.fleet if e.rented) or "—",
                f"{p.cost_usd:,.0f}",
            ]
        )
    return rows


def _schedule_blocks(schedule: SchedulePlan | None) -> list[Block]:
    if schedule is None:
        return []
    rows = schedule_rows(schedule)
    text = f"Horizon cost {schedule.total_usd:,.0f} USD, purchases {schedule.purchases_usd:,.0f} USD."
    if schedule.greedy_total_usd is not None:
        text += (
            f" Planned period by period (myopically) it would cost {schedule.greedy_total_usd:,.0f} USD "
            f"({schedule.greedy_excess_fraction:+.1%})."
        )
    return [Block("heading", "Purchase schedule"), Block("text", text), Block("table", rows=rows)]


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;color:#222;"
    "line-height:1.4}"
    ".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.5em 0 1.5em;max-width:100%;"
    # a shadow at an edge with more table behind it (it scrolls away with the content): says "swipe" on a phone
    "background:linear-gradient(to right,#fff 30%,#fff0),linear-gradient(to left,#fff 30%,#fff0) 100% 0,"
    "radial-gradient(farthest-side at 0 50%,#0003,#0000),radial-gradient(farthest-side at 100% 50%,#0003,#0000) 100% 0;"
    "background-repeat:no-repeat;background-size:40px 100%,40px 100%,14px 100%,14px 100%;"
    "background-attachment:local,local,scroll,scroll}"
    "table{border-collapse:collapse;font-variant-numeric:tabular-nums}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;white-space:nowrap}"
    "th{background:#f3f3f3}.n{text-align:right}"
    "img{max-width:100%;height:auto}h2{border-top:2px solid #444;padding-top:.6em;margin-top:2em}"
    "p,h1,h2,h3{overflow-wrap:anywhere}"
    "@media (max-width:600px){body{margin:1em auto;padding:0 .6em}td,th{padding:.2em .4em}}"
)
"""Tables scroll sideways inside their own box on a narrow screen (the page itself never does); cells never wrap,
so a number or id is never broken."""


_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+(%| USD| USD/h)?|—|∞|n/a|none|unlimited|≤ \d+")


def _numeric_columns(body: list[list[str]], width: int) -> list[bool]:
    """Columns whose every cell is a number (or a dash): right-aligned, the rest left-aligned."""
    return [
        bool(body) and all(_NUMBER.fullmatch(r[i]) for r in body if r[i]) and any(r[i] for r in body)
        for i in range(width)
    ]


def _html(blocks_by_scenario: list[list[Block]], title: str) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for blocks in blocks_by_scenario:
        for i, b in enumerate(blocks):
            if b.kind == "heading":
                tag = "h2" if i == 0 else "h3"
                parts.append(f"<{tag}>{e(b.text)}</{tag}>")
            elif b.kind == "text":
                parts.append(f"<p>{e(b.text)}</p>")
            elif b.kind == "image":
                parts.append(f'<p><img src="{e(b.path)}" alt="{e(b.text)}"></p>')
            elif b.kind == "table":
                head, *body = b.rows
                num = _numeric_columns(body, len(head))

                def cell(tag: str, text: str, i: int, num: list[bool] = num) -> str:
                    return f'<{tag} class="n">{e(text)}</{tag}>' if num[i] else f"<{tag}>{e(text)}</{tag}>"

                parts.append('<div class="scroll"><table><tr>' + "".join(cell("th", c, i) for i, c in enumerate(head)))
                parts[-1] += "</tr>"
                parts += ["<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>" for row in body]
                parts.append("</table></div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _markdown(blocks_by_scenario: list[list[Block]], title: str) -> str:
    lines = [f"# {title}", ""]
    for blocks in blocks_by_scenario:
        for i, b in enumerate(blocks):
            if b.kind == "heading":
                lines += [("## " if i == 0 else "### ") + b.text, ""]
            elif b.kind == "text":
                lines += [b.text, ""]
            elif b.kind == "image":
                lines += [f"![{b.text}]({b.path})", ""]
            elif b.kind == "table":
                head, *body = b.rows
                lines.append("| " + " | ".join(head) + " |")
                lines.append("|" + "---|" * len(head))
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
                lines.append("")
    return "\n".join(lines)


def unique_folders(ids: list[str]) -> list[str]:
    """Scenario ids made unique as folder names (two files may share an id)."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    return out


def write_report(sections: list[ScenarioSection], out_dir: Path, title: str = "hetplace fleet report") -> list[Path]:
    """Charts first, then report.html and report.md (atomically). Returns the two pages. The CLI passes a staged
    folder (`common.output_paths.staged_folder`) that replaces the report folder as a whole once this returns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = report_blocks(sections, out_dir)
    pages = [out_dir / "report.html", out_dir / "report.md"]
    atomic_write_text(pages[0], _html(blocks, title))
    atomic_write_text(pages[1], _markdown(blocks, title))
    return pages
