"""Terminal screens of the commands other than `solve` (catalog, analyze, calibrate, whatif, schedule), as rich
renderables the CLI prints (cli.py only parses and prints). Every table is a `FitTable` (reports.fit_table), so no
id, number or status is cut at any terminal width; the `solve` screen is reports.plan_screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from hetplace.problems.plan import SchedulePlan
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.fit_table import DASH, Col, FitTable, fmt, pct, styled
from hetplace.reports.plan_screen import plan_screen
from hetplace.simulate.results import SimulationResult

__all__ = ["plan_screen"]  # the CLI reaches every screen through this module


# ── catalog ──────────────────────────────────────────────────────────────────────────────────────────────────────


# What set a serving estimate's batch (costmodels.serving's `batch_bound_by`), in words for the terminal.
BATCH_BOUNDS = {
    "kv_capacity": "the KV cache at ISL + OSL",
    "engine_max_running_seqs": "the engine's cap on running sequences",
    "engine_max_tokens_per_step": "the engine's token budget per step",
}


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
    bound = serving.get("batch_bound_by", "load") if serving else "load"
    if serving and bound != "load":
        waiting = serving.get("in_flight", serving["batch"]) - serving["batch"]
        wait_note = f"; {waiting:,.0f} of the requests in flight wait for a slot" if waiting > 0 else ""
        parts.append(
            Text(
                f"batch set by {BATCH_BOUNDS.get(bound, bound)} (the KV cache fits {serving['max_batch']:,.0f}"
                f"{wait_note})"
            )
        )
    priced = result.get("priced_with")
    if priced:
        parts.append(Text(f"priced with calibration {priced['calibration']}, engine {priced['engine']}"))
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


# ── simulate ─────────────────────────────────────────────────────────────────────────────────────────────────────


def simulation_view(result: SimulationResult) -> RenderableType:
    """`simulate`: a header line, then per workflow, per LLM step and per pool tables."""
    c = result.conservation
    head = Text(
        f"{result.scenario}: {result.duration_s:,.0f} s of {result.arrivals} arrivals (seed {result.seed}), "
        f"measured after {result.warmup_s:,.0f} s; {c.arrived:,} arrived, {c.finished:,} finished, "
        f"{c.in_flight:,} in flight at the end of arrivals; {result.events:,} events"
    )
    workflows = FitTable(
        "Workflows (end-to-end latency, s)",
        [Col("workflow"), *(Col(n, True) for n in ("requests", "mean", "p50", "p90", "p99", "SLA", "attained")),
         Col("plan critical path", True)],
        [
            [w.workflow, f"{w.requests:,}", f"{w.mean_s:.2f}", f"{w.p50_s:.2f}", f"{w.p90_s:.2f}", f"{w.p99_s:.2f}",
             f"{w.sla_s:g}", f"{w.attainment:.1%}",
             DASH if w.plan_critical_path_s is None else f"{w.plan_critical_path_s:.2f}"]
            for w in result.workflows
        ],
    )  # fmt: skip
    steps = FitTable(
        "LLM steps (s)",
        [Col("workflow"), Col("step"), *(Col(n, True) for n in ("calls", "TTFT p50", "TTFT p99", "TPOT p50",
                                                                "TPOT p99"))],
        [
            [s.workflow, s.step, f"{s.calls:,}", f"{s.ttft_p50_s:.3f}", f"{s.ttft_p99_s:.3f}",
             fmt(s.tpot_p50_s, ".4f"), fmt(s.tpot_p99_s, ".4f")]
            for s in result.steps
        ],
        heading_cols=2,
    )  # fmt: skip
    pools = FitTable(
        "Pools",
        [Col("pool"), Col("kind"), *(Col(n, True) for n in ("replicas", "busy", "load", "plan load", "mean queue",
                                                            "max queue", "wait p99 s"))],
        [
            [p.pool, p.kind, str(p.replicas), f"{p.utilisation:.0%}", f"{p.load:.0%}",
             DASH if p.plan_utilisation is None else f"{p.plan_utilisation:.0%}", f"{p.mean_queue:.2f}",
             str(p.max_queue), f"{p.wait_p99_s:.3f}"]
            for p in result.pools
        ],
    )  # fmt: skip
    return Group(head, workflows, steps, pools)
