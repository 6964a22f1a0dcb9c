"""Charts of one plan for the batch report: fleet, TCO breakdown, utilisation, SLA slack, placement roofline.

Each function writes one PNG atomically. Utilisation is reports.plan_facts.device_utilisation, the figure the
solve screen and the report's tables print. Numbers come from the Plan (and, for the roofline, the cost models at
each LLM pool's chosen config), never from the solver's internal model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hetplace.costmodels.analysis import analyze_llm
from hetplace.costmodels.step_shape import LlmCallShape, llm_call_shape, llm_pool_shape
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import LlmStep
from hetplace.reports.figures import pyplot, save_png
from hetplace.reports.plan_facts import device_utilisation
from hetplace.reports.roofline_plot import attainable_flops


def fleet_chart(plan: Plan, out: Path) -> list[float]:
    """Devices per type by source, stacked; returns the device-count ticks drawn (whole numbers)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    names = [e.device for e in plan.fleet]
    left = np.zeros(len(names))
    for label, attr, color in (
        ("owned, used", "owned_used", "tab:green"),
        ("bought", "bought", "tab:blue"),
        ("rented", "rented", "tab:orange"),
        ("owned, idle", "owned_idle", "0.8"),
    ):
        vals = np.array([getattr(e, attr) for e in plan.fleet], dtype=float)
        ax.barh(names, vals, left=left, label=label, color=color)
        left += vals
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # devices come whole
    ax.set_xlabel("devices")
    ax.set_title("Fleet composition")
    ax.legend(fontsize=8)
    ax.invert_yaxis()
    lo, hi = ax.get_xlim()
    ticks = [float(t) for t in ax.get_xticks() if lo <= t <= hi]
    save_png(fig, out)
    return ticks


def tco_chart(plan: Plan, out: Path) -> None:
    plt = pyplot()
    t = plan.tco
    parts = {
        "capex (amortised)": t.capex_usd_per_year,
        "energy": t.energy_usd_per_year,
        "hosting": t.hosting_usd_per_year,
        "rental": t.rental_usd_per_year,
    }
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=110)
    ax.bar(list(parts), [v / 1e3 for v in parts.values()], color=["tab:blue", "tab:red", "tab:purple", "tab:orange"])
    ax.set_ylabel("thousand USD / year")
    ax.set_title(f"TCO breakdown: {t.total_usd_per_year:,.0f} USD / year")
    save_png(fig, out)


def utilisation_chart(plan: Plan, out: Path) -> None:
    plt = pyplot()
    util = device_utilisation(plan)
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=110)
    ax.bar(list(util), [100 * u for u in util.values()], color="tab:green")
    ax.set_ylabel("utilisation, % (device-weighted pool load)")
    ax.set_ylim(0, 100)
    ax.set_title("Utilisation per device type")
    ax.tick_params(axis="x", rotation=30)
    save_png(fig, out)


def sla_chart(plan: Plan, out: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=110)
    names = [w.workflow for w in plan.workflows]
    ax.barh(names, [w.sla_s for w in plan.workflows], color="0.85", label="SLA")
    ax.barh(names, [w.critical_path_s for w in plan.workflows], color="tab:blue", height=0.5, label="critical path")
    ax.set_xlabel("seconds")
    ax.set_title("Critical path vs SLA per workflow")
    ax.legend(fontsize=8)
    ax.invert_yaxis()
    save_png(fig, out)


def _llm_mean_call(resolved: ResolvedScenario, model: str) -> LlmCallShape:
    """The call the model's pools were sized at: the demand-weighted mean over every step it serves, repeats
    and prompt growth included (the same definition the optimizer prices, costmodels.step_shape)."""
    steps = [
        (wf.arrival_rate_rps * s.repeat, s)
        for wf in resolved.workflows
        for s in wf.steps
        if isinstance(s, LlmStep) and s.model == model
    ]
    calls = [
        llm_call_shape(
            s.prompt_tokens, s.cached_prefix_tokens, s.output_tokens, s.repeat, s.prompt_growth_tokens_per_repeat
        )
        for _, s in steps
    ]
    return llm_pool_shape([r for r, _ in steps], calls, [float(s.output_tokens) for _, s in steps]).mean_call


def placement_roofline(resolved: ResolvedScenario, plan: Plan, out: Path) -> int:
    """Every LLM pool's operators on the roofline of the device it was placed on, coloured by device; marker by
    phase. Returns how many operators were drawn."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    colors: dict[str, str] = {}
    dtypes: dict[str, str | None] = {}  # the roof drawn is the peak of the dtype placed on the device
    drawn = 0
    markers = {"prefill": "o", "decode": "s", "colocated": "D"}
    for a in plan.pools:
        if a.phase not in markers or a.model is None:
            continue
        model = resolved.catalog.model(a.model)
        device = resolved.catalog.device(a.device)
        call = _llm_mean_call(resolved, a.model)
        phase = "prefill" if a.phase == "prefill" else "decode"  # a co-located pool is drawn at its decode step
        result = analyze_llm(
            model,
            device,
            a.tensor_parallel,
            phase,
            a.batch,
            call.prompt_tokens,
            call.decode_context_tokens,
            a.weight_dtype,
            call.cached_tokens,
            kv_dtype=a.kv_dtype or model.kv_dtype,  # plans written before kv_dtype existed mean the model's own
        )
        color = colors.setdefault(a.device, f"C{len(colors) % 10}")
        dtypes.setdefault(a.device, a.weight_dtype)
        ops = [o for o in result["operators"] if o["flops"] > 0 and o["latency_s"] > 0 and o["oi"] > 0]
        ax.scatter(
            [o["oi"] for o in ops],
            [o["flops"] / o["latency_s"] for o in ops],
            color=color,
            marker=markers[a.phase],
            s=14,
            alpha=0.7,
        )
        drawn += len(ops)
    grid = np.logspace(-1, 4.5, 200)
    for dev_id, color in colors.items():
        dev = resolved.catalog.device(dev_id)
        placed = next((d for d in dev.peak_tflops if d.value == dtypes.get(dev_id)), None)
        peaks = dev.peak_tflops
        dtype = placed or max(peaks, key=lambda d: peaks[d])
        ax.plot(grid, attainable_flops(dev, dtype, grid), color=color, label=f"{dev_id} roof ({dtype.value})")
    for phase, m in markers.items():
        ax.scatter([], [], marker=m, color="0.3", label=phase)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOPs / byte)")
    ax.set_ylabel("FLOP/s (roofs: datasheet; points: modelled operators)")
    ax.set_title("LLM operators on the roofline of their placement")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_png(fig, out)
    return drawn
