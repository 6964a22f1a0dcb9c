"""What a capacity planner reads off a solved plan, computed from the plan and its scenario only (never by
re-solving): what each device type and workflow costs, what binds the plan, why an offered device was not bought,
the purchase list. The solve screen (reports.terminal) and the batch report (reports.report) both print these, so
the two always show the same numbers.

Definitions used everywhere:
  pool utilisation    the load a pool config carries over its capacity (PoolAssignment.utilisation, the plan's
                      own figure); the plan keeps it ≤ the scenario's max_utilisation.
  device utilisation  Σ over pools on the type of devices × pool utilisation, over the devices in use (owned used +
                      bought + rented): devices bought only to fill a node count as idle.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hetplace.common.errors import InputError
from hetplace.costmodels.analysis import analyze_llm
from hetplace.costmodels.step_shape import llm_call_shape, llm_pool_shape
from hetplace.costmodels.tco import (
    SECONDS_PER_YEAR,
    DeviceYearCost,
    EconomicsInputs,
    bought_device_year,
    owned_device_year,
    rented_device_year,
)
from hetplace.problems.loader import ResolvedScenario, purchase_price_usd, rental_usd_per_hour
from hetplace.problems.plan import FleetEntry, Plan, PoolAssignment
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, Step, ToolStep, Workflow

UTILISATION_DEFINITION = (
    "Utilisation: a pool's load over its capacity (the plan keeps it at or below max_utilisation); a device type's "
    "is the device-weighted mean over its pools, counted over the devices in use (owned used + bought + rented)."
)
SLA_TIGHT_FRACTION = 0.02  # a workflow whose slack is within 2 % of its SLA is reported as binding
NEAR_CAP_FRACTION = 0.95  # a pool loaded to 95 % of max_utilisation or more is at the cap
LIMIT_TIGHT_FRACTION = 0.98  # a power cap or budget used to 98 % or more is reported as binding


def fleet_cells(e: FleetEntry) -> list[str]:
    """A fleet entry's cells as the screen and the report show them: device, owned used, owned idle, bought,
    rented, nodes, power kW (utilisation follows, formatted by each)."""
    return [
        e.device,
        str(e.owned_used),
        str(e.owned_idle),
        str(e.bought),
        str(e.rented),
        str(e.nodes),
        f"{e.power_kw:,.1f}",
    ]


def device_utilisation(plan: Plan) -> dict[str, float]:
    """Per device type: load-weighted share of the devices in use that the pools keep busy."""
    busy: dict[str, float] = {}
    for a in plan.pools:
        busy[a.device] = busy.get(a.device, 0.0) + a.devices * a.utilisation
    out = {}
    for e in plan.fleet:
        in_use = e.owned_used + e.bought + e.rented
        if in_use:
            out[e.device] = busy.get(e.device, 0.0) / in_use
    return out


@dataclass(frozen=True)
class Offer:
    """How the scenario offers one device type: counts, unit prices and what one device costs per year per source."""

    device: str
    devices_per_node: int
    owned: int = 0
    buyable: bool = False
    buy_max: int | None = None  # None: no availability limit
    capex_usd: float | None = None  # per device
    rentable: bool = False
    rent_max: int | None = None  # None: no availability limit
    usd_per_hour: float | None = None
    owned_year: DeviceYearCost | None = None
    bought_year: DeviceYearCost | None = None
    rented_year: DeviceYearCost | None = None


def economics(resolved: ResolvedScenario) -> EconomicsInputs:
    e = resolved.scenario.economics
    return EconomicsInputs(
        e.energy_usd_per_kwh, e.pue, e.hosting_usd_per_kw_month, e.amortisation_years, e.avg_load_fraction
    )


def offers(resolved: ResolvedScenario) -> dict[str, Offer]:
    """Every offered device type, in scenario order (owned, purchasable, rentable)."""
    econ = economics(resolved)
    hw = resolved.scenario.hardware
    cat = resolved.catalog
    fields: dict[str, dict] = {}

    def entry(dev_id: str) -> dict:
        return fields.setdefault(dev_id, {"device": dev_id, "devices_per_node": cat.device(dev_id).devices_per_node})

    for o in hw.owned:
        dev = cat.device(o.device)
        entry(o.device).update(
            owned=o.count,
            owned_year=owned_device_year(dev.tdp_w, econ, o.sunk, dev.capex_usd, o.residual_value_usd),
        )
    for p in hw.purchasable:
        price = purchase_price_usd(p, cat)
        entry(p.device).update(
            buyable=True,
            buy_max=p.max_count,
            capex_usd=price,
            bought_year=bought_device_year(price or 0.0, cat.device(p.device).tdp_w, econ),
        )
    for q in hw.rentable:
        hourly = rental_usd_per_hour(q, cat)
        entry(q.device).update(
            rentable=True, rent_max=q.max_count, usd_per_hour=hourly, rented_year=rented_device_year(hourly or 0.0)
        )
    return {d: Offer(**f) for d, f in fields.items()}


def device_costs(resolved: ResolvedScenario, plan: Plan) -> dict[str, float]:
    """Annual cost per device type in the fleet (owned used + bought + rented, each at its source's price); they add
    up to the plan's TCO."""
    offered = offers(resolved)
    out: dict[str, float] = {}
    for e in plan.fleet:
        o = offered[e.device]
        out[e.device] = (
            e.owned_used * (o.owned_year.total_usd if o.owned_year else 0.0)
            + e.bought * (o.bought_year.total_usd if o.bought_year else 0.0)
            + e.rented * (o.rented_year.total_usd if o.rented_year else 0.0)
        )
    return out


def pool_costs(resolved: ResolvedScenario, plan: Plan) -> dict[str, float]:
    """Annual cost per pool id: each device type's cost shared over the pool configs on it by devices (devices
    bought only to fill a node are shared the same way)."""
    per_device = device_costs(resolved, plan)
    devices_on: dict[str, int] = {}
    for a in plan.pools:
        devices_on[a.device] = devices_on.get(a.device, 0) + a.devices
    out: dict[str, float] = {}
    for a in plan.pools:
        share = per_device.get(a.device, 0.0) * a.devices / devices_on[a.device]
        out[a.pool] = out.get(a.pool, 0.0) + share
    return out


@dataclass(frozen=True)
class WorkflowCost:
    workflow: str
    usd_per_year: float
    usd_per_request: float
    share: float  # of the plan's TCO


def _step_work(step: Step, rate_rps: float, pool: str, colocated_s: tuple[float, float] | None) -> float:
    """The work one step puts on one pool per second, in the pool's own unit (colocated: busy seconds)."""
    execs = rate_rps * step.repeat
    if isinstance(step, LlmStep):
        call = llm_call_shape(
            step.prompt_tokens,
            step.cached_prefix_tokens,
            step.output_tokens,
            step.repeat,
            step.prompt_growth_tokens_per_repeat,
        )
        if pool.endswith(":prefill"):
            return execs * call.uncached_tokens
        if pool.endswith(":decode") or colocated_s is None:
            return execs * step.output_tokens
        per_prefill_token_s, per_output_token_s = colocated_s
        return execs * (call.uncached_tokens * per_prefill_token_s + step.output_tokens * per_output_token_s)
    if isinstance(step, EmbedStep | ConvertStep):
        return execs * step.items
    if isinstance(step, RetrievalStep):
        return execs * step.queries
    if isinstance(step, ToolStep):
        return execs * step.cpu_s
    return execs


def _colocated_seconds(resolved: ResolvedScenario, a: PoolAssignment) -> tuple[float, float]:
    """Busy seconds per uncached prompt token and per output token on a co-located config (prefill at batch 1,
    decode at the config's batch, both at the model's demand-weighted mean call, plain roofline): how the pool's
    busy time is shared between the steps it serves."""
    assert a.model is not None
    model = resolved.catalog.model(a.model)
    device = resolved.catalog.device(a.device)
    steps = [
        (wf.arrival_rate_rps * s.repeat, s)
        for wf in resolved.workflows
        for s in wf.steps
        if isinstance(s, LlmStep) and s.model == a.model
    ]
    calls = [
        llm_call_shape(
            s.prompt_tokens, s.cached_prefix_tokens, s.output_tokens, s.repeat, s.prompt_growth_tokens_per_repeat
        )
        for _, s in steps
    ]
    mean = llm_pool_shape([r for r, _ in steps], calls, [float(s.output_tokens) for _, s in steps]).mean_call
    kv = a.kv_dtype or model.kv_dtype
    prefill = analyze_llm(
        model, device, a.tensor_parallel, "prefill", 1, mean.prompt_tokens, 0, a.weight_dtype, mean.cached_tokens, kv
    )
    decode = analyze_llm(
        model, device, a.tensor_parallel, "decode", a.batch, 0, mean.decode_context_tokens, a.weight_dtype, 0, kv
    )
    per_prefill_token = prefill["totals"]["latency_s"] / max(mean.uncached_tokens, 1e-9)
    return per_prefill_token, decode["totals"]["latency_s"] / a.batch


def workflow_costs(resolved: ResolvedScenario, plan: Plan) -> list[WorkflowCost]:
    """Annual cost and USD per request per workflow: each pool's cost shared over the steps it serves by the work
    each puts on it (prefill: uncached prompt tokens; decode: output tokens; co-located: busy seconds at the pool's
    config; encoders: items; retrieval: queries; tools: CPU-seconds). The workflows add up to the plan's TCO."""
    costs = pool_costs(resolved, plan)
    by_pool = {a.pool: a for a in plan.pools}
    colocated: dict[str, tuple[float, float]] = {}
    for p, a in by_pool.items():
        if a.phase.value == "colocated" and a.model:
            # a plan whose config the catalog no longer runs: shared by output tokens instead
            with contextlib.suppress(InputError):
                colocated[p] = _colocated_seconds(resolved, a)
    work: dict[str, dict[str, float]] = {}  # pool → workflow → work
    wf_of: dict[str, Workflow] = {wf.id: wf for wf in resolved.workflows}
    for st in plan.steps:
        wf = wf_of.get(st.workflow)
        if wf is None:
            continue
        step = wf.step(st.step)
        for pool in st.pool.split("+"):
            w = _step_work(step, wf.arrival_rate_rps, pool, colocated.get(pool))
            work.setdefault(pool, {})
            work[pool][wf.id] = work[pool].get(wf.id, 0.0) + w
    per_wf = {wf.id: 0.0 for wf in resolved.workflows}
    rates = {wf.id: wf.arrival_rate_rps for wf in resolved.workflows}
    for pool, usd in costs.items():
        shares = work.get(pool) or {}
        total = sum(shares.values())
        if total <= 0:  # a pool no step names (never in a solved plan): share it by arrival rate
            shares, total = rates, sum(rates.values())
        for wf_id, w in shares.items():
            per_wf[wf_id] += usd * w / total
    unassigned = plan.tco.total_usd_per_year - sum(per_wf.values())  # devices with no pool at all (none in practice)
    grand = sum(rates.values())
    out = []
    for wf_id, usd in per_wf.items():
        usd += unassigned * rates[wf_id] / grand
        share = usd / plan.tco.total_usd_per_year if plan.tco.total_usd_per_year else 0.0
        out.append(WorkflowCost(wf_id, usd, usd / (rates[wf_id] * SECONDS_PER_YEAR), share))
    return out


@dataclass(frozen=True)
class PoolSizing:
    """Whether a pool's replica count is set by its capacity at the utilisation cap or by something else."""

    pool: str
    utilisation: float
    at_cap: bool  # one replica fewer would load the pool above max_utilisation, or it is within 5 % of the cap
    replicas: int


def pool_sizing(resolved: ResolvedScenario, plan: Plan) -> list[PoolSizing]:
    """Per pool id: at the utilisation cap if removing its smallest replica would push the load it carries above
    max_utilisation × the remaining capacity, or if its load is within 5 % of the cap (so capacity, not latency or
    the one-replica minimum, sized it)."""
    cap = resolved.scenario.limits.max_utilisation
    grouped: dict[str, list[PoolAssignment]] = {}
    for a in plan.pools:
        grouped.setdefault(a.pool, []).append(a)
    out = []
    for pool, parts in sorted(grouped.items()):
        capacity = sum(a.throughput for a in parts)
        load = sum(a.demand for a in parts)
        smallest = min(a.throughput / a.replicas for a in parts)
        replicas = sum(a.replicas for a in parts)
        utilisation = load / capacity if capacity else 0.0
        fewer_breaks = replicas >= 2 and load > cap * (capacity - smallest) * (1 + 1e-9)
        at_cap = fewer_breaks or utilisation >= NEAR_CAP_FRACTION * cap
        out.append(PoolSizing(pool, utilisation, at_cap, replicas))
    return out


@dataclass
class Bindings:
    """What holds the plan where it is, as sentences grouped by kind (each list may be empty)."""

    sla: list[str] = field(default_factory=list)
    utilisation: list[str] = field(default_factory=list)
    availability: list[str] = field(default_factory=list)
    node_size: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    not_bought: list[str] = field(default_factory=list)

    def items(self) -> list[tuple[str, list[str]]]:
        return [
            ("SLA", self.sla),
            ("utilisation cap", self.utilisation),
            ("availability", self.availability),
            ("node size", self.node_size),
            ("limits", self.limits),
            ("not chosen", self.not_bought),
        ]


def _sla_lines(plan: Plan) -> list[str]:
    out = []
    for w in plan.workflows:
        tight = w.slack_s <= SLA_TIGHT_FRACTION * w.sla_s
        out.append(
            f"{w.workflow}: slack {w.slack_s:,.2f} s of {w.sla_s:g} s ({w.slack_s / w.sla_s:.1%})"
            + (" — binds: a slower or cheaper placement would break it" if tight else " — not binding")
        )
    return out


def _availability_lines(plan: Plan, offered: dict[str, Offer]) -> list[str]:
    out = []
    for e in plan.fleet:
        o = offered[e.device]
        if o.owned and e.owned_idle == 0:
            out.append(f"{e.device}: all {o.owned} owned in use (more would be used if owned)")
        if o.buyable and o.buy_max is not None:
            most = o.buy_max // o.devices_per_node * o.devices_per_node
            if e.bought and e.bought >= most:
                out.append(f"{e.device}: purchase limit reached ({e.bought} of max_count {o.buy_max})")
        if o.rentable and o.rent_max is not None and e.rented and e.rented >= o.rent_max:
            out.append(f"{e.device}: rental limit reached ({e.rented} of max_count {o.rent_max})")
    return out


def _node_lines(plan: Plan, offered: dict[str, Offer]) -> list[str]:
    in_pools: dict[str, int] = {}
    for a in plan.pools:
        in_pools[a.device] = in_pools.get(a.device, 0) + a.devices
    out = []
    for e in plan.fleet:
        spare = e.owned_used + e.bought + e.rented - in_pools.get(e.device, 0)
        if e.bought and spare > 0:
            n = offered[e.device].devices_per_node
            out.append(f"{e.device}: {spare} of {e.bought} bought serve no pool — purchases come in whole nodes of {n}")
    return out


def _limit_lines(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    lim = resolved.scenario.limits
    power = sum(e.power_kw for e in plan.fleet)
    checks = [
        ("power cap", power, lim.power_cap_kw, "kW"),
        ("annual budget", plan.tco.total_usd_per_year, lim.annual_budget_usd, "USD/year"),
        ("capex budget", plan.tco.purchases_usd, lim.capex_budget_usd, "USD"),
    ]
    out = []
    for name, used, cap, unit in checks:
        if cap is None:
            continue
        tight = used >= LIMIT_TIGHT_FRACTION * cap
        out.append(
            f"{name}: {used:,.1f} of {cap:,.1f} {unit} ({used / cap:.0%})" + (" — binds" if tight else " — not binding")
        )
    return out


def _not_bought_lines(plan: Plan, offered: dict[str, Offer]) -> list[str]:
    """Offered devices the plan does not use (or does not buy/rent), with the facts the plan and scenario give:
    the price per device-year, the smallest purchase, and the single-accelerator baseline when one was solved.
    Why the solver preferred the mix is not re-derived (that would take a re-solve)."""
    in_fleet = {e.device: e for e in plan.fleet}
    base = {b.device: b for b in plan.baselines}
    out = []
    for dev, o in offered.items():
        e = in_fleet.get(dev)
        if not (o.buyable or o.rentable) or (e is not None and (e.bought or e.rented)):
            continue
        facts = []
        if o.buyable and o.bought_year is not None:
            n = o.devices_per_node
            if o.buy_max is not None and o.buy_max < n:
                facts.append(f"can never be bought: max_count {o.buy_max} < one node of {n}")
            else:
                per_year = o.bought_year.total_usd
                facts.append(
                    f"buying costs {per_year:,.0f} USD/year per device ({o.capex_usd or 0:,.0f} USD up front), "
                    f"sold in nodes of {n}: the smallest purchase costs {per_year * n:,.0f} USD/year"
                )
        if o.rentable and o.rented_year is not None:
            facts.append(f"renting costs {o.rented_year.total_usd:,.0f} USD/year per device")
        b = base.get(dev)
        if b is not None:
            if b.total_usd_per_year is None:
                facts.append(f"a fleet of {dev} alone is {b.status}")
            else:
                extra = b.total_usd_per_year / plan.tco.total_usd_per_year - 1 if plan.tco.total_usd_per_year else 0
                facts.append(f"a fleet of {dev} alone costs {b.total_usd_per_year:,.0f} USD/year ({extra:+.1%})")
        out.append(f"{dev}: not in the plan; " + "; ".join(facts))
    return out


def bindings(resolved: ResolvedScenario, plan: Plan) -> Bindings:
    """What binds the plan, from the plan and its scenario (no re-solve)."""
    offered = offers(resolved)
    cap = resolved.scenario.limits.max_utilisation
    sizing = pool_sizing(resolved, plan)
    at_cap = [f"{s.pool} ({s.utilisation:.0%})" for s in sizing if s.at_cap]
    loose = [f"{s.pool} ({s.utilisation:.0%})" for s in sizing if not s.at_cap]
    util = []
    if at_cap:
        util.append(f"sized by load, one replica fewer would exceed the {cap:.0%} cap: " + ", ".join(at_cap))
    if loose:
        util.append("below the cap, sized by latency or the one-replica minimum: " + ", ".join(loose))
    return Bindings(
        sla=_sla_lines(plan),
        utilisation=util,
        availability=_availability_lines(plan, offered),
        node_size=_node_lines(plan, offered),
        limits=_limit_lines(resolved, plan),
        not_bought=_not_bought_lines(plan, offered),
    )


def assumption_line(resolved: ResolvedScenario, plan: Plan) -> str:
    """The modelling assumptions that change how to read every latency in the plan, in one sentence."""
    cap = resolved.scenario.limits.max_utilisation
    pct = sorted({p for wf in resolved.workflows if (p := wf.sla.percentile) is not None})
    plain = [wf.id for wf in resolved.workflows if wf.sla.percentile is None]
    if not pct:
        text = (
            "Latencies are modelled service times (no queueing, not percentiles) held to each SLA as a critical path; "
            f"pools run at ≤ {cap:.0%} load as the stand-in for queueing headroom."
        )
    else:
        pct_text = ", ".join(f"p{p:g}" for p in pct)
        text = (
            f"Percentile SLAs ({pct_text}) add each pool's modelled queueing delay (M/G/c) at that percentile"
            + (
                f"; {', '.join(plain)} hold critical paths of service times with pools at ≤ {cap:.0%} load."
                if plain
                else "."
            )
        )
    if plan.engine:
        text += f" LLM menus priced with the {plan.engine} engine's terms."
    else:
        text += " LLM menus on the plain roofline (no serving engine terms)."
    if plan.robust is not None:
        text += " Robust: every SLA held at the slow end of each device's serving error band."
    return text


@dataclass(frozen=True)
class Purchase:
    device: str
    count: int
    unit_usd: float
    total_usd: float
    nodes: int


def purchases(resolved: ResolvedScenario, plan: Plan) -> list[Purchase]:
    """What to buy up front: count, unit price, total (the totals add up to the plan's purchases_usd)."""
    offered = offers(resolved)
    out = []
    for e in plan.fleet:
        if e.bought:
            unit = offered[e.device].capex_usd or 0.0
            n = offered[e.device].devices_per_node
            out.append(Purchase(e.device, e.bought, unit, unit * e.bought, -(-e.bought // n)))
    return out


def route_of(pools: str) -> str:
    """How an LLM step is served, read off its pools: co-located, disaggregated, or split between the two."""
    ids = pools.split("+")
    colocated = any(p.endswith(":colocated") for p in ids)
    disagg = any(p.endswith((":prefill", ":decode")) for p in ids)
    if colocated and disagg:
        return "split"
    if colocated:
        return "co-located"
    if disagg:
        return "disaggregated"
    return ""


def idle_owned_line(resolved: ResolvedScenario, plan: Plan) -> str | None:
    """Owned device types the plan does not use at all (the fleet lists only types in use): the "keep or sell"
    answer a buyer needs, with the resale value the scenario states for them."""
    in_use = {e.device for e in plan.fleet}
    idle = [o for o in resolved.scenario.hardware.owned if o.device not in in_use]
    if not idle:
        return None
    parts = []
    for o in idle:
        resale = o.residual_value_usd * o.count
        value = f" (resale {o.residual_value_usd:,.0f} each, {resale:,.0f} USD)" if resale else ""
        parts.append(f"{o.count} {o.device}{value}")
    return "Owned and not used at all (candidates to sell or retire): " + "; ".join(parts) + "."
