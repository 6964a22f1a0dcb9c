"""Turn a solver solution into a Plan: fleet, pools, step timings, critical paths, TCO, solver block.

Latencies and costs are recomputed from the chosen configs with exact (unrounded) numbers, so a CP-SAT plan is
reported at its true cost and timing, not at its integer-scaled one.
"""

from __future__ import annotations

from hetplace.costmodels.tco import SECONDS_PER_YEAR, energy_usd_per_year, hosting_usd_per_year
from hetplace.optimizer.backends import SolveResult
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.pools import StepRef
from hetplace.problems.plan import (
    Baseline,
    FleetEntry,
    Plan,
    PoolAssignment,
    SolverReport,
    StepTiming,
    TcoBreakdown,
    WorkflowTiming,
)
from hetplace.problems.schema import LlmStep

ASSUMPTIONS = [
    "Pools are sized so load stays below max_utilisation; this headroom stands in for queueing delay "
    "(latencies are service times, not p99 under load).",
    "An LLM model is served disaggregated (prefill and decode pools; every call pays a KV transfer over the decode "
    "device's NIC, a conservative bound) or co-located (one pool runs both phases; prefill at batch 1 is scheduled "
    "first and stretches decode by 1 / (1 − max_utilisation × prefill busy share)), or split between the two.",
    "Owned devices the plan does not use are retired and cost nothing; owned devices in use cost energy, hosting "
    "and their annualised residual value.",
    "Per-step latency is the slowest config the pool uses, at the step's own prompt and context lengths.",
]


def _used(f: Formulation, values: list[float]) -> dict[str, tuple]:
    """config key -> (pool, config, replicas) for configs with replicas > 0."""
    out = {}
    for pool in f.pools:
        for c in pool.configs:
            r = round(values[f.config_vars[c.key][0]])
            if r > 0:
                out[c.key] = (pool, c, r)
    return out


def step_latencies(f: Formulation, used: dict[str, tuple]) -> dict[StepRef, tuple[float, float, str, str]]:
    """Per step: (latency of all repeats, transfer included, device of its slowest pool, pool ids)."""
    per_pool: dict[tuple[str, StepRef], tuple[float, float, str]] = {}
    route_of: dict[str, str] = {}
    for pool, c, _r in used.values():
        route_of[pool.id] = pool.route
        for ref in pool.steps:
            lat = c.latency_s[ref] + c.extra_s.get(ref, 0.0)
            if lat > per_pool.get((pool.id, ref), (-1.0, 0.0, ""))[0]:
                per_pool[(pool.id, ref)] = (lat, c.extra_s.get(ref, 0.0), c.device)
    out: dict[StepRef, tuple[float, float, str, str]] = {}
    for wf in f.workflows:
        for step in wf.steps:
            ref = StepRef(wf.id, step.id)
            routes: dict[str, list[tuple[str, tuple[float, float, str]]]] = {}
            for (p, r), v in per_pool.items():
                if r == ref:
                    routes.setdefault(route_of[p], []).append((p, v))
            # With traffic split between routes, the slower route is the step's duration.
            parts = max(routes.values(), key=lambda ps: sum(v[0] for _, v in ps), default=[])
            lat = sum(v[0] for _, v in parts) * step.repeat
            transfer = sum(v[1] for _, v in parts) * step.repeat
            device = max(parts, key=lambda pv: pv[1][0])[1][2] if parts else ""
            out[ref] = (lat, transfer, device, "+".join(sorted(p for ps in routes.values() for p, _ in ps)))
    return out


def critical_paths(f: Formulation, lat: dict[StepRef, tuple]) -> tuple[dict[StepRef, float], dict[str, tuple]]:
    """Earliest start of every step and (critical path length, critical steps) per workflow."""
    starts: dict[StepRef, float] = {}
    result = {}
    for wf in f.workflows:
        finish: dict[str, float] = {}
        best_pred: dict[str, str | None] = {}
        remaining = list(wf.steps)
        while remaining:  # steps are few; repeated passes give a topological order
            for step in list(remaining):
                if all(p in finish for p in step.after):
                    start = max((finish[p] for p in step.after), default=0.0)
                    best_pred[step.id] = max(step.after, key=lambda p: finish[p]) if step.after else None
                    starts[StepRef(wf.id, step.id)] = start
                    finish[step.id] = start + lat[StepRef(wf.id, step.id)][0]
                    remaining.remove(step)
        last = max(finish, key=finish.get)
        chain, node = [], last
        while node is not None:
            chain.append(node)
            node = best_pred[node]
        result[wf.id] = (finish[last], list(reversed(chain)))
    return starts, result


def solver_report(res: SolveResult) -> SolverReport:
    return SolverReport(
        backend=res.backend,
        status=res.status,
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
    fleet, capex_y, energy_y, hosting_y, rental_y, purchases = [], 0.0, 0.0, 0.0, 0.0, 0.0
    for dev_id, (own_i, nodes_i, rent_i) in f.fleet_vars.items():
        off = f.offers[dev_id]
        dpn = off.device.devices_per_node
        own = round(values[own_i]) if own_i is not None else 0
        bought = round(values[nodes_i]) * dpn if nodes_i is not None else 0
        rented = round(values[rent_i]) if rent_i is not None else 0
        if own + bought + rented == 0:
            continue
        kw = off.device.tdp_w / 1000.0 * f.econ.avg_load_fraction * f.econ.pue
        energy_per = energy_usd_per_year(off.device.tdp_w, f.econ)
        hosting_per = hosting_usd_per_year(off.device.tdp_w, f.econ)
        on_site = own + bought
        energy_y += on_site * energy_per
        hosting_y += on_site * hosting_per
        capex_y += own * (off.owned_cost - energy_per - hosting_per) + bought * (
            off.buy_cost - energy_per - hosting_per
        )
        rental_y += rented * off.rent_cost
        purchases += bought * off.capex_usd
        fleet.append(
            FleetEntry(
                device=dev_id,
                owned_used=own,
                owned_idle=off.owned - own,
                bought=bought,
                rented=rented,
                nodes=-(-(own + bought + rented) // dpn),
                power_kw=on_site * kw,
            )
        )
    pools = []
    for pool, c, r in used.values():
        total = sum(cc.throughput * rr for p, cc, rr in used.values() if p.id == pool.id)
        served = f.served_demand(pool, values)
        pools.append(
            PoolAssignment(
                pool=pool.id,
                phase=pool.phase,
                model=pool.model,
                device=c.device,
                weight_dtype=c.dtype,
                tensor_parallel=c.tp,
                batch=c.batch,
                replicas=r,
                devices=r * c.tp,
                throughput=c.throughput * r,
                throughput_unit=pool.unit,
                demand=served * c.throughput * r / total,
                utilisation=min(1.0, served / total),
            )
        )
    workflows_by_id = {wf.id: wf for wf in f.workflows}
    lat = step_latencies(f, used)
    starts, paths = critical_paths(f, lat)
    steps = [
        StepTiming(
            workflow=ref.workflow,
            step=ref.step,
            pool=v[3],
            device=v[2] or "-",
            repeat=workflows_by_id[ref.workflow].step(ref.step).repeat,
            latency_s=v[0],
            start_s=starts[ref],
            transfer_s=v[1],
        )
        for ref, v in lat.items()
    ]
    workflows = [
        WorkflowTiming(
            workflow=wf.id,
            arrival_rate_rps=wf.arrival_rate_rps,
            critical_path_s=paths[wf.id][0],
            sla_s=wf.sla.e2e_latency_s,
            slack_s=wf.sla.e2e_latency_s - paths[wf.id][0],
            critical_steps=paths[wf.id][1],
        )
        for wf in f.workflows
    ]
    total_y = capex_y + energy_y + hosting_y + rental_y
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
    tco = TcoBreakdown(
        capex_usd_per_year=capex_y,
        energy_usd_per_year=energy_y,
        hosting_usd_per_year=hosting_y,
        rental_usd_per_year=rental_y,
        total_usd_per_year=total_y,
        usd_per_request=total_y / requests if requests else 0.0,
        usd_per_million_tokens=total_y / tokens * 1e6 if tokens else 0.0,
        purchases_usd=purchases,
    )
    return Plan(
        scenario=scenario_id,
        fleet=fleet,
        pools=pools,
        steps=steps,
        workflows=workflows,
        tco=tco,
        mean_critical_path_s=sum(w.arrival_rate_rps * w.critical_path_s for w in workflows)
        / sum(w.arrival_rate_rps for w in workflows),
        solver=solver_report(res),
        baselines=baselines or [],
        assumptions=ASSUMPTIONS,
    )
