"""Turn a solver solution into a Plan: fleet, pools, step timings, critical paths, TCO, solver block.

Latencies and costs are recomputed from the chosen configs with exact (unrounded) numbers, so a CP-SAT plan is
reported at its true cost and timing, not at its integer-scaled one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplace.costmodels.tco import SECONDS_PER_YEAR, DeviceYearCost, facility_kw
from hetplace.optimizer.backends import SolveResult
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.pools import Config, Pool, StepRef, exact_latency_s
from hetplace.problems.dag import DagTimes, longest_paths
from hetplace.problems.plan import (
    Baseline,
    FleetEntry,
    Plan,
    PoolAssignment,
    RobustReport,
    SolverReport,
    StepTiming,
    TcoBreakdown,
    WorkflowTiming,
)
from hetplace.problems.schema import LlmStep

ASSUMPTIONS = [
    "Workflows without an SLA percentile: pools are sized so load stays below max_utilisation; this headroom stands "
    "in for queueing delay (latencies are service times, not percentiles under load).",
    "Workflows with an SLA percentile: each pool serving them runs one config as one M/G/c queue (Poisson arrivals, "
    "Erlang C with the Allen–Cunneen variability correction); each step adds its pool's waiting time at the "
    "workflow's percentile for the replica count chosen, and the per-step percentiles add up along the critical "
    "path (conservative: percentiles of a sum are at most the sum of the percentiles for co-monotone delays).",
    "An LLM model is served disaggregated (prefill and decode pools; every call pays a KV transfer over the decode "
    "device's NIC, a conservative bound) or co-located (one pool runs both phases; prefill at batch 1 is scheduled "
    "first and stretches decode by 1 / (1 − u × prefill busy share), u the replica's load level, or its actual load "
    "in a pool serving percentile SLAs), or split between the two.",
    "Owned devices the plan does not use are retired and cost nothing; owned devices in use cost energy, hosting "
    "and their annualised residual value.",
    "Per-step latency is the slowest config the pool uses, at the step's own prompt and context lengths.",
]


@dataclass(frozen=True)
class UsedConfig:
    """A config the solution uses, with its pool and replica count."""

    pool: Pool
    config: Config
    replicas: int


@dataclass(frozen=True)
class StepLatency:
    """One step's timing in a plan."""

    latency_s: float  # all repeats of the step, KV transfer included
    transfer_s: float  # the KV transfer part of latency_s
    device: str  # device of the step's slowest pool ("" when no pool serves it)
    pools: str  # ids of the pools serving it, joined by "+"


@dataclass(frozen=True)
class _PoolStepTime:
    latency_s: float  # one execution on the pool's slowest config in use, transfer included
    transfer_s: float
    device: str


def _used(f: Formulation, values: list[float]) -> dict[str, UsedConfig]:
    """Configs with replicas > 0, by config key."""
    out = {}
    for pool in f.pools:
        for c in pool.configs:
            r = round(values[f.config_vars[c.key].replicas])
            if r > 0:
                out[c.key] = UsedConfig(pool, c, r)
    return out


def step_latencies(f: Formulation, used: dict[str, UsedConfig], nominal: bool = False) -> dict[StepRef, StepLatency]:
    """Per step: its latency over all repeats, the transfer part, the device of its slowest pool and its pools.
    `nominal=True`: robust configs at their nominal latency instead of the slow end (the same for others)."""
    per_pool: dict[tuple[str, StepRef], _PoolStepTime] = {}
    route_of: dict[str, str] = {}
    for u in used.values():
        pool, c = u.pool, u.config
        route_of[pool.id] = pool.route
        for ref in pool.steps:
            lat = exact_latency_s(pool, c, ref, u.replicas, nominal)
            now = per_pool.get((pool.id, ref))
            if now is None or lat > now.latency_s:
                per_pool[(pool.id, ref)] = _PoolStepTime(lat, c.extra_s.get(ref, 0.0), c.device)
    out: dict[StepRef, StepLatency] = {}
    for wf in f.workflows:
        for step in wf.steps:
            ref = StepRef(wf.id, step.id)
            routes: dict[str, list[tuple[str, _PoolStepTime]]] = {}
            for (p, r), v in per_pool.items():
                if r == ref:
                    routes.setdefault(route_of[p], []).append((p, v))
            # With traffic split between routes, the slower route is the step's duration.
            parts = max(routes.values(), key=lambda ps: sum(v.latency_s for _, v in ps), default=[])
            lat = sum(v.latency_s for _, v in parts) * step.repeat
            transfer = sum(v.transfer_s for _, v in parts) * step.repeat
            device = max((v for _, v in parts), key=lambda v: v.latency_s).device if parts else ""
            out[ref] = StepLatency(lat, transfer, device, "+".join(sorted(p for ps in routes.values() for p, _ in ps)))
    return out


def critical_paths(f: Formulation, duration_s: dict[StepRef, float]) -> dict[str, DagTimes]:
    """Per workflow: earliest starts, tails and the critical path with each step taking `duration_s` (all of its
    repeats)."""
    return {wf.id: longest_paths(wf, {s.id: duration_s[StepRef(wf.id, s.id)] for s in wf.steps}) for wf in f.workflows}


def solver_report(res: SolveResult) -> SolverReport:
    return SolverReport(
        backend=res.backend,
        status=res.status,
        termination=res.termination,
        objective=res.objective,
        best_bound=res.best_bound,
        gap=res.gap,
        wall_time_s=res.wall_time_s,
        time_limit_s=res.time_limit_s,
        threads=res.threads,
        first_solution_s=res.first_solution_s,
    )


def assemble_plan(f: Formulation, res: SolveResult, scenario_id: str, baselines: list[Baseline] | None = None) -> Plan:
    values = res.values or []
    used = _used(f, values)
    fleet, cost, purchases_usd = fleet_entries(f, values)
    steps, workflows = timings(f, used)
    return Plan(
        scenario=scenario_id,
        fleet=fleet,
        pools=pool_assignments(f, used, values),
        steps=steps,
        workflows=workflows,
        tco=tco_breakdown(f, cost, purchases_usd),
        mean_critical_path_s=sum(w.arrival_rate_rps * w.critical_path_s for w in workflows)
        / sum(w.arrival_rate_rps for w in workflows),
        solver=solver_report(res),
        baselines=baselines or [],
        assumptions=ASSUMPTIONS,
        engine=f.engine,
        robust=RobustReport(error_band=f.error_band) if f.error_band is not None else None,
    )


def fleet_entries(f: Formulation, values: list[float]) -> tuple[list[FleetEntry], DeviceYearCost, float]:
    """The devices in use per type and where they come from, their yearly cost in parts, and the up-front
    purchases (USD)."""
    fleet: list[FleetEntry] = []
    capex_y, energy_y, hosting_y, rental_y, purchases = 0.0, 0.0, 0.0, 0.0, 0.0
    for dev_id, fv in f.fleet_vars.items():
        off = f.offers[dev_id]
        dpn = off.device.devices_per_node
        own = round(values[fv.own_devices]) if fv.own_devices is not None else 0
        bought = round(values[fv.buy_nodes]) * dpn if fv.buy_nodes is not None else 0
        rented = round(values[fv.rent_devices]) if fv.rent_devices is not None else 0
        if own + bought + rented == 0:
            continue
        kw = facility_kw(off.device.tdp_w, f.econ)
        mine, new, hired = off.owned_year, off.bought_year, off.rented_year
        capex_y += own * mine.capex_usd + bought * new.capex_usd + rented * hired.capex_usd
        energy_y += own * mine.energy_usd + bought * new.energy_usd + rented * hired.energy_usd
        hosting_y += own * mine.hosting_usd + bought * new.hosting_usd + rented * hired.hosting_usd
        rental_y += own * mine.rental_usd + bought * new.rental_usd + rented * hired.rental_usd
        purchases += bought * off.capex_usd
        fleet.append(
            FleetEntry(
                device=dev_id,
                owned_used=own,
                owned_idle=off.owned - own,
                bought=bought,
                rented=rented,
                nodes=-(-(own + bought + rented) // dpn),
                power_kw=(own + bought) * kw,
            )
        )
    return fleet, DeviceYearCost(capex_y, energy_y, hosting_y, rental_y), purchases


def pool_assignments(f: Formulation, used: dict[str, UsedConfig], values: list[float]) -> list[PoolAssignment]:
    """One entry per config in use, with its share of the demand its route carries."""
    pools = []
    for u in used.values():
        pool, c, r = u.pool, u.config, u.replicas
        total = sum(o.config.throughput * o.replicas for o in used.values() if o.pool.id == pool.id)
        served = f.served_demand(pool, values)
        pools.append(
            PoolAssignment(
                pool=pool.id,
                phase=pool.phase,
                model=pool.model,
                workflow=pool.workflow,
                step=pool.step,
                device=c.device,
                weight_dtype=c.dtype,
                kv_dtype=c.kv_dtype,
                tensor_parallel=c.tp,
                batch=c.batch,
                replicas=r,
                devices=r * c.tp,
                throughput=c.throughput * r,
                throughput_unit=pool.unit,
                demand=served * c.throughput * r / total,
                utilisation=min(1.0, served / total),
                load_limit=c.load_limit if pool.phase == "colocated" and not pool.queueing else None,
            )
        )
    return pools


def timings(f: Formulation, used: dict[str, UsedConfig]) -> tuple[list[StepTiming], list[WorkflowTiming]]:
    """Every step's latency and start on the critical-path schedule; every workflow's critical path and slack."""
    workflows_by_id = {wf.id: wf for wf in f.workflows}
    lat = step_latencies(f, used)
    paths = critical_paths(f, {ref: v.latency_s for ref, v in lat.items()})
    robust = f.error_band is not None
    low = step_latencies(f, used, nominal=True) if robust else lat
    low_paths = critical_paths(f, {ref: v.latency_s for ref, v in low.items()}) if robust else paths
    steps = [
        StepTiming(
            workflow=ref.workflow,
            step=ref.step,
            pool=v.pools,
            device=v.device or "-",
            repeat=workflows_by_id[ref.workflow].step(ref.step).repeat,
            latency_s=v.latency_s,
            start_s=paths[ref.workflow].start_s[ref.step],
            transfer_s=v.transfer_s,
            latency_nominal_s=low[ref].latency_s if robust else None,
        )
        for ref, v in lat.items()
    ]
    workflows = [
        WorkflowTiming(
            workflow=wf.id,
            arrival_rate_rps=wf.arrival_rate_rps,
            critical_path_s=paths[wf.id].critical_path_s,
            sla_s=wf.sla.e2e_latency_s,
            slack_s=wf.sla.e2e_latency_s - paths[wf.id].critical_path_s,
            critical_steps=paths[wf.id].critical_steps,
            critical_path_nominal_s=low_paths[wf.id].critical_path_s if robust else None,
        )
        for wf in f.workflows
    ]
    return steps, workflows


def tco_breakdown(f: Formulation, cost: DeviceYearCost, purchases_usd: float) -> TcoBreakdown:
    """The fleet's yearly cost in parts, per request and per million LLM tokens."""
    total_y = cost.capex_usd + cost.energy_usd + cost.hosting_usd + cost.rental_usd
    requests = sum(wf.arrival_rate_rps for wf in f.workflows) * SECONDS_PER_YEAR
    tokens = (
        sum(
            wf.arrival_rate_rps * s.repeat * (s.prompt_tokens + s.output_tokens)
            for wf in f.workflows
            for s in wf.steps
            if isinstance(s, LlmStep)
        )
        * SECONDS_PER_YEAR
    )
    return TcoBreakdown(
        capex_usd_per_year=cost.capex_usd,
        energy_usd_per_year=cost.energy_usd,
        hosting_usd_per_year=cost.hosting_usd,
        rental_usd_per_year=cost.rental_usd,
        total_usd_per_year=total_y,
        usd_per_request=total_y / requests if requests else 0.0,
        usd_per_million_tokens=total_y / tokens * 1e6 if tokens else 0.0,
        purchases_usd=purchases_usd,
    )
