"""Independent plan checker: recompute every constraint of a plan from the scenario and the cost models.

It shares no code with the formulation (optimizer/pools.py, formulation.py, assemble.py): demands, mean shapes,
throughputs, latencies, critical paths, power and TCO are all recomputed here from the workflows, the catalog
and `costmodels`, so a bug in the model builder shows up as a violation instead of being confirmed by itself.
Even the longest-path pass over a workflow DAG is its own (`critical_path_s`), not `problems.dag`'s; a property
test holds the two against each other.

`check_plan` first makes sure the plan belongs to the scenario (`plan_match`: scenario id, devices, pools,
workflows, steps; a mismatch is an input error), then runs one function per group of constraints: fleet sources,
pools (capacity, fit), device usage, critical paths, power, costs, and holds every figure the plan reports (cost
parts, $/request, $/1M tokens, purchases, nodes, power, throughput, demand, utilisation, step latencies and
starts, slack) to its recomputation. Not re-checked: the baselines (they would need solves), the solver block,
and each step's KV-transfer part, device and critical-step list; `check_notes` says when user rows
(`extra_constraints`) exist, which are not re-checked either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hetplace.catalogs.loader import load_engines
from hetplace.catalogs.schema import Device, Dtype, ModelArch
from hetplace.common.errors import InputError
from hetplace.costmodels.engine_terms import ServingParams, serving_params
from hetplace.costmodels.error_band import error_band, slow_factor
from hetplace.costmodels.llm_ops import kv_bytes_per_token
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, retrieval_cost
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.queueing import mixture_scv, wait_percentile_s
from hetplace.costmodels.tco import HOURS_PER_YEAR
from hetplace.optimizer.plan_match import plan_mismatches
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import FleetEntry, Plan, PoolAssignment
from hetplace.problems.schema import (
    UNLIMITED_COUNT,
    ConvertStep,
    EmbedStep,
    LlmStep,
    OwnedDevices,
    PurchasableDevices,
    RentableDevices,
    RetrievalStep,
    ToolStep,
    Workflow,
)

REL_TOL = 1e-6
FIGURE_REL_TOL = 1e-6  # a reported figure (cost part, utilisation, latency…) may differ from the recomputed one by this
NIC_EFFICIENCY = 0.8

StepKey = tuple[str, str]  # (workflow id, step id)


@dataclass(frozen=True)
class LlmCall:
    """One LLM step's traffic and mean token shape (over its repeats)."""

    workflow: Workflow
    step: LlmStep
    calls_per_s: float  # arrival rate × repeat
    uncached_tokens: float  # prefilled per execution
    cached_tokens: float  # mean cached prefix over the repeats
    context_tokens: float  # mean KV context while decoding


@dataclass(frozen=True)
class LlmShapes:
    """Demand and demand-weighted mean shapes of one LLM model's prefill and decode pools."""

    calls: tuple[LlmCall, ...]
    prefill_demand: float  # uncached prompt tokens / s
    decode_demand: float  # output tokens / s
    uncached_tokens: float
    cached_tokens: float
    context_tokens: float


@dataclass(frozen=True)
class PoolNumbers:
    """One assignment's numbers as the checker recomputes them."""

    throughput: float  # per replica, in the pool's work unit per second
    latency_s: dict[StepKey, float]  # per execution of each step it serves
    demand: float  # the whole pool's demand, same unit
    problems: list[str] = field(default_factory=list)
    service_s: dict[StepKey, float] = field(default_factory=dict)  # relative service time per step (no transfer)
    slots: int = 1  # requests one replica serves at once: the queue's servers per replica
    decode_s: dict[StepKey, float] = field(default_factory=dict)  # co-located: decode time before the stall
    prefill_share: float = 0.0  # co-located: busy share spent on prefill


@dataclass(frozen=True)
class Served:
    """What the plan's pools add up to: capacity and demand per pool, devices per type, latency per step."""

    capacity: dict[str, float]
    demand: dict[str, float]
    devices_used: dict[str, int]
    step_latency_s: dict[StepKey, dict[str, float]]  # step -> pool -> slowest config's latency
    problems: list[str]
    throughput: list[float] = field(default_factory=list)  # per plan.pools entry: all its replicas, recomputed


@dataclass(frozen=True)
class Offer:
    """The scenario's hardware offer, by device id."""

    owned: dict[str, OwnedDevices]
    buyable: dict[str, PurchasableDevices]
    rentable: dict[str, RentableDevices]

    @classmethod
    def of(cls, resolved: ResolvedScenario) -> Offer:
        hw = resolved.scenario.hardware
        return cls(
            {o.device: o for o in hw.owned}, {p.device: p for p in hw.purchasable}, {r.device: r for r in hw.rentable}
        )


# ---- LLM shapes and one config's numbers -------------------------------------------------------------------


def _llm_shapes(resolved: ResolvedScenario, model: str) -> LlmShapes:
    """Demand and mean shapes of one LLM model's prefill and decode pools, from the workflows."""
    calls = []
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep) and s.model == model:
                g = s.prompt_growth_tokens_per_repeat * (s.repeat - 1) / 2.0
                calls.append(
                    LlmCall(
                        workflow=wf,
                        step=s,
                        calls_per_s=wf.arrival_rate_rps * s.repeat,
                        uncached_tokens=s.prompt_tokens - s.cached_prefix_tokens,
                        cached_tokens=s.cached_prefix_tokens + g,
                        context_tokens=s.prompt_tokens + g + s.output_tokens / 2.0,
                    )
                )
    pre = sum(c.calls_per_s * c.uncached_tokens for c in calls)
    dec = sum(c.calls_per_s * c.step.output_tokens for c in calls)
    return LlmShapes(
        calls=tuple(calls),
        prefill_demand=pre,
        decode_demand=dec,
        uncached_tokens=sum(c.calls_per_s * c.uncached_tokens * c.uncached_tokens for c in calls) / pre,
        cached_tokens=sum(c.calls_per_s * c.uncached_tokens * c.cached_tokens for c in calls) / pre,
        context_tokens=sum(c.calls_per_s * c.step.output_tokens * c.context_tokens for c in calls) / dec,
    )


@dataclass(frozen=True)
class _Llm:
    """An LLM assignment's fixed menu arguments, so one config is evaluated at several token shapes."""

    model: ModelArch
    device: Device
    tp: int
    dtype: Dtype
    kv_dtype: Dtype
    engine: ServingParams  # the scenario engine's terms on this device (neutral without an engine)
    slow: float  # robust plans: 1 + the device's error band (latency × slow, throughput ÷ slow); else 1

    @classmethod
    def of(cls, resolved: ResolvedScenario, a: PoolAssignment, model_id: str, robust: bool) -> _Llm:
        model = resolved.catalog.model(model_id)
        dtype = Dtype(a.weight_dtype) if a.weight_dtype is not None else model.weight_dtype
        engine = serving_params(a.device, resolved.scenario.engine, load_engines(), resolved.calibration)
        slow = slow_factor(a.device, resolved.calibration, robust)
        return cls(
            model, resolved.catalog.device(a.device), a.tensor_parallel, dtype, _kv_dtype(a, model), engine, slow
        )

    def prefill(self, batch: int, uncached: float, cached: float) -> tuple[float, float, bool]:
        """(throughput, latency, fits) prefilling `uncached` new tokens after `cached` cached ones; the latency
        includes the engine's per-request time before the first token (no replica time)."""
        throughput, latency, fits = self._one("prefill", batch, uncached + cached, cached, 0)
        return throughput, latency + self.engine.ttft_overhead_s * self.slow, fits

    def decode(self, batch: int, context: float) -> tuple[float, float, bool]:
        """(throughput, time per output token, fits) at a KV context of `context` tokens."""
        return self._one("decode", batch, 0, 0, context)

    def _one(self, phase: str, batch: int, prompt: float, cached: float, context: float) -> tuple[float, float, bool]:
        m = evaluate_menu(
            self.model,
            phase,
            [self.device],
            [self.tp],
            [batch],
            [self.dtype],
            prompt,
            cached,
            context,
            kv_dtypes=[self.kv_dtype],
            engine=[self.engine],
        )
        return float(m.throughput[0]) / self.slow, float(m.latency_s[0]) * self.slow, bool(m.fits[0])


def _kv_dtype(a: PoolAssignment, model: ModelArch) -> Dtype:
    """The KV-cache dtype an LLM assignment stores in: the plan's, or the model's own in plans without one."""
    return Dtype(a.kv_dtype) if a.kv_dtype is not None else model.kv_dtype


def _does_not_fit(a: PoolAssignment) -> str:
    return f"{a.pool} on {a.device} tp={a.tensor_parallel} batch={a.batch}: does not fit"


def _without_model(a: PoolAssignment) -> PoolNumbers:
    return PoolNumbers(0.0, {}, 0.0, [f"{a.pool} on {a.device}: {a.phase} pool names no model"])


# ---- One pool assignment per pool kind ---------------------------------------------------------------------


def _assignment_numbers(resolved: ResolvedScenario, a: PoolAssignment, robust: bool = False) -> PoolNumbers:
    """(throughput per replica, latency per execution of each served step, demand, problems) for one assignment.
    `robust`: LLM replicas at the slow end of their device's error band (encoders, retrieval, tools unchanged)."""
    kind, _, rest = a.pool.partition(":")
    if a.phase == "colocated":
        return _colocated_numbers(resolved, a, robust)
    if a.phase in ("prefill", "decode"):
        return _disaggregated_numbers(resolved, a, robust)
    if kind in ("embed", "convert"):
        return _encoder_numbers(resolved, a, kind, rest)
    if kind == "retrieval":
        if a.workflow and a.step:
            wf_id, step_id = a.workflow, a.step
        else:  # plans written before the fields existed name the step only in the pool id
            wf_id, _, step_id = rest.rpartition(".")
        return _retrieval_numbers(resolved, a, wf_id, step_id)
    return _tool_numbers(resolved, a)


def _disaggregated_numbers(resolved: ResolvedScenario, a: PoolAssignment, robust: bool) -> PoolNumbers:
    """A prefill or a decode replica. Decode latency includes moving the prompt's KV cache over the decode
    device's NIC (at NIC_EFFICIENCY of line rate), in the decode replica's KV dtype (`_precision_violations`
    holds the prefill replicas to the same one)."""
    if a.model is None:
        return _without_model(a)
    llm = _Llm.of(resolved, a, a.model, robust)
    sh = _llm_shapes(resolved, a.model)
    lat: dict[StepKey, float] = {}
    service: dict[StepKey, float] = {}
    if a.phase == "prefill":
        thr, _, fits = llm.prefill(a.batch, sh.uncached_tokens, sh.cached_tokens)
        demand = sh.prefill_demand
        for c in sh.calls:
            _, t, ok = llm.prefill(a.batch, c.uncached_tokens, c.cached_tokens)
            lat[(c.workflow.id, c.step.id)] = t
            service[(c.workflow.id, c.step.id)] = t
            fits = fits and ok
    else:
        thr, _, fits = llm.decode(a.batch, sh.context_tokens)
        demand = sh.decode_demand
        model = llm.model
        kv = float(kv_bytes_per_token(model, Precision(llm.dtype, llm.kv_dtype)))
        for c in sh.calls:
            _, t, ok = llm.decode(a.batch, c.context_tokens)
            transfer = kv * c.step.prompt_tokens / (llm.device.scaleout_nic_gbps * 1e9 / 8 * NIC_EFFICIENCY)
            lat[(c.workflow.id, c.step.id)] = t * c.step.output_tokens + transfer
            service[(c.workflow.id, c.step.id)] = t * c.step.output_tokens
            fits = fits and ok
    return PoolNumbers(thr, lat, demand, [] if fits else [_does_not_fit(a)], service, a.batch)


def _colocated_numbers(resolved: ResolvedScenario, a: PoolAssignment, robust: bool) -> PoolNumbers:
    """A replica running both phases: prefill one prompt at a time (batch 1) first, decode batch `a.batch` waits
    meanwhile. Throughput in LLM calls / s; decode time per token stretched by 1 / (1 − u · prefill share), u the
    assignment's load level (`load_limit`, else max_utilisation). Pools serving percentile SLAs redo the stall at
    the actual load (`_queueing_latencies`), from `decode_s` and `prefill_share`."""
    if a.model is None:
        return _without_model(a)
    llm = _Llm.of(resolved, a, a.model, robust)
    sh = _llm_shapes(resolved, a.model)
    pre_thr, _, fits_p = llm.prefill(1, sh.uncached_tokens, sh.cached_tokens)
    dec_thr, _, fits_d = llm.decode(a.batch, sh.context_tokens)
    prefill_busy = sh.prefill_demand / pre_thr
    busy = prefill_busy + sh.decode_demand / dec_thr
    level = a.load_limit if a.load_limit is not None else resolved.scenario.limits.max_utilisation
    stall = 1.0 / (1.0 - level * prefill_busy / busy)
    calls = sum(c.calls_per_s for c in sh.calls)
    lat: dict[StepKey, float] = {}
    service: dict[StepKey, float] = {}
    decode: dict[StepKey, float] = {}
    fits = fits_p and fits_d
    for c in sh.calls:
        _, t_pre, ok_p = llm.prefill(1, c.uncached_tokens, c.cached_tokens)
        _, t_dec, ok_d = llm.decode(a.batch, c.context_tokens)
        key = (c.workflow.id, c.step.id)
        lat[key] = t_pre + t_dec * c.step.output_tokens * stall
        service[key] = t_pre + t_dec * c.step.output_tokens
        decode[key] = t_dec * c.step.output_tokens
        fits = fits and ok_p and ok_d
    problems = [] if fits else [_does_not_fit(a)]
    return PoolNumbers(calls / busy, lat, calls, problems, service, a.batch, decode, prefill_busy / busy)


def _encoder_numbers(resolved: ResolvedScenario, a: PoolAssignment, kind: str, model_id: str) -> PoolNumbers:
    """An embedding or encoder (vision/speech) replica: `a.batch` calls per batch, each of a step's items."""
    model = resolved.catalog.model(model_id)
    dev = resolved.catalog.device(a.device)
    steps = [
        (wf, s)
        for wf in resolved.workflows
        for s in wf.steps
        if isinstance(s, EmbedStep | ConvertStep) and s.kind == kind and s.model == model_id
    ]

    if kind == "convert" and model.encoder_input is None:  # the catalog requires it of encoders; a plan may lie
        return PoolNumbers(0.0, {}, 0.0, [f"{a.pool}: model {model_id} is not an encoder (no encoder_input)"])
    item_tokens = model.encoder_input.tokens_per_item if model.encoder_input is not None else 0

    def tokens(s: EmbedStep | ConvertStep) -> int:
        return s.tokens_per_item if isinstance(s, EmbedStep) else item_tokens

    problems: list[str] = []
    lat: dict[StepKey, float] = {}
    demand = sum(wf.arrival_rate_rps * s.repeat * s.items for wf, s in steps)
    mean_tokens = round(sum(wf.arrival_rate_rps * s.repeat * s.items * tokens(s) for wf, s in steps) / demand)
    cap = encoder_cost(model, [dev], a.batch, mean_tokens)
    for wf, s in steps:
        c = encoder_cost(model, [dev], a.batch * s.items, tokens(s))
        lat[(wf.id, s.id)] = float(c.latency_s[0])
        if not c.fits[0]:
            problems.append(f"{a.pool} on {a.device}: step {s.id} does not fit")
    return PoolNumbers(a.batch / float(cap.latency_s[0]), lat, demand, problems, dict(lat), a.batch)


def _retrieval_numbers(resolved: ResolvedScenario, a: PoolAssignment, wf_id: str, step_id: str) -> PoolNumbers:
    """One retrieval step's index on one device: queries per second and per-execution latency."""
    dev = resolved.catalog.device(a.device)
    wf = next(w for w in resolved.workflows if w.id == wf_id)
    s = wf.step(step_id)
    if not isinstance(s, RetrievalStep):
        return PoolNumbers(0.0, {}, 0.0, [f"{a.pool}: step {step_id} of {wf_id} is not a retrieval step"])
    c = retrieval_cost([dev], s.corpus_vectors, s.dim, s.top_k, s.index, s.vector_dtype.value, s.queries)
    problems = [] if c.fits[0] else [f"{a.pool} on {a.device}: index does not fit"]
    demand = wf.arrival_rate_rps * s.repeat * s.queries
    lat = {(wf.id, s.id): float(c.latency_s[0])}
    return PoolNumbers(s.queries / float(c.busy_s[0]), lat, demand, problems, dict(lat), 1)


def _tool_numbers(resolved: ResolvedScenario, a: PoolAssignment) -> PoolNumbers:
    """The CPU pool of all tool calls: CPU-seconds per second per socket = its cores."""
    dev = resolved.catalog.device(a.device)
    problems = [] if dev.kind.value == "cpu" else [f"{a.pool}: tools placed on non-CPU device {a.device}"]
    lat: dict[StepKey, float] = {}
    cpu: dict[StepKey, float] = {}
    demand = 0.0
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, ToolStep):
                lat[(wf.id, s.id)] = s.latency_s
                cpu[(wf.id, s.id)] = s.cpu_s
                demand += wf.arrival_rate_rps * s.repeat * s.cpu_s
    return PoolNumbers(float(dev.cores or 0), lat, demand, problems, cpu, int(dev.cores or 1))


# ---- Precision: allowed dtypes, one KV dtype per disaggregated model ---------------------------------------

LLM_PHASES = ("prefill", "decode", "colocated")


def _precision_violations(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """LLM weights and KV caches only in the model's own dtypes or ones the scenario allows, and a model's prefill
    and decode replicas on one KV dtype (the prefill writes the cache the decode reads)."""
    sc = resolved.scenario
    v: list[str] = []
    disaggregated_kv: dict[str, set[Dtype]] = defaultdict(set)
    for a in plan.pools:
        if a.phase not in LLM_PHASES or a.model is None:
            continue
        model = resolved.catalog.model(a.model)
        weight = Dtype(a.weight_dtype) if a.weight_dtype is not None else model.weight_dtype
        kv = _kv_dtype(a, model)
        if weight != model.weight_dtype and weight not in (sc.allowed_weight_dtypes or []):
            v.append(f"{a.pool} on {a.device}: weights in {weight.value}, not {a.model}'s own nor allowed")
        if kv != model.kv_dtype and kv not in (sc.allowed_kv_dtypes or []):
            v.append(f"{a.pool} on {a.device}: KV cache in {kv.value}, not {a.model}'s own nor allowed")
        if a.phase != "colocated":
            disaggregated_kv[a.model].add(kv)
    for model_id, kvs in sorted(disaggregated_kv.items()):
        if len(kvs) > 1:
            names = ", ".join(sorted(k.value for k in kvs))
            v.append(f"model {model_id}: prefill and decode replicas store the KV cache in different dtypes ({names})")
    return v


# ---- Fleet sources and limits ------------------------------------------------------------------------------


def _fleet_source_violations(resolved: ResolvedScenario, plan: Plan, offer: Offer) -> list[str]:
    """Owned devices add up to the inventory; purchases are whole nodes within availability; rentals too."""
    v: list[str] = []
    for e in plan.fleet:
        dev = resolved.catalog.device(e.device)
        o = offer.owned.get(e.device)
        if e.owned_used + e.owned_idle != (o.count if o else 0):
            v.append(
                f"fleet {e.device}: owned_used + owned_idle = {e.owned_used + e.owned_idle} ≠ owned "
                f"{o.count if o else 0}"
            )
        buy = offer.buyable.get(e.device)
        if e.bought and (buy is None or (buy.max_count or UNLIMITED_COUNT) < e.bought):
            v.append(f"fleet {e.device}: bought {e.bought} exceeds what is purchasable")
        if e.bought % dev.devices_per_node:
            v.append(f"fleet {e.device}: bought {e.bought} is not whole nodes of {dev.devices_per_node}")
        rent = offer.rentable.get(e.device)
        if e.rented and (rent is None or (rent.max_count or UNLIMITED_COUNT) < e.rented):
            v.append(f"fleet {e.device}: rented {e.rented} exceeds what is rentable")
    return v


# ---- Pools: capacity, device usage, latencies --------------------------------------------------------------


def _percentiles(resolved: ResolvedScenario) -> dict[StepKey, float]:
    """The SLA percentile of every step of a workflow that states one."""
    return {
        (wf.id, s.id): wf.sla.percentile
        for wf in resolved.workflows
        if wf.sla.percentile is not None
        for s in wf.steps
    }


def _pool_cap(resolved: ResolvedScenario, steps: set[StepKey], percentiles: dict[StepKey, float]) -> float:
    """The load a pool's replicas may carry: max_utilisation, except that a pool serving only percentile SLAs is
    held to it only when the scenario states it (its queueing delay sizes it otherwise)."""
    limits = resolved.scenario.limits
    if steps and steps <= percentiles.keys() and "max_utilisation" not in limits.model_fields_set:
        return 1.0
    return limits.max_utilisation


def _queueing_latencies(
    resolved: ResolvedScenario, pool: list[tuple[PoolAssignment, PoolNumbers]], percentiles: dict[StepKey, float]
) -> list[dict[StepKey, float]]:
    """Per assignment of a pool serving percentile SLAs, each step's latency with its wait in the queue: the pool's
    requests split across assignments in proportion to their capacity, each assignment one M/G/c queue of
    replicas × slots servers (mean service slots · work per request / throughput, the service SCV of the step
    mix), the wait at the step's percentile; co-located replicas' stall at their actual load."""
    rates = {(wf.id, s.id): wf.arrival_rate_rps * s.repeat for wf in resolved.workflows for s in wf.steps}
    keys = list(pool[0][1].latency_s)
    calls = sum(rates[k] for k in keys)
    total = sum(n.throughput * a.replicas for a, n in pool)
    out = []
    for a, n in pool:
        share = n.throughput * a.replicas / total if total > 0 else 0.0
        lam = calls * share
        service = n.slots * (n.demand / calls) / n.throughput if n.throughput > 0 else float("inf")
        scv = mixture_scv([rates[k] for k in keys], [n.service_s[k] for k in keys])
        load = lam / (n.throughput * a.replicas) * (n.demand / calls) if n.throughput > 0 else float("inf")
        lat = {}
        for k in keys:
            t = n.service_s[k] + (n.latency_s[k] - n.service_s[k] if not n.decode_s else 0.0)
            if n.decode_s:
                t += n.decode_s[k] * (1.0 / (1.0 - load * n.prefill_share) - 1.0) if load < 1 else float("inf")
            if k in percentiles:
                t += float(wait_percentile_s(percentiles[k], a.replicas * n.slots, lam, service, scv))
            lat[k] = t
        out.append(lat)
    return out


def _serve(resolved: ResolvedScenario, plan: Plan, robust: bool) -> Served:
    """Add up every assignment's recomputed numbers per pool, per device type and per step (`robust`: LLM
    replicas at the slow end of their error band). Capacity counts each assignment at the load it may carry (its
    load level, at most the pool's cap); pools serving percentile SLAs add queueing delay to their latencies."""
    problems: list[str] = []
    used: dict[str, int] = defaultdict(int)
    capacity: dict[str, float] = defaultdict(float)
    demand: dict[str, float] = {}
    step_lat: dict[StepKey, dict[str, float]] = defaultdict(dict)
    throughput: list[float] = []
    percentiles = _percentiles(resolved)
    by_pool: dict[str, list[tuple[PoolAssignment, PoolNumbers]]] = defaultdict(list)
    for a in plan.pools:
        n = _assignment_numbers(resolved, a, robust)
        problems.extend(n.problems)
        used[a.device] += a.replicas * a.tensor_parallel
        throughput.append(n.throughput * a.replicas)
        by_pool[a.pool].append((a, n))
    for pool_id, members in by_pool.items():
        steps = set(members[0][1].latency_s)
        cap = _pool_cap(resolved, steps, percentiles)
        queueing = bool(steps & percentiles.keys()) and all(n.throughput > 0 for _, n in members)
        lats = _queueing_latencies(resolved, members, percentiles) if queueing else [n.latency_s for _, n in members]
        for (a, n), lat in zip(members, lats, strict=True):
            level = 1.0 if a.load_limit is None else a.load_limit
            capacity[pool_id] += n.throughput * a.replicas * min(level, cap)
            demand[pool_id] = n.demand
            for key, t in lat.items():
                step_lat[key][pool_id] = max(step_lat[key].get(pool_id, 0.0), t)
    return Served(dict(capacity), demand, dict(used), dict(step_lat), problems, throughput)


def _capacity_violations(capacity: dict[str, float], demand: dict[str, float], u_max: float) -> list[str]:
    """Every pool covers its demand with the capacity its replicas may use (at most max_utilisation of it, see
    `_serve`), except that an LLM model may split its traffic: the fraction served disaggregated (the lesser of
    its prefill and decode coverage) plus the co-located fraction must reach 1."""
    v: list[str] = []
    coverage = {p: capacity[p] / demand[p] if demand[p] > 0 else float("inf") for p in capacity}
    colocated_models = {p.rpartition(":")[0] for p in capacity if p.endswith(":colocated")}
    for pool, cap in capacity.items():
        model, _, phase = pool.rpartition(":")
        if model in colocated_models and phase in ("prefill", "decode", "colocated"):
            continue
        if cap < demand[pool] * (1 - REL_TOL):
            v.append(
                f"pool {pool}: usable capacity {cap:.4g}/s (max_utilisation {u_max}) < demand {demand[pool]:.4g}/s"
            )
    for model in sorted(colocated_models):
        disaggregated = min(coverage.get(f"{model}:prefill", 0.0), coverage.get(f"{model}:decode", 0.0))
        total = disaggregated + coverage[f"{model}:colocated"]
        if total < 1 - REL_TOL:
            v.append(
                f"model {model}: disaggregated pools cover {disaggregated:.4f} and co-located "
                f"{total - disaggregated:.4f} of its traffic at max_utilisation {u_max}; together < 1"
            )
    return v


def _device_usage_violations(devices_used: dict[str, int], plan: Plan) -> list[str]:
    """The pools use no more devices of a type than the fleet has in service (owned used + bought + rented)."""
    fleet = {e.device: e for e in plan.fleet}
    v: list[str] = []
    for dev_id, n in devices_used.items():
        e = fleet.get(dev_id)
        have = (e.owned_used + e.bought + e.rented) if e else 0
        if n > have:
            v.append(f"fleet {dev_id}: pools use {n} devices, fleet provides {have}")
    return v


# ---- Critical paths ----------------------------------------------------------------------------------------


def _step_duration(per_pool: dict[str, float]) -> float:
    """One execution: disaggregated pools add up; a co-located pool is an alternative route, the slower counts."""
    colocated = max((t for p, t in per_pool.items() if p.endswith(":colocated")), default=0.0)
    return max(colocated, sum(t for p, t in per_pool.items() if not p.endswith(":colocated")))


def finish_times_s(wf: Workflow, duration_s: Mapping[str, float]) -> dict[str, float]:
    """Earliest finish of every step, in the order the steps become ready. The checker's own longest-path pass
    (repeated sweeps over the steps; workflows are small), kept apart from `problems.dag` on purpose."""
    finish: dict[str, float] = {}
    for _ in wf.steps:
        for s in wf.steps:
            if s.id not in finish and all(p in finish for p in s.after):
                finish[s.id] = max((finish[p] for p in s.after), default=0.0) + duration_s[s.id]
    return finish


def critical_path_s(wf: Workflow, duration_s: Mapping[str, float]) -> float:
    """The longest path through the workflow's DAG with each step taking `duration_s[step id]`."""
    return max(finish_times_s(wf, duration_s).values())


def _paths_s(resolved: ResolvedScenario, step_latency_s: dict[StepKey, dict[str, float]]) -> dict[str, float]:
    """Every workflow's critical path with each step at its recomputed latency."""
    out = {}
    for wf in resolved.workflows:
        duration = {s.id: _step_duration(step_latency_s.get((wf.id, s.id), {})) * s.repeat for s in wf.steps}
        out[wf.id] = critical_path_s(wf, duration)
    return out


def _critical_path_violations(
    resolved: ResolvedScenario, plan: Plan, step_latency_s: dict[StepKey, dict[str, float]]
) -> list[str]:
    """Every step is served; every critical path meets its SLA and matches what the plan reports. In a robust
    plan `step_latency_s` is the slow end, so that is what the SLA is held to."""
    v: list[str] = []
    at = " at the slow end of the error band" if plan.robust is not None else ""
    paths = _paths_s(resolved, step_latency_s)
    for wf in resolved.workflows:
        v.extend(
            f"workflow {wf.id}: step {s.id} is served by no pool"
            for s in wf.steps
            if not step_latency_s.get((wf.id, s.id))
        )
        path = paths[wf.id]
        if path > wf.sla.e2e_latency_s * (1 + REL_TOL):
            v.append(f"workflow {wf.id}: critical path{at} {path:.3f} s > SLA {wf.sla.e2e_latency_s:g} s")
        reported = next((w for w in plan.workflows if w.workflow == wf.id), None)
        if reported is None or abs(reported.critical_path_s - path) > 1e-6 * max(1.0, path):
            v.append(
                f"workflow {wf.id}: plan reports critical path "
                f"{reported.critical_path_s if reported else None}, recomputed {path:.6f} s"
            )
    return v


def _robust_violations(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """The engine the plan was priced with is the scenario's; a robust plan's bands are the calibration's (or the
    default) and its nominal critical paths are the recomputed ones (the slow end is `_critical_path_violations`)."""
    v: list[str] = []
    if plan.engine != resolved.scenario.engine:
        v.append(f"engine: plan priced with {plan.engine}, scenario says {resolved.scenario.engine}")
    if plan.robust is None:
        if resolved.scenario.robust:
            v.append("robust: the scenario asks for a robust plan; this plan was priced at the nominal estimate")
        return v
    for dev_id, band in sorted(plan.robust.error_band.items()):
        want = error_band(dev_id, resolved.calibration)
        if abs(band - want) > 1e-12:
            v.append(f"robust: plan's error band for {dev_id} is {band:g}, the calibration gives {want:g}")
    nominal = _paths_s(resolved, _serve(resolved, plan, robust=False).step_latency_s)
    for w in plan.workflows:
        path = nominal.get(w.workflow)
        if path is not None and (
            w.critical_path_nominal_s is None or abs(w.critical_path_nominal_s - path) > 1e-6 * max(1.0, path)
        ):
            v.append(
                f"workflow {w.workflow}: plan reports nominal critical path {w.critical_path_nominal_s}, "
                f"recomputed {path:.6f} s"
            )
    return v


# ---- Power, budgets, TCO -----------------------------------------------------------------------------------


def _power_violations(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """Devices on site (owned in use and bought; rented ones draw elsewhere) within the facility power cap."""
    sc = resolved.scenario
    econ = sc.economics
    power = sum(
        (e.owned_used + e.bought) * resolved.catalog.device(e.device).tdp_w / 1000.0 * econ.avg_load_fraction * econ.pue
        for e in plan.fleet
    )
    if sc.limits.power_cap_kw is not None and power > sc.limits.power_cap_kw * (1 + REL_TOL):
        return [f"power {power:.1f} kW > cap {sc.limits.power_cap_kw:g} kW"]
    return []


@dataclass(frozen=True)
class EntryCost:
    """One fleet entry's yearly cost in the plan's parts, and its up-front purchases (USD)."""

    capex_usd: float = 0.0  # amortised purchases + residual value forgone (+ capex of owned devices not sunk)
    energy_usd: float = 0.0
    hosting_usd: float = 0.0
    rental_usd: float = 0.0
    purchases_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.capex_usd + self.energy_usd + self.hosting_usd + self.rental_usd


def _entry_costs_usd(resolved: ResolvedScenario, e: FleetEntry, offer: Offer) -> EntryCost:
    """One fleet entry's yearly cost in parts and its up-front purchases. Devices from a source the scenario does
    not offer cost nothing here: `_fleet_source_violations` already reports them. Rented devices' price includes
    their energy and hosting."""
    econ = resolved.scenario.economics
    dev = resolved.catalog.device(e.device)
    kw = dev.tdp_w / 1000.0
    energy_one = kw * econ.avg_load_fraction * econ.pue * HOURS_PER_YEAR * econ.energy_usd_per_kwh
    hosting_one = kw * econ.hosting_usd_per_kw_month * 12
    on_site, capex, purchases, rental = 0, 0.0, 0.0, 0.0
    o = offer.owned.get(e.device)
    if e.owned_used and o is not None:
        on_site += e.owned_used
        extra = o.residual_value_usd + (0.0 if o.sunk else float(dev.capex_usd or 0.0))
        capex += e.owned_used * extra / econ.amortisation_years
    buy = offer.buyable.get(e.device)
    if e.bought and buy is not None:
        price = buy.capex_usd or dev.capex_usd or 0.0
        on_site += e.bought
        purchases += e.bought * price
        capex += e.bought * price / econ.amortisation_years
    rent = offer.rentable.get(e.device)
    if e.rented and rent is not None:
        rental += e.rented * (rent.usd_per_hour or dev.cloud_usd_per_hour or 0.0) * HOURS_PER_YEAR
    return EntryCost(capex, on_site * energy_one, on_site * hosting_one, rental, purchases)


def _differs(reported: float, recomputed: float) -> bool:
    """Beyond FIGURE_REL_TOL of the larger magnitude (plus a floor for figures that should be zero)."""
    return abs(reported - recomputed) > FIGURE_REL_TOL * max(abs(reported), abs(recomputed)) + 1e-9


def _per_year(resolved: ResolvedScenario) -> tuple[float, float]:
    """(requests, LLM tokens) per year: every workflow's arrivals; every LLM call's prompt + output tokens."""
    seconds = HOURS_PER_YEAR * 3600.0
    requests = sum(wf.arrival_rate_rps for wf in resolved.workflows) * seconds
    tokens = sum(
        wf.arrival_rate_rps * s.repeat * (s.prompt_tokens + s.output_tokens)
        for wf in resolved.workflows
        for s in wf.steps
        if isinstance(s, LlmStep)
    )
    return requests, tokens * seconds


def _cost_violations(resolved: ResolvedScenario, plan: Plan, offer: Offer) -> list[str]:
    """Every figure of the TCO breakdown is the recomputed one; purchases and TCO within their budgets."""
    limits = resolved.scenario.limits
    costs = [_entry_costs_usd(resolved, e, offer) for e in plan.fleet]
    total = sum(c.total_usd for c in costs)
    purchases = sum(c.purchases_usd for c in costs)
    v: list[str] = []
    if abs(total - plan.tco.total_usd_per_year) > 1e-6 * max(1.0, total):
        v.append(f"tco: plan reports {plan.tco.total_usd_per_year:.2f} USD/year, recomputed {total:.2f}")
    requests, tokens = _per_year(resolved)
    figures = [
        ("capex_usd_per_year", plan.tco.capex_usd_per_year, sum(c.capex_usd for c in costs)),
        ("energy_usd_per_year", plan.tco.energy_usd_per_year, sum(c.energy_usd for c in costs)),
        ("hosting_usd_per_year", plan.tco.hosting_usd_per_year, sum(c.hosting_usd for c in costs)),
        ("rental_usd_per_year", plan.tco.rental_usd_per_year, sum(c.rental_usd for c in costs)),
        ("usd_per_request", plan.tco.usd_per_request, total / requests if requests else 0.0),
        ("usd_per_million_tokens", plan.tco.usd_per_million_tokens, total / tokens * 1e6 if tokens else 0.0),
        ("purchases_usd", plan.tco.purchases_usd, purchases),
    ]
    v.extend(
        f"tco.{name}: plan reports {reported:.6g}, recomputed {value:.6g}"
        for name, reported, value in figures
        if _differs(reported, value)
    )
    if limits.capex_budget_usd is not None and purchases > limits.capex_budget_usd * (1 + REL_TOL):
        v.append(f"purchases {purchases:.0f} USD > capex budget {limits.capex_budget_usd:g}")
    if limits.annual_budget_usd is not None and total > limits.annual_budget_usd * (1 + REL_TOL):
        v.append(f"annual TCO {total:.0f} USD > budget {limits.annual_budget_usd:g}")
    if not np.isfinite(total):
        v.append("tco is not finite")
    return v


# ---- Reported figures: fleet, pools, steps, workflows ------------------------------------------------------


def _fleet_figure_violations(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """Each fleet entry's nodes (whole servers its devices in use occupy) and facility power."""
    econ = resolved.scenario.economics
    v: list[str] = []
    for e in plan.fleet:
        dev = resolved.catalog.device(e.device)
        in_use = e.owned_used + e.bought + e.rented
        nodes = -(-in_use // dev.devices_per_node)
        if e.nodes != nodes:
            v.append(f"fleet {e.device}: plan reports {e.nodes} nodes, recomputed {nodes}")
        kw = (e.owned_used + e.bought) * dev.tdp_w / 1000.0 * econ.avg_load_fraction * econ.pue
        if _differs(e.power_kw, kw):
            v.append(f"fleet {e.device}: plan reports {e.power_kw:.6g} kW, recomputed {kw:.6g}")
    return v


def _route_shares(plan: Plan, served: Served) -> tuple[dict[str, float], list[str]]:
    """The share of each pool's demand its route carries. Non-LLM pools and LLM models on one route carry all of
    it; a model split between disaggregated and co-located serving carries the shares the plan's demands imply,
    which must agree between its prefill and decode pools and add up to 1."""
    reported: dict[str, float] = defaultdict(float)
    for a in plan.pools:
        reported[a.pool] += a.demand
    shares = dict.fromkeys(served.demand, 1.0)
    by_model: dict[str, dict[str, float]] = defaultdict(dict)
    for pool, demand in served.demand.items():
        model, _, phase = pool.rpartition(":")
        if phase in LLM_PHASES and demand > 0:
            by_model[model][phase] = reported[pool] / demand
    v: list[str] = []
    for model, implied in sorted(by_model.items()):
        disaggregated = [implied[p] for p in ("prefill", "decode") if p in implied]
        if "colocated" not in implied or not disaggregated:
            continue
        if len(disaggregated) == 2 and _differs(*disaggregated):
            v.append(
                f"model {model}: prefill pools report {disaggregated[0]:.6f} of its traffic, decode pools "
                f"{disaggregated[1]:.6f}"
            )
        if _differs(implied["colocated"] + disaggregated[0], 1.0):
            v.append(
                f"model {model}: the pools' demands imply route shares {disaggregated[0]:.6f} (disaggregated) + "
                f"{implied['colocated']:.6f} (co-located) ≠ 1"
            )
        for phase, share in implied.items():
            shares[f"{model}:{phase}"] = share
    return shares, v


def _pool_figure_violations(plan: Plan, served: Served) -> list[str]:
    """Each assignment's devices, throughput, demand served and utilisation: a pool's served demand is split over
    its assignments in proportion to their throughput, and its utilisation is served demand / capacity."""
    shares, v = _route_shares(plan, served)
    raw: dict[str, float] = defaultdict(float)  # all replicas' throughput, before any load limit
    for a, thr in zip(plan.pools, served.throughput, strict=True):
        raw[a.pool] += thr
    for a, thr in zip(plan.pools, served.throughput, strict=True):
        where = f"pool {a.pool} on {a.device} tp={a.tensor_parallel} batch={a.batch}"
        if a.devices != a.replicas * a.tensor_parallel:
            v.append(f"{where}: plan reports {a.devices} devices, replicas × tp = {a.replicas * a.tensor_parallel}")
        if _differs(a.throughput, thr):
            v.append(f"{where}: plan reports throughput {a.throughput:.6g}/s, recomputed {thr:.6g}")
        cap = raw[a.pool]
        if served.capacity.get(a.pool, 0.0) <= 0 or cap <= 0:
            continue  # nothing serves it: `_capacity_violations` says so
        load = shares[a.pool] * served.demand[a.pool]
        demand, utilisation = load * thr / cap, min(1.0, load / cap)
        if _differs(a.demand, demand):
            v.append(f"{where}: plan reports demand {a.demand:.6g}/s, recomputed {demand:.6g}")
        if _differs(a.utilisation, utilisation):
            v.append(f"{where}: plan reports utilisation {a.utilisation:.6g}, recomputed {utilisation:.6g}")
    return v


def _step_times_s(
    resolved: ResolvedScenario, step_latency_s: dict[StepKey, dict[str, float]]
) -> dict[StepKey, tuple[float, float]]:
    """(latency of all repeats, earliest start) of every step, from the recomputed latencies."""
    out: dict[StepKey, tuple[float, float]] = {}
    for wf in resolved.workflows:
        duration = {s.id: _step_duration(step_latency_s.get((wf.id, s.id), {})) * s.repeat for s in wf.steps}
        finish = finish_times_s(wf, duration)
        for s in wf.steps:
            out[(wf.id, s.id)] = (duration[s.id], max((finish[p] for p in s.after), default=0.0))
    return out


def _timing_figure_violations(
    resolved: ResolvedScenario,
    plan: Plan,
    step_latency_s: dict[StepKey, dict[str, float]],
    nominal_latency_s: dict[StepKey, dict[str, float]] | None,
) -> list[str]:
    """Each step's latency and start (and nominal latency in a robust plan); each workflow's arrival rate, SLA and
    slack; the arrival-weighted mean critical path."""
    times = _step_times_s(resolved, step_latency_s)
    nominal = _step_times_s(resolved, nominal_latency_s) if nominal_latency_s is not None else None
    v: list[str] = []
    for t in plan.steps:
        lat, start = times[(t.workflow, t.step)]
        where = f"step {t.workflow}.{t.step}"
        if _differs(t.latency_s, lat):
            v.append(f"{where}: plan reports latency {t.latency_s:.6g} s, recomputed {lat:.6g}")
        if _differs(t.start_s, start):
            v.append(f"{where}: plan reports start {t.start_s:.6g} s, recomputed {start:.6g}")
        if nominal is not None:
            low = nominal[(t.workflow, t.step)][0]
            if t.latency_nominal_s is None or _differs(t.latency_nominal_s, low):
                v.append(f"{where}: plan reports nominal latency {t.latency_nominal_s}, recomputed {low:.6g}")
    paths = _paths_s(resolved, step_latency_s)
    by_id = {wf.id: wf for wf in resolved.workflows}
    for w in plan.workflows:
        wf = by_id[w.workflow]
        if _differs(w.arrival_rate_rps, wf.arrival_rate_rps):
            v.append(f"workflow {wf.id}: plan reports {w.arrival_rate_rps:g} req/s, scenario {wf.arrival_rate_rps:g}")
        if _differs(w.sla_s, wf.sla.e2e_latency_s):
            v.append(f"workflow {wf.id}: plan reports SLA {w.sla_s:g} s, scenario {wf.sla.e2e_latency_s:g}")
        slack = wf.sla.e2e_latency_s - paths[wf.id]
        if _differs(w.slack_s, slack):
            v.append(f"workflow {wf.id}: plan reports slack {w.slack_s:.6g} s, recomputed {slack:.6g}")
    if plan.mean_critical_path_s is not None:
        rate = sum(wf.arrival_rate_rps for wf in resolved.workflows)
        mean = sum(wf.arrival_rate_rps * paths[wf.id] for wf in resolved.workflows) / rate
        if _differs(plan.mean_critical_path_s, mean):
            v.append(f"mean_critical_path_s: plan reports {plan.mean_critical_path_s:.6g} s, recomputed {mean:.6g}")
    return v


# ---- The whole check ---------------------------------------------------------------------------------------


def check_plan(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """Every violated constraint and every reported figure that differs from its recomputation, as a readable
    line (empty list = the plan is valid). A plan that does not belong to the scenario (`plan_mismatches`) raises
    InputError: there is nothing to recompute."""
    mismatches = plan_mismatches(resolved, plan)
    if mismatches:
        raise InputError(f"plan for scenario '{plan.scenario}'", mismatches)
    offer = Offer.of(resolved)
    served = _serve(resolved, plan, robust=plan.robust is not None)
    nominal = _serve(resolved, plan, robust=False).step_latency_s if plan.robust is not None else None
    return [
        *_robust_violations(resolved, plan),
        *_fleet_source_violations(resolved, plan, offer),
        *_precision_violations(resolved, plan),
        *served.problems,
        *_capacity_violations(served.capacity, served.demand, resolved.scenario.limits.max_utilisation),
        *_device_usage_violations(served.devices_used, plan),
        *_critical_path_violations(resolved, plan, served.step_latency_s),
        *_power_violations(resolved, plan),
        *_cost_violations(resolved, plan, offer),
        *_fleet_figure_violations(resolved, plan),
        *_pool_figure_violations(plan, served),
        *_timing_figure_violations(resolved, plan, served.step_latency_s, nominal),
    ]


def check_notes(resolved: ResolvedScenario, plan: Plan) -> list[str]:
    """What the checker leaves unchecked, as readable lines (notes, not violations): the rows of the scenario's
    `extra_constraints` are user code, so the checker cannot recompute them independently."""
    applied = plan.solver.extra_constraints
    named = resolved.scenario.extra_constraints
    if applied:
        return [
            f"the plan was solved with user rows from extra_constraints ({', '.join(applied)}); "
            "they are not re-checked here"
        ]
    if named:
        return [
            f"the scenario names extra_constraints ({', '.join(named)}) but the plan records none: it was solved "
            "without them, and they are not checked here"
        ]
    return []
