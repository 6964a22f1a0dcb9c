"""Independent plan checker: recompute every constraint of a plan from the scenario and the cost models.

It shares no code with the formulation (optimizer/pools.py, formulation.py, assemble.py): demands, mean shapes,
throughputs, latencies, critical paths, power and TCO are all recomputed here from the workflows, the catalog
and `costmodels`, so a bug in the model builder shows up as a violation instead of being confirmed by itself.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from hetplace.catalogs.schema import Dtype
from hetplace.costmodels.llm_ops import kv_bytes_per_token
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, retrieval_cost
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.tco import HOURS_PER_YEAR
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, PoolAssignment
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, ToolStep

REL_TOL = 1e-6
NIC_EFFICIENCY = 0.8


def _llm_shapes(resolved: ResolvedScenario, model: str) -> dict:
    """Demand and mean shapes of one LLM model's prefill and decode pools, from the workflows."""
    rows = []
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep) and s.model == model:
                g = s.prompt_growth_tokens_per_repeat * (s.repeat - 1) / 2.0
                rows.append(
                    (
                        wf,
                        s,
                        wf.arrival_rate_rps * s.repeat,
                        s.prompt_tokens - s.cached_prefix_tokens,
                        s.cached_prefix_tokens + g,
                        s.prompt_tokens + g + s.output_tokens / 2.0,
                    )
                )
    pre = sum(r[2] * r[3] for r in rows)
    dec = sum(r[2] * r[1].output_tokens for r in rows)
    return {
        "rows": rows,
        "prefill_demand": pre,
        "decode_demand": dec,
        "uncached": sum(r[2] * r[3] * r[3] for r in rows) / pre,
        "cached": sum(r[2] * r[3] * r[4] for r in rows) / pre,
        "context": sum(r[2] * r[1].output_tokens * r[5] for r in rows) / dec,
    }


def _one(menu_fn, *args) -> tuple[float, float, bool]:
    m = menu_fn(*args)
    return float(m.throughput[0]), float(m.latency_s[0]), bool(m.fits[0])


def _assignment_numbers(
    resolved: ResolvedScenario, a: PoolAssignment
) -> tuple[float, dict[tuple[str, str], float], float, list[str]]:
    """(throughput per replica, latency per execution of each served step, demand, problems) for one assignment."""
    cat = resolved.catalog
    dev = cat.device(a.device)
    problems: list[str] = []
    lat: dict[tuple[str, str], float] = {}
    kind, _, rest = a.pool.partition(":")
    if a.phase == "colocated":
        return _colocated_numbers(resolved, a)
    if a.phase in ("prefill", "decode"):
        model = cat.model(a.model)
        sh = _llm_shapes(resolved, a.model)
        dt = [Dtype(a.weight_dtype)]
        if a.phase == "prefill":
            thr, _, fits = _one(
                evaluate_menu,
                model,
                "prefill",
                [dev],
                [a.tensor_parallel],
                [a.batch],
                dt,
                sh["uncached"] + sh["cached"],
                sh["cached"],
                0,
            )
            demand = sh["prefill_demand"]
            for wf, s, _, unc, cached, _ in sh["rows"]:
                _, t, ok = _one(
                    evaluate_menu, model, "prefill", [dev], [a.tensor_parallel], [a.batch], dt, unc + cached, cached, 0
                )
                lat[(wf.id, s.id)] = t
                fits = fits and ok
        else:
            thr, _, fits = _one(
                evaluate_menu, model, "decode", [dev], [a.tensor_parallel], [a.batch], dt, 0, 0, sh["context"]
            )
            demand = sh["decode_demand"]
            kv = float(kv_bytes_per_token(model, Precision(model.weight_dtype, model.kv_dtype)))
            for wf, s, _, _, _, ctx in sh["rows"]:
                _, t, ok = _one(evaluate_menu, model, "decode", [dev], [a.tensor_parallel], [a.batch], dt, 0, 0, ctx)
                transfer = kv * s.prompt_tokens / (dev.scaleout_nic_gbps * 1e9 / 8 * NIC_EFFICIENCY)
                lat[(wf.id, s.id)] = t * s.output_tokens + transfer
                fits = fits and ok
        if not fits:
            problems.append(f"{a.pool} on {a.device} tp={a.tensor_parallel} batch={a.batch}: does not fit")
        return thr, lat, demand, problems
    if kind in ("embed", "convert"):
        model = cat.model(rest)
        steps = [
            (wf, s)
            for wf in resolved.workflows
            for s in wf.steps
            if isinstance(s, EmbedStep | ConvertStep) and s.kind == kind and s.model == rest
        ]

        def tokens(s) -> int:
            return model.encoder_input.tokens_per_item if kind == "convert" else s.tokens_per_item

        demand = sum(wf.arrival_rate_rps * s.repeat * s.items for wf, s in steps)
        mean_tokens = round(sum(wf.arrival_rate_rps * s.repeat * s.items * tokens(s) for wf, s in steps) / demand)
        cap = encoder_cost(model, [dev], a.batch, mean_tokens)
        for wf, s in steps:
            c = encoder_cost(model, [dev], a.batch * s.items, tokens(s))
            lat[(wf.id, s.id)] = float(c.latency_s[0])
            if not c.fits[0]:
                problems.append(f"{a.pool} on {a.device}: step {s.id} does not fit")
        return a.batch / float(cap.latency_s[0]), lat, demand, problems
    if kind == "retrieval":
        if a.workflow and a.step:
            wf_id, step_id = a.workflow, a.step
        else:  # plans written before the fields existed name the step only in the pool id
            wf_id, _, step_id = rest.rpartition(".")
        wf = next(w for w in resolved.workflows if w.id == wf_id)
        s = wf.step(step_id)
        assert isinstance(s, RetrievalStep)
        c = retrieval_cost([dev], s.corpus_vectors, s.dim, s.top_k, s.index, s.vector_dtype.value, s.queries)
        if not c.fits[0]:
            problems.append(f"{a.pool} on {a.device}: index does not fit")
        lat[(wf.id, s.id)] = float(c.latency_s[0])
        return s.queries / float(c.busy_s[0]), lat, wf.arrival_rate_rps * s.repeat * s.queries, problems
    # tools: CPU-seconds per second per socket = cores
    if dev.kind.value != "cpu":
        problems.append(f"{a.pool}: tools placed on non-CPU device {a.device}")
    demand = 0.0
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, ToolStep):
                lat[(wf.id, s.id)] = s.latency_s
                demand += wf.arrival_rate_rps * s.repeat * s.cpu_s
    return float(dev.cores or 0), lat, demand, problems


def _colocated_numbers(
    resolved: ResolvedScenario, a: PoolAssignment
) -> tuple[float, dict[tuple[str, str], float], float, list[str]]:
    """A replica running both phases: prefill one prompt at a time (batch 1) first, decode batch `a.batch` waits
    meanwhile. Throughput in LLM calls / s; decode time per token stretched by 1 / (1 − u_max · prefill share)."""
    model = resolved.catalog.model(a.model)
    dev = resolved.catalog.device(a.device)
    sh = _llm_shapes(resolved, a.model)
    dt = [Dtype(a.weight_dtype)]
    tp = [a.tensor_parallel]
    pre_thr, _, fits_p = _one(
        evaluate_menu, model, "prefill", [dev], tp, [1], dt, sh["uncached"] + sh["cached"], sh["cached"], 0
    )
    dec_thr, _, fits_d = _one(evaluate_menu, model, "decode", [dev], tp, [a.batch], dt, 0, 0, sh["context"])
    prefill_busy = sh["prefill_demand"] / pre_thr
    busy = prefill_busy + sh["decode_demand"] / dec_thr
    stall = 1.0 / (1.0 - resolved.scenario.limits.max_utilisation * prefill_busy / busy)
    calls = sum(r[2] for r in sh["rows"])
    lat: dict[tuple[str, str], float] = {}
    fits = fits_p and fits_d
    for wf, s, _, unc, cached, ctx in sh["rows"]:
        _, t_pre, ok_p = _one(evaluate_menu, model, "prefill", [dev], tp, [1], dt, unc + cached, cached, 0)
        _, t_dec, ok_d = _one(evaluate_menu, model, "decode", [dev], tp, [a.batch], dt, 0, 0, ctx)
        lat[(wf.id, s.id)] = t_pre + t_dec * s.output_tokens * stall
        fits = fits and ok_p and ok_d
    problems = [] if fits else [f"{a.pool} on {a.device} tp={a.tensor_parallel} batch={a.batch}: does not fit"]
    return calls / busy, lat, calls, problems


def _capacity_violations(capacity: dict[str, float], demand: dict[str, float], u_max: float) -> list[str]:
    """Every pool covers its demand, except that an LLM model may split its traffic: the fraction served
    disaggregated (the lesser of its prefill and decode coverage) plus the co-located fraction must reach 1."""
    v: list[str] = []
    coverage = {p: capacity[p] * u_max / demand[p] if demand[p] > 0 else float("inf") for p in capacity}
    colocated_models = {p.rpartition(":")[0] for p in capacity if p.endswith(":colocated")}
    for pool, cap in capacity.items():
        model, _, phase = pool.rpartition(":")
        if model in colocated_models and phase in ("prefill", "decode", "colocated"):
            continue
        if cap * u_max < demand[pool] * (1 - REL_TOL):
            v.append(f"pool {pool}: capacity {cap:.4g}/s × max_utilisation {u_max} < demand {demand[pool]:.4g}/s")
    for model in sorted(colocated_models):
        disaggregated = min(coverage.get(f"{model}:prefill", 0.0), coverage.get(f"{model}:decode", 0.0))
        total = disaggregated + coverage[f"{model}:colocated"]
        if total < 1 - REL_TOL:
            v.append(
                f"model {model}: disaggregated pools cover {disaggregated:.4f} and co-located "
                f"{total - disaggregated:.4f} of its traffic at max_utilisation {u_max}; together < 1"
            )
    return v


def _step_duration(per_pool: dict[str, float]) -> float:
    """One execution: disaggregated pools add up; a co-located pool is an alternative route, the slower counts."""
    colocated = max((t for p, t in per_pool.items() if p.endswith(":colocated")), default=0.0)
    return max(colocated, sum(t for p, t in per_pool.items() if not p.endswith(":colocated")))


def check_plan(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """Every violated constraint, as a readable line (empty list = the plan is valid)."""
    v: list[str] = []
    sc = resolved.scenario
    u_max = sc.limits.max_utilisation
    owned = {o.device: o for o in sc.hardware.owned}
    buyable = {p.device: p for p in sc.hardware.purchasable}
    rentable = {r.device: r for r in sc.hardware.rentable}
    fleet = {e.device: e for e in plan.fleet}
    # Fleet sources and limits
    for e in plan.fleet:
        dev = resolved.catalog.device(e.device)
        o = owned.get(e.device)
        if e.owned_used + e.owned_idle != (o.count if o else 0):
            v.append(
                f"fleet {e.device}: owned_used + owned_idle = {e.owned_used + e.owned_idle} ≠ owned "
                f"{o.count if o else 0}"
            )
        if e.bought and (e.device not in buyable or (buyable[e.device].max_count or 10**9) < e.bought):
            v.append(f"fleet {e.device}: bought {e.bought} exceeds what is purchasable")
        if e.bought % dev.devices_per_node:
            v.append(f"fleet {e.device}: bought {e.bought} is not whole nodes of {dev.devices_per_node}")
        if e.rented and (e.device not in rentable or (rentable[e.device].max_count or 10**9) < e.rented):
            v.append(f"fleet {e.device}: rented {e.rented} exceeds what is rentable")
    # Pools: capacity, device usage, latencies
    used = defaultdict(int)
    capacity: dict[str, float] = defaultdict(float)
    demand: dict[str, float] = {}
    step_lat: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for a in plan.pools:
        thr, lat, dem, probs = _assignment_numbers(resolved, a)
        v.extend(probs)
        used[a.device] += a.replicas * a.tensor_parallel
        capacity[a.pool] += thr * a.replicas
        demand[a.pool] = dem
        for key, t in lat.items():
            step_lat[key][a.pool] = max(step_lat[key].get(a.pool, 0.0), t)
    v.extend(_capacity_violations(capacity, demand, u_max))
    for dev_id, n in used.items():
        e = fleet.get(dev_id)
        have = (e.owned_used + e.bought + e.rented) if e else 0
        if n > have:
            v.append(f"fleet {dev_id}: pools use {n} devices, fleet provides {have}")
    # Critical paths
    for wf in resolved.workflows:
        finish: dict[str, float] = {}
        for _ in wf.steps:
            for s in wf.steps:
                if s.id not in finish and all(p in finish for p in s.after):
                    key = (wf.id, s.id)
                    if not step_lat.get(key):
                        v.append(f"workflow {wf.id}: step {s.id} is served by no pool")
                    dur = _step_duration(step_lat.get(key, {})) * s.repeat
                    finish[s.id] = max((finish[p] for p in s.after), default=0.0) + dur
        path = max(finish.values())
        if path > wf.sla.e2e_latency_s * (1 + REL_TOL):
            v.append(f"workflow {wf.id}: critical path {path:.3f} s > SLA {wf.sla.e2e_latency_s:g} s")
        reported = next((w for w in plan.workflows if w.workflow == wf.id), None)
        if reported is None or abs(reported.critical_path_s - path) > 1e-6 * max(1.0, path):
            v.append(
                f"workflow {wf.id}: plan reports critical path "
                f"{reported.critical_path_s if reported else None}, recomputed {path:.6f} s"
            )
    # Power, budgets, TCO
    econ = sc.economics
    power = sum(
        (e.owned_used + e.bought) * resolved.catalog.device(e.device).tdp_w / 1000.0 * econ.avg_load_fraction * econ.pue
        for e in plan.fleet
    )
    if sc.limits.power_cap_kw is not None and power > sc.limits.power_cap_kw * (1 + REL_TOL):
        v.append(f"power {power:.1f} kW > cap {sc.limits.power_cap_kw:g} kW")
    total, purchases = 0.0, 0.0
    for e in plan.fleet:
        dev = resolved.catalog.device(e.device)
        kw = dev.tdp_w / 1000.0
        run = (
            kw * econ.avg_load_fraction * econ.pue * HOURS_PER_YEAR * econ.energy_usd_per_kwh
            + kw * econ.hosting_usd_per_kw_month * 12
        )
        o = owned.get(e.device)
        if e.owned_used:
            extra = (o.residual_value_usd + (0.0 if o.sunk else float(dev.capex_usd or 0.0))) / econ.amortisation_years
            total += e.owned_used * (run + extra)
        if e.bought:
            price = buyable[e.device].capex_usd or dev.capex_usd or 0.0
            purchases += e.bought * price
            total += e.bought * (run + price / econ.amortisation_years)
        if e.rented:
            total += e.rented * (rentable[e.device].usd_per_hour or dev.cloud_usd_per_hour or 0.0) * HOURS_PER_YEAR
    if abs(total - plan.tco.total_usd_per_year) > 1e-6 * max(1.0, total):
        v.append(f"tco: plan reports {plan.tco.total_usd_per_year:.2f} USD/year, recomputed {total:.2f}")
    if sc.limits.capex_budget_usd is not None and purchases > sc.limits.capex_budget_usd * (1 + REL_TOL):
        v.append(f"purchases {purchases:.0f} USD > capex budget {sc.limits.capex_budget_usd:g}")
    if sc.limits.annual_budget_usd is not None and total > sc.limits.annual_budget_usd * (1 + REL_TOL):
        v.append(f"annual TCO {total:.0f} USD > budget {sc.limits.annual_budget_usd:g}")
    if not np.isfinite(total):
        v.append("tco is not finite")
    return v
