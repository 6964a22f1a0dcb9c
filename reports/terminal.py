"""Terminal screens of every command, as rich renderables the CLI prints (cli.py only parses and prints).

Every table is a `FitTable`: at its natural width if that fits the terminal, else with its free-text columns
wrapped, else (when even the ids and numbers alone do not fit) as a stacked list of "column value" pairs per row.
So no number, id or status is ever cut with "…", at any width down to a phone-sized terminal. Data is put into
`Text` objects, never parsed as markup, so square brackets in ids and messages print as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, SchedulePlan
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.plan_facts import (
    UTILISATION_DEFINITION,
    assumption_line,
    bindings,
    device_utilisation,
    pool_sizing,
    purchases,
    route_of,
    workflow_costs,
)

DASH = "—"


@dataclass(frozen=True)
class Col:
    """A column: `wrap` columns hold free text (names, messages) that may wrap at spaces; the others hold ids and
    numbers, which are never wrapped or cut."""

    name: str
    right: bool = False
    wrap: bool = False


class FitTable:
    """A table that never cuts a cell: natural width, else wrapped free text, else a stacked list per row."""

    def __init__(
        self,
        title: str,
        cols: Sequence[Col],
        rows: Iterable[Sequence[str]],
        caption: str = "",
        heading_cols: int = 1,
        label_heading: bool = False,
    ) -> None:
        self.title = title
        self.heading_cols = heading_cols  # cells that head a row's block in the stacked layout
        self.label_heading = label_heading  # heading cells as `name value` (parameters) rather than bare (ids)
        self.cols = list(cols)
        self.rows = [list(r) for r in rows]
        self.caption = caption

    def _table(self, widths: list[int] | None) -> Table:
        table = Table(
            title=Text(self.title) if self.title else None,
            box=box.HEAVY_HEAD,
            pad_edge=False,
            show_edge=False,
        )
        for i, c in enumerate(self.cols):
            table.add_column(
                Text(c.name),
                justify="right" if c.right else "left",
                no_wrap=not c.wrap,
                overflow="fold" if c.wrap else "ellipsis",
                width=None if widths is None else widths[i],
            )
        for r in self.rows:
            table.add_row(*(Text(cell) for cell in r))
        return table

    def _natural(self) -> list[int]:
        return [max([cell_len(c.name), *(cell_len(r[i]) for r in self.rows)]) for i, c in enumerate(self.cols)]

    def _minimum(self) -> list[int]:
        """Narrowest width of each column that cuts nothing: ids, numbers and their headers whole; free text (and
        its header) at its longest word."""
        out = []
        for i, c in enumerate(self.cols):
            cells = [c.name, *(r[i] for r in self.rows)]
            if c.wrap:
                out.append(max(cell_len(w) for cell in cells for w in (cell.split() or [""])))
            else:
                out.append(max(cell_len(cell) for cell in cells))
        return out

    def _extra(self) -> int:
        """Width the table adds around its columns: a divider and a space of padding either side between neighbours
        (HEAVY_HEAD box without its outer edges and padding)."""
        return 3 * len(self.cols) - 3

    def widths_for(self, max_width: int) -> list[int] | None:
        """Column widths that fit `max_width` without cutting anything, or None when only the stacked layout does.
        Free-text columns share what is left over in proportion to their natural width."""
        natural, minimum = self._natural(), self._minimum()
        extra = self._extra()
        if sum(natural) + extra <= max_width:
            return natural
        if sum(minimum) + extra > max_width:
            return None
        widths = list(minimum)
        spare = max_width - extra - sum(minimum)
        want = {i: natural[i] - minimum[i] for i, c in enumerate(self.cols) if c.wrap and natural[i] > minimum[i]}
        total = sum(want.values())
        for i, w in want.items():
            widths[i] += min(w, spare * w // total) if total else 0
        return widths

    def stacked(self, max_width: int) -> Group:
        """One block per row: its heading cells, then every other column as `name value`, packed into lines of
        `max_width` and broken only between pairs (a pair wider than a line wraps at its spaces)."""
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="bold"))
        k = self.heading_cols
        for r in self.rows:
            heads = [
                f"{c.name} {cell}" if self.label_heading else cell
                for c, cell in zip(self.cols[:k], r[:k], strict=True)
                if cell
            ]
            parts.append(Text(" · ".join(heads), style="bold"))
            pairs = [f"{c.name} {cell}" for c, cell in zip(self.cols[k:], r[k:], strict=True) if cell]
            line = ""
            for pair in pairs:
                joined = f"{line} · {pair}" if line else f"  {pair}"
                if line and cell_len(joined) > max_width:
                    parts.append(Text(line))
                    joined = f"  {pair}"
                line = joined
            if line:
                parts.append(Text(line))
        if self.caption:
            parts.append(Text(self.caption, style="dim"))
        return Group(*parts)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.widths_for(options.max_width)
        if widths is None:
            yield self.stacked(options.max_width)
            return
        yield self._table(widths)
        if self.caption:
            yield Text(self.caption, style="dim")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        natural = sum(self._natural()) + self._extra()
        return Measurement(min(natural, options.max_width), min(natural, options.max_width))


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return DASH if value is None else format(value, spec)


def pct(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:.1f}%"


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain and (text, style) parts; nothing in it is read as markup."""
    return Text.assemble(*parts)


# ── catalog ──────────────────────────────────────────────────────────────────────────────────────────────────────


def devices_table(devices: Sequence[Any]) -> FitTable:
    cols = [
        Col("id"),
        Col("tier"),
        Col("kind"),
        Col("bf16 TFLOPS", True),
        Col("best dtype", True),
        Col("mem GB", True),
        Col("BW GB/s", True),
        Col("TDP W", True),
        Col("capex $", True),
        Col("cloud $/h", True),
    ]
    rows = []
    for d in devices:
        best_dtype = max(d.peak_tflops, key=lambda k: d.peak_tflops[k])
        rows.append(
            [
                d.id,
                d.tier.value,
                d.kind.value,
                fmt(d.peak_tflops.get("bf16"), ",.1f"),
                f"{best_dtype.value} {d.peak_tflops[best_dtype]:,.0f}",
                f"{d.mem_gb:g}",
                fmt(d.mem_bw_gbs),
                fmt(d.tdp_w),
                fmt(d.capex_usd) + ("*" if "capex_usd" in d.estimated_fields else ""),
                fmt(d.cloud_usd_per_hour, ".2f"),
            ]
        )
    return FitTable(f"Devices ({len(devices)})", cols, rows, caption="* estimate (see the device's sources)")


def models_table(models: Sequence[Any]) -> FitTable:
    cols = [
        Col("id"),
        Col("kind"),
        Col("layers", True),
        Col("hidden", True),
        Col("heads/kv", True),
        Col("attention"),
        Col("experts act/total", True),
        Col("weights"),
        Col("context", True),
    ]
    rows = []
    for m in models:
        experts = f"{m.moe.experts_per_token}/{m.moe.num_experts}" if m.moe else DASH
        rows.append(
            [
                m.id,
                m.kind.value,
                str(m.num_layers),
                str(m.hidden_size),
                f"{m.num_heads}/{m.num_kv_heads}",
                m.attention.value,
                experts,
                m.weight_dtype.value,
                f"{m.max_context_tokens:,}",
            ]
        )
    return FitTable(f"Models ({len(models)})", cols, rows)


# ── analyze ──────────────────────────────────────────────────────────────────────────────────────────────────────


def analyze_view(result: dict[str, Any]) -> Group:
    """`analyze --model --device`: the operator table and the totals (and the serving estimate, if any)."""
    t = result["totals"]
    cols = [
        Col("operator", wrap=True),
        Col("GFLOP", True),
        Col("MB moved", True),
        Col("OI", True),
        Col("CF GB", True),
        Col("latency ms", True),
        Col("bound"),
    ]
    rows = [
        [
            op["name"],
            f"{op['flops'] / 1e9:,.2f}",
            f"{op['bytes'] / 1e6:,.1f}",
            f"{op['oi']:,.1f}",
            f"{op['cf_bytes'] / 1e9:,.2f}",
            f"{op['latency_s'] * 1e3:,.3f}",
            op["bound"],
        ]
        for op in result["operators"]
    ]
    title = f"{t['model']} {t['phase']} on {t['device']} (tp={t['tp']}, batch={t['batch']}, {t['dtype']})"
    parts: list[RenderableType] = [FitTable(title, cols, rows)]
    fits: str | tuple[str, str] = ("fits", "green") if t["fits"] else ("does not fit", "red")
    parts.append(
        styled(
            f"latency {t['latency_s'] * 1e3:,.3f} ms · {t['tokens_per_s']:,.0f} tokens/s · ",
            fits,
            "" if t["fits"] else f" (max batch {t['max_batch']})",
            f" · max batch {t['max_batch']:,} · CF {t['cf_bytes'] / 1e9:,.2f} GB/device · weights need ≥ "
            f"{t['min_devices_for_weights']} device(s)",
        )
    )
    terms = {k: v for k, v in t.get("terms", {}).items() if v}
    if terms:
        parts.append(
            Text("engine terms (ms per pass): " + " · ".join(f"{k} {v * 1e3:+,.3f}" for k, v in terms.items()))
        )
    serving = result.get("serving")
    if serving:
        tail: list[str | tuple[str, str]] = []
        if not serving["fits"]:
            tail = [" · ", ("does not fit", "red"), f" (max batch {serving['max_batch']:,.0f})"]
        parts.append(
            styled(
                f"serving ({serving['mode']}, batch {serving['batch']:,.0f}): TTFT {serving['ttft_s'] * 1e3:,.1f} ms · "
                f"TPOT {serving['tpot_s'] * 1e3:,.2f} ms · e2e {serving['e2e_latency_s']:,.2f} s · "
                f"{serving['output_tokens_per_s']:,.0f} output tokens/s "
                f"({serving['output_tokens_per_s_per_device']:,.0f} per device)",
                *tail,
            )
        )
    return Group(*parts)


def workflow_view(result: dict[str, Any]) -> Group:
    """`analyze --workflow`: one table per step, every catalog device."""
    tables = []
    for step in result["steps"]:
        title = (
            f"{result['workflow']} · step '{step['step']}' ({step['kind']}, ×{step['repeat']}): "
            f"cheapest {step['cheapest']} ({step['cheapest_tier']}), fastest {step['fastest']}"
        )
        cols = [Col("device"), Col("fits"), Col("tp", True), Col("latency s", True), Col("$/1k calls", True)]
        cols.append(Col("why", wrap=True))
        rows = []
        for row in step["devices"]:
            if not row["fits"] and "latency_s" not in row:
                rows.append([row["device"], "no", DASH, DASH, DASH, row["why"]])
                continue
            usd = row["usd_per_call"]
            price = "— (no price)" if usd is None else f"{usd * 1000:,.4f}"  # neither capex nor cloud price
            rows.append(
                [
                    row["device"],
                    "yes" if row["fits"] else "no",
                    str(row["tp"]),
                    f"{row['latency_s']:,.3f}",
                    price,
                    row["why"],
                ]
            )
        tables.append(FitTable(title, cols, rows))
    return Group(*tables)


# ── calibrate ────────────────────────────────────────────────────────────────────────────────────────────────────


def calibration_table(cal: Any) -> FitTable:
    cols = [
        Col("device"),
        Col("η_c", True),
        Col("η_m", True),
        Col("overhead µs", True),
        Col("rows fit/held", True),
        Col("datasheet med/p90 (fit)", True),
        Col("fitted med/p90 (fit)", True),
        Col("datasheet med/p90 (held)", True),
        Col("fitted med/p90 (held)", True),
    ]
    rows = []
    for dev_id, d in cal.devices.items():
        held = d.held_back
        rows.append(
            [
                dev_id,
                f"{d.compute:.3f}",
                f"{d.memory:.3f}",
                f"{d.kernel_overhead_us:.1f}",
                f"{d.fit.rows}/{held.rows if held else 0}",
                f"{pct(d.datasheet_fit.median_abs_error)} / {pct(d.datasheet_fit.p90_abs_error)}",
                f"{pct(d.fit.median_abs_error)} / {pct(d.fit.p90_abs_error)}",
                f"{pct(d.datasheet_held_back and d.datasheet_held_back.median_abs_error)} / "
                f"{pct(d.datasheet_held_back and d.datasheet_held_back.p90_abs_error)}",
                f"{pct(held and held.median_abs_error)} / {pct(held and held.p90_abs_error)}",
            ]
        )
    title = f"Calibration of {len(cal.devices)} device(s), {cal.held_back_fraction:.0%} of rows held back"
    return FitTable(title, cols, rows)


def evaluation_table(result: dict[str, Any], title: str) -> FitTable:
    cols = [Col("device"), Col("factors"), Col("rows", True), Col("median abs error", True), Col("p90 abs error", True)]
    rows = [
        [dev_id, d["factors"], f"{d['rows']:,}", pct(d["median_abs_error"]), pct(d["p90_abs_error"])]
        for dev_id, d in result["per_device"].items()
    ]
    rows.append(["all", "", f"{result['rows']:,}", pct(result["median_abs_error"]), pct(result["p90_abs_error"])])
    return FitTable(title, cols, rows)


def serving_table(rep: dict[str, Any], bands: dict[str, float]) -> FitTable:
    loso = rep["leave_one_source_out"]
    title = (
        f"Serving calibration: {rep['rows_evaluated']:,} of {rep['rows']:,} rows priced; fit "
        f"{rep['fit_seconds']:.1f} s, leave-one-source-out {rep['loso_seconds']:.1f} s"
    )
    cols = [
        Col("device"),
        Col("rows", True),
        Col("neutral med/p90", True),
        Col("fitted med/p90", True),
        Col("LOSO med/p90", True),
        Col("LOSO speed", True),
        Col("band", True),
    ]

    def cells(key: str, label: str) -> list[str]:
        out = []
        for tables in (rep["before"], rep["after"], loso):
            s = tables["overall"] if key == "overall" else tables[key].get(label) if tables else None
            out.append(f"{pct(s['median_abs_error'])} / {pct(s['p90_abs_error'])}" if s else DASH)
        s = (loso["overall"] if key == "overall" else loso[key].get(label)) if loso else None
        out.append(f"{s['speed_geomean']:.2f}" if s and s["speed_geomean"] is not None else DASH)
        return out

    rows = [
        [dev, f"{s['rows']:,}", *cells("device", dev), pct(bands.get(dev))]
        for dev, s in rep["before"]["device"].items()
    ]
    rows.append(["all", f"{rep['rows_evaluated']:,}", *cells("overall", ""), ""])
    return FitTable(title, cols, rows)


# ── solve ────────────────────────────────────────────────────────────────────────────────────────────────────────


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
    rows = [
        [
            e.device,
            str(e.owned_used),
            str(e.owned_idle),
            str(e.bought),
            str(e.rented),
            str(e.nodes),
            f"{e.power_kw:,.1f}",
            f"{util[e.device]:.0%}" if e.device in util else DASH,
        ]
        for e in plan.fleet
    ]
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
    cols += [Col("KV s", True), Col("device"), Col("served by", wrap=True), Col("crit.")]
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
    parts += [fleet_table(plan), pools_table(plan), steps_table(plan), workflows_table(resolved, plan)]
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


def load_sized_pools(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """Pool ids whose replica count the utilisation cap sets (for tests and the report)."""
    return [s.pool for s in pool_sizing(resolved, plan) if s.at_cap]


# ── whatif, schedule ─────────────────────────────────────────────────────────────────────────────────────────────


def sweep_table(results: Sequence[PointResult], specs: Sequence[str]) -> FitTable:
    """`whatif`: one row per point; the status column carries the diagnosis and wraps."""
    cols = [Col(s) for s in specs]
    cols += [
        Col("status", wrap=True),
        Col("TCO USD/yr", True),
        Col("vs first", True),
        Col("mean path s", True),
        Col("bought", wrap=True),
        Col("rented", wrap=True),
        Col("gap", True),
        Col("s", True),
    ]
    first = next((r.total_usd_per_year for r in results if r.total_usd_per_year is not None), None)
    rows = []
    for r in results:
        tco = r.total_usd_per_year
        why = r.diagnosis[0] if r.diagnosis else r.error
        status = f"{r.status}: {why}" if why else r.status
        rows.append(
            [
                *[str(r.params.get(s)) for s in specs],
                status,
                DASH if tco is None else f"{tco:,.0f}",
                DASH if tco is None or not first else f"{tco / first - 1:+.1%}",
                DASH if r.mean_critical_path_s is None else f"{r.mean_critical_path_s:.2f}",
                " ".join(f"{k}×{v}" for k, v in r.bought.items()),
                " ".join(f"{k}×{v}" for k, v in r.rented.items()),
                DASH if r.gap is None else f"{r.gap:.2%}",
                f"{r.wall_time_s:.1f}",
            ]
        )
    if not specs:
        return FitTable("What-if points", cols, rows)
    return FitTable("What-if points", cols, rows, heading_cols=len(specs), label_heading=True)


def schedule_view(schedule: SchedulePlan, status: str, head_and_rows: list[list[str]]) -> Group:
    head, *rows = head_and_rows
    cols = [
        Col(c, right=c in ("period", "demand ×", "cost USD"), wrap=c in ("bought", "bought so far", "rented"))
        for c in head
    ]
    title = f"{schedule.scenario}: purchase schedule ({schedule.period_years:g}-year periods)"
    line = f"horizon cost {schedule.total_usd:,.0f} USD ({status}); purchases {schedule.purchases_usd:,.0f} USD"
    if schedule.greedy_total_usd is not None:
        line += (
            f"; period-by-period (greedy) {schedule.greedy_total_usd:,.0f} USD, "
            f"{schedule.greedy_excess_fraction or 0.0:+.1%} against planning the horizon at once"
        )
    return Group(FitTable(title, cols, rows), Text(line))
