"""Pools and their config menus: the solver-independent numbers the formulation is built from.

A pool is a shared serving resource: one per (LLM model, phase), one per embedding/encoder model, one per
retrieval step (each index is its own data), and one CPU pool for all tool calls. Each pool measures capacity in
its own work unit and aggregates the demand of every step it serves in that unit:

  prefill   uncached prompt tokens / s     decode   output tokens / s (at the demand-weighted mean context)
  embed     items / s                      convert  items / s
  retrieval queries / s                    tool     CPU-seconds / s

A config is (device, tensor-parallel degree, batch, weight dtype, KV-cache dtype) with a throughput per replica,
devices per replica and each served step's latency per execution on it. Only configs that fit and run are kept.

An LLM model can be served two ways (routes), and the optimizer may split its traffic between them:

  disaggregated  a prefill pool and a decode pool on any devices; each execution's KV cache moves from the prefill
                 replica to the decode replica over the decode device's NIC (a conservative bound), in the
                 decode config's KV dtype: the formulation makes a model's prefill and decode configs agree on
                 one KV dtype (`define_kv_agreement`), so that is also the dtype the prefill wrote;
  colocated      one pool whose replicas run both phases (unit: LLM calls / s). Prefill is scheduled first, one
                 prompt at a time (batch 1), and decode iterations wait while it runs, so time per output token is
                 stretched by 1 / (1 − u · φ), φ = the replica's busy-time share spent on prefill and u the replica's
                 load. Each co-located config comes in load levels u ∈ LOAD_LEVELS (up to the first level at or
                 above the cap): the level's latency is priced at u, and its replicas count for capacity at
                 min(u, cap). The grid is fixed, so relaxing the cap only adds capacity to levels and never makes a
                 config slower — the optimum cannot rise (a cap-priced stall could: issue 16). No KV transfer.

Percentile SLAs (workflow `sla.percentile`): a pool serving a step of such a workflow is a *queueing pool*. It
runs one config (homogeneous replicas, one M/G/c queue of r · servers_per_replica servers), and each step's
latency adds, as a function of the replica count r, the queueing delay at its workflow's percentile
(costmodels.queueing) and, on co-located replicas, the prefill stall at the actual load λ / (r · θ) instead of at
a level. Those extras are precomputed per config for every replica count from the least stable one to the one
where the queue no longer delays the percentile (`ReplicaCurve`); the formulation bounds them from above by
chords. The flat cap is then an optional extra limit: only pools that also serve service-time SLAs, or scenarios
that state `max_utilisation`, keep it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from hetplace.catalogs.loader import Catalog
from hetplace.catalogs.schema import Device, DeviceKind, Dtype, ModelArch
from hetplace.common.enums import Phase
from hetplace.costmodels.engine_terms import ServingParams
from hetplace.costmodels.llm_ops import kv_bytes_per_token
from hetplace.costmodels.llm_perf import Menu, evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, encoder_tokens_per_item, retrieval_cost, tool_cost
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.queueing import erlang_c, mixture_scv, wait_percentile_s
from hetplace.costmodels.roofline import DeviceArrays, kv_transfer_time
from hetplace.costmodels.step_shape import LlmCallShape, llm_call_shape, llm_pool_shape
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, ToolStep, Workflow

PREFILL_BATCHES = (1, 2, 4, 8)
DECODE_BATCHES = (1, 4, 16, 32, 64, 128, 256)
TENSOR_PARALLEL = (1, 2, 4, 8)
ENCODER_BATCHES = (1, 8, 32)  # calls batched together on an encoder replica
# Co-located load levels: a fixed grid keeps the optimum monotone in the cap. It starts at the default cap, so at
# 0.7 the menu is exactly the cap-priced one; a lower cap prices the stall at 0.7 (conservative).
LOAD_LEVELS = (0.7, 0.8, 0.9, 0.95, 1.0)
QUEUE_SCAN_REPLICAS = 512  # most replica counts a queueing curve scans past the least stable one


@dataclass(frozen=True)
class StepRef:
    workflow: str
    step: str


@dataclass
class Config:
    pool: str
    device: str
    tp: int
    batch: int
    dtype: str | None
    throughput: float  # pool work units per second per replica
    latency_s: dict[StepRef, float]  # per execution of each served step on this config
    extra_s: dict[StepRef, float] = field(default_factory=dict)  # e.g. KV transfer (decode configs)
    kv_dtype: str | None = None  # KV-cache dtype of LLM configs; None for pools without a KV cache
    kv_is_models_own: bool = True  # False when the scenario's allowed_kv_dtypes put this KV dtype on the menu
    nominal_latency_s: dict[StepRef, float] | None = None  # robust plans: latency_s before the slow-end factor
    load_limit: float = 1.0  # the most load its latency assumes: it counts for capacity at min(load_limit, cap)
    servers: int = 1  # concurrent requests one replica serves (batch slots; cores of a CPU): the queue's servers
    decode_s: dict[StepRef, float] = field(default_factory=dict)  # co-located: decode time per call before stall
    prefill_share: float = 0.0  # co-located: φ, the replica's busy share spent on prefill
    curves: dict[StepRef, ReplicaCurve] | None = None  # queueing pools: latency added as a function of replicas
    slow_factor: float = 1.0  # robust plans: the factor latencies were multiplied (throughput divided) by
    level_tag: str = ""  # co-located load levels below the cap carry it in their key

    @property
    def key(self) -> str:
        """Unique within the model; a KV dtype other than the model's own is appended (keys of today's menus stay)."""
        kv = "" if self.kv_is_models_own else f"|kv-{self.kv_dtype}"
        return f"{self.pool}|{self.device}|tp{self.tp}|b{self.batch}|{self.dtype or '-'}{kv}{self.level_tag}"

    @property
    def min_replicas(self) -> int:
        """Fewest replicas a queueing config runs with (the least stable count); 1 otherwise."""
        return next(iter(self.curves.values())).first_replicas if self.curves else 1

    @property
    def curve_end_replicas(self) -> int:
        """Where a queueing config's curves end (beyond it they are held at their last value); 1 otherwise."""
        return next(iter(self.curves.values())).last_replicas if self.curves else 1

    def latency_at(self, ref: StepRef, replicas: int) -> float:
        """Per-execution latency of a served step with `replicas` replicas of this config, transfer included; beyond
        the curve's end at its last value, an upper bound (`exact_latency_s` is exact everywhere)."""
        extra = self.curves[ref].extra_at(replicas) if self.curves else 0.0
        return self.latency_s[ref] + self.extra_s.get(ref, 0.0) + extra

    def floor_latency_s(self, ref: StepRef) -> float:
        """The latency of a served step at any replica count is at least this; at or beyond the curve's end it is
        charged exactly this (the curve's last value, the queue no longer delays the percentile)."""
        extra = self.curves[ref].extra_s[-1] if self.curves else 0.0
        return self.latency_s[ref] + self.extra_s.get(ref, 0.0) + extra


@dataclass(frozen=True)
class ReplicaCurve:
    """A queueing config's extra latency for one step at every replica count first..first+len−1 (exact values),
    and the chord points whose piecewise-linear interpolation is ≥ the exact value at every integer count."""

    first_replicas: int
    extra_s: tuple[float, ...]  # at first_replicas + i
    chord_points: tuple[int, ...]  # indices into extra_s, first and last included

    @property
    def last_replicas(self) -> int:
        return self.first_replicas + len(self.extra_s) - 1

    def extra_at(self, replicas: int) -> float:
        i = min(max(replicas - self.first_replicas, 0), len(self.extra_s) - 1)
        return self.extra_s[i]

    def chords(self) -> list[tuple[float, float]]:
        """(value at 0 replicas, slope per replica) of each chord line: extra(r) ≤ max over lines for r in range."""
        out = []
        for i, j in zip(self.chord_points, self.chord_points[1:], strict=False):
            slope = (self.extra_s[j] - self.extra_s[i]) / (j - i)
            out.append((self.extra_s[i] - slope * (self.first_replicas + i), slope))
        if len(self.chord_points) == 1:
            out.append((self.extra_s[0], 0.0))
        return out


DISAGGREGATED, COLOCATED, SINGLE = "disaggregated", "colocated", "single"


@dataclass
class Pool:
    """A set of replicas serving one kind of work. Its identity is in fields (phase, model, workflow, step); `id` is
    a readable name for variable names and reports, never parsed back (workflow ids may contain dots)."""

    id: str
    phase: Phase
    unit: str
    demand: float  # work units per second
    model: str | None
    steps: list[StepRef]
    configs: list[Config] = field(default_factory=list)
    family: str = ""  # pools serving the same traffic: the LLM model id, else the pool's own id
    route: str = SINGLE  # one way to serve the family's traffic: all pools of a route together serve it
    workflow: str | None = None  # the workflow of a pool serving one step (retrieval), else None
    step: str | None = None  # that step's id
    utilisation_cap: float = 1.0  # load its replicas are sized for at most (max_utilisation, or 1 for queueing)
    queueing: bool = False  # serves a step of a percentile-SLA workflow: one config, queueing delay in latency
    calls_per_s: float = 0.0  # requests (executions) per second, the queue's arrival rate
    step_calls_per_s: dict[StepRef, float] = field(default_factory=dict)
    percentile: dict[StepRef, float] = field(default_factory=dict)  # the percentile SLA of each such step
    cpu_s: dict[StepRef, float] = field(default_factory=dict)  # tool pool: CPU-seconds per call of each step

    def __post_init__(self) -> None:
        self.family = self.family or self.id


def routes_by_family(pools: list[Pool]) -> dict[str, dict[str, list[Pool]]]:
    """family -> route -> its pools. A family's traffic is split between its routes."""
    out: dict[str, dict[str, list[Pool]]] = {}
    for p in pools:
        out.setdefault(p.family, {}).setdefault(p.route, []).append(p)
    return out


def drop_unusable_routes(pools: list[Pool]) -> list[Pool]:
    """Remove routes with an empty pool when their family has another, usable route (e.g. no device can run a
    model co-located but disaggregated serving works). A family with no usable route keeps everything, so the
    diagnosis can say what is missing."""
    kept: list[Pool] = []
    for routes in routes_by_family(pools).values():
        usable = {r: ps for r, ps in routes.items() if all(p.configs for p in ps)}
        for ps in (usable or routes).values():
            kept.extend(ps)
    return kept


def coverage_load(pool: Pool, c: Config) -> float:
    """The load a config's replicas count for in capacity: its level, at most the pool's cap."""
    return min(c.load_limit, pool.utilisation_cap)


def levels_below(u_max: float) -> list[float]:
    """Co-located load levels on the menu at cap u_max: every level below it and the first at or above it."""
    above = [g for g in LOAD_LEVELS if g >= u_max - 1e-12]
    return [g for g in LOAD_LEVELS if g < u_max - 1e-12] + above[:1]


def _llm_step_contexts(step: LlmStep) -> LlmCallShape:
    """A step's mean call over its repeats (costmodels.step_shape holds the definition)."""
    return llm_call_shape(
        step.prompt_tokens,
        step.cached_prefix_tokens,
        step.output_tokens,
        step.repeat,
        step.prompt_growth_tokens_per_repeat,
    )


def _devices_for(catalog: Catalog, device_ids: list[str], kinds: set[DeviceKind] | None = None) -> list[Device]:
    return [catalog.device(d) for d in device_ids if kinds is None or catalog.device(d).kind in kinds]


def build_pools(
    workflows: list[Workflow],
    catalog: Catalog,
    device_ids: list[str],
    max_utilisation: float,
    weight_dtypes: list[Dtype] | None = None,
    kv_dtypes: list[Dtype] | None = None,
    engine: dict[str, ServingParams] | None = None,
    slow_factor: dict[str, float] | None = None,
    queueing_cap: float = 1.0,
) -> list[Pool]:
    """Every pool with its demand and its menu of feasible configs on the offered devices. `max_utilisation` is
    the load pools are sized for; co-located replicas price their prefill stall at load levels up to it. Pools
    serving only percentile-SLA steps are sized for `queueing_cap` instead (1 unless the scenario states one).
    `weight_dtypes` lets LLM weights be served in other quantisations too (the scenario's allowed_weight_dtypes),
    `kv_dtypes` their KV
    caches be stored in other formats (allowed_kv_dtypes); the model's own dtypes are always on the menu.
    `engine` prices LLM menus with each device's serving terms (None = plain roofline); `slow_factor` (robust
    planning, device → 1 + error band) prices LLM configs at the slow end (`derate_to_slow_end`)."""
    llm_steps: dict[str, list[tuple[Workflow, LlmStep]]] = {}
    encoder_steps: dict[tuple[str, str], list[tuple[Workflow, EmbedStep | ConvertStep]]] = {}
    pools: list[Pool] = []
    tool_refs: list[tuple[Workflow, ToolStep]] = []
    queued = {
        StepRef(wf.id, s.id): wf.sla.percentile for wf in workflows if wf.sla.percentile is not None for s in wf.steps
    }
    for wf in workflows:
        for step in wf.steps:
            if isinstance(step, LlmStep):
                llm_steps.setdefault(step.model, []).append((wf, step))
            elif isinstance(step, EmbedStep | ConvertStep):
                encoder_steps.setdefault((step.kind, step.model), []).append((wf, step))
            elif isinstance(step, RetrievalStep):
                pools.append(_retrieval_pool(wf, step, catalog, device_ids))
            elif isinstance(step, ToolStep):
                tool_refs.append((wf, step))
    for model_id, llm_uses in llm_steps.items():
        refs = {StepRef(wf.id, s.id) for wf, s in llm_uses}
        queue = bool(refs & queued.keys())
        cap = max_utilisation if not queue or not refs <= queued.keys() else queueing_cap
        llm = _llm_pools(model_id, llm_uses, catalog, device_ids, cap, weight_dtypes, kv_dtypes, engine, queue)
        if slow_factor is not None:
            for pool in llm:
                derate_to_slow_end(pool, slow_factor)
        pools.extend(llm)
    for (kind, model_id), encoder_uses in encoder_steps.items():
        pools.append(_encoder_pool(kind, model_id, encoder_uses, catalog, device_ids))
    if tool_refs:
        pools.append(_tool_pool(tool_refs, catalog, device_ids))
    rates = {StepRef(wf.id, s.id): wf.arrival_rate_rps * s.repeat for wf in workflows for s in wf.steps}
    for pool in pools:
        pool.step_calls_per_s = {r: rates[r] for r in pool.steps}
        pool.calls_per_s = float(sum(pool.step_calls_per_s.values()))
        pool.percentile = {r: queued[r] for r in pool.steps if r in queued}
        pool.queueing = bool(pool.percentile)
        served_only_percentiles = len(pool.percentile) == len(pool.steps)
        pool.utilisation_cap = queueing_cap if pool.queueing and served_only_percentiles else max_utilisation
        if pool.queueing:
            attach_queueing_curves(pool)
    return pools


def _llm_pools(
    model_id: str,
    uses: list[tuple[Workflow, LlmStep]],
    catalog: Catalog,
    device_ids: list[str],
    u_max: float,
    weight_dtypes: list[Dtype] | None = None,
    kv_dtypes: list[Dtype] | None = None,
    engine: dict[str, ServingParams] | None = None,
    queueing: bool = False,
) -> list[Pool]:
    model = catalog.model(model_id)
    devices = _devices_for(catalog, device_ids)
    terms = [engine[d.id] for d in devices] if engine is not None else None
    # Per request before its first token, outside every pass (engine_terms.ServingParams.ttft_overhead_s): a
    # latency only, it takes no replica time. Indexed like the menus' device_index.
    ttft_overhead_s = np.array([t.ttft_overhead_s for t in terms]) if terms is not None else np.zeros(len(devices))
    refs = [StepRef(wf.id, s.id) for wf, s in uses]
    execs = np.array([wf.arrival_rate_rps * s.repeat for wf, s in uses])
    ctx = [_llm_step_contexts(s) for _, s in uses]
    shape = llm_pool_shape(execs, ctx, [float(s.output_tokens) for _, s in uses])
    prefill_demand, decode_demand, mean = shape.prefill_tokens_per_s, shape.decode_tokens_per_s, shape.mean_call
    dtypes = list(dict.fromkeys([model.weight_dtype, *(weight_dtypes or [])]))
    kvs = model_kv_dtypes(model.kv_dtype, kv_dtypes)
    pre = Pool(
        f"{model_id}:prefill",
        Phase.prefill,
        "prefill_tokens",
        prefill_demand,
        model_id,
        refs,
        family=model_id,
        route=DISAGGREGATED,
    )
    dec = Pool(
        f"{model_id}:decode",
        Phase.decode,
        "decode_tokens",
        decode_demand,
        model_id,
        refs,
        family=model_id,
        route=DISAGGREGATED,
    )
    col = Pool(
        f"{model_id}:colocated",
        Phase.colocated,
        "calls",
        float(execs.sum()),
        model_id,
        refs,
        family=model_id,
        route=COLOCATED,
    )

    def menu(phase: str, batches: tuple[int, ...], prompt: float, cached: float, context: float) -> Menu:
        return evaluate_menu(
            model,
            phase,
            devices,
            TENSOR_PARALLEL,
            batches,
            dtypes,
            prompt,
            cached,
            context,
            kv_dtypes=kvs,
            engine=terms,
        )

    # Pool throughput at the demand-weighted mean shape; each step's latency at its own shape.
    cap_pre = menu("prefill", PREFILL_BATCHES, mean.prompt_tokens, mean.cached_tokens, 0)
    cap_dec = menu("decode", DECODE_BATCHES, 0, 0, mean.decode_context_tokens)
    lat_pre = [menu("prefill", PREFILL_BATCHES, c.prompt_tokens, c.cached_tokens, 0) for c in ctx]
    lat_dec = [menu("decode", DECODE_BATCHES, 0, 0, c.decode_context_tokens) for c in ctx]
    for i in range(len(cap_pre)):
        # A config must fit every served step's own shape, not only the pool's mean shape.
        if cap_pre.fits[i] and all(m.fits[i] and np.isfinite(m.latency_s[i]) for m in lat_pre):
            front_s = float(ttft_overhead_s[int(cap_pre.device_index[i])])
            latency = {r: float(m.latency_s[i]) + front_s for r, m in zip(refs, lat_pre, strict=True)}
            pre.configs.append(_config(pre.id, cap_pre, i, latency, model.kv_dtype))
    # Disaggregated serving: each execution's KV cache moves from its prefill replica, assumed on another node
    # (NIC), to the decode replica — a conservative bound that holds whichever prefill device is chosen. The bytes
    # are those of the decode config's KV dtype, which the prefill configs of the route share (formulation).
    transfer_s = {kv.value: _kv_transfer_s(model, kv, uses, devices) for kv in kvs}
    for i in range(len(cap_dec)):
        if not (cap_dec.fits[i] and all(m.fits[i] for m in lat_dec)):
            continue
        latency = {r: float(m.latency_s[i]) * s.output_tokens for r, m, (_, s) in zip(refs, lat_dec, uses, strict=True)}
        cfg = _config(dec.id, cap_dec, i, latency, model.kv_dtype)
        moved = transfer_s[str(cap_dec.kv_dtype[i])]
        cfg.extra_s = {r: float(moved[k, int(cap_dec.device_index[i])]) for k, r in enumerate(refs)}
        dec.configs.append(cfg)
    demands = (prefill_demand, decode_demand)
    levels = [1.0] if queueing else levels_below(u_max)
    col.configs = _colocated_configs(
        col, cap_pre, lat_pre, cap_dec, lat_dec, demands, uses, levels, model.kv_dtype, ttft_overhead_s, queueing
    )
    return [pre, dec, col]


def derate_to_slow_end(pool: Pool, slow_factor: dict[str, float]) -> None:
    """Robust planning: each LLM config at the slow end of its device's error band — compute latency × f and
    throughput ÷ f, f = 1 + band (capacity is derated too: a device that runs slower serves less). The KV transfer
    (`extra_s`, a NIC bound, not the serving estimate) stays. A co-located replica's prefill share, hence its stall
    factor, is unchanged when both phases slow by f, so its latency scales by f as well. f = 1 changes no bit."""
    for c in pool.configs:
        f = slow_factor[c.device]
        c.nominal_latency_s = dict(c.latency_s)
        c.latency_s = {r: t * f for r, t in c.latency_s.items()}
        c.decode_s = {r: t * f for r, t in c.decode_s.items()}
        c.throughput = c.throughput / f
        c.slow_factor = f


def model_kv_dtypes(own: Dtype, allowed: list[Dtype] | None) -> list[Dtype]:
    """The KV dtypes on a model's menu: its own first, then the scenario's allowed ones (no repeats)."""
    return list(dict.fromkeys([own, *(allowed or [])]))


def _kv_transfer_s(model: ModelArch, kv: Dtype, uses: list[tuple[Workflow, LlmStep]], devices: list[Device]):
    """Seconds to move each step's prompt KV (rows) to a decode replica on each device (columns), in `kv`."""
    kv_per_token = float(kv_bytes_per_token(model, Precision(model.weight_dtype, kv)))
    kv_bytes = np.array([[kv_per_token * s.prompt_tokens] for _, s in uses])  # one row per step
    return kv_transfer_time(kv_bytes, False, DeviceArrays.of(devices, [model.weight_dtype] * len(devices)))


def _colocated_configs(
    col: Pool,
    cap_pre,
    lat_pre,
    cap_dec,
    lat_dec,
    demands,
    uses,
    levels: list[float],
    own_kv: Dtype,
    ttft_overhead_s,
    queueing: bool = False,
) -> list[Config]:
    """Co-located replicas: prefill at batch 1 beside a decode batch on the same devices (see module docstring).

    Throughput is in LLM calls / s: a replica needs prefill_demand/θ_prefill + decode_demand/θ_decode seconds of
    work per second to serve all of the model's traffic. One config per load level u: its stall factor
    1 / (1 − u·φ) holds for any load up to u, and it counts for capacity at min(u, cap). The last level is the one
    the cap rounds up to; the levels below it carry a tag in their key. In a queueing pool (`queueing`) the config
    is priced without stall: its curves add the stall at the actual load per replica count."""
    prefill_demand, decode_demand = demands

    def same_replica(menu, i: int) -> tuple[int, int, str, str]:
        return int(menu.device_index[i]), int(menu.tp[i]), str(menu.weight_dtype[i]), str(menu.kv_dtype[i])

    prefill_at_batch1 = {
        same_replica(cap_pre, i): i
        for i in range(len(cap_pre))
        if cap_pre.batch[i] == 1 and cap_pre.fits[i] and all(m.fits[i] and np.isfinite(m.latency_s[i]) for m in lat_pre)
    }
    configs: list[Config] = []
    below: list[Config] = []  # lower load levels go after every config at the cap's level (today's order first)
    for i in range(len(cap_dec)):
        j = prefill_at_batch1.get(same_replica(cap_dec, i))
        if j is None or not (cap_dec.fits[i] and all(m.fits[i] for m in lat_dec)):
            continue
        prefill_busy = prefill_demand / float(cap_pre.throughput[j])
        busy = prefill_busy + decode_demand / float(cap_dec.throughput[i])
        phi = prefill_busy / busy
        front_s = float(ttft_overhead_s[int(cap_pre.device_index[j])])
        decode_s = {
            r: float(md.latency_s[i]) * s.output_tokens for r, md, (_, s) in zip(col.steps, lat_dec, uses, strict=True)
        }
        for n, level in enumerate(levels):
            stall = 1.0 if queueing else 1.0 / (1.0 - level * phi)
            latency = {
                r: float(mp.latency_s[j]) + front_s + decode_s[r] * stall
                for r, mp in zip(col.steps, lat_pre, strict=True)
            }
            cfg = _config(col.id, cap_dec, i, latency, own_kv)
            cfg.throughput = col.demand / busy
            cfg.load_limit = level
            cfg.decode_s, cfg.prefill_share = decode_s, phi
            top = n == len(levels) - 1
            cfg.level_tag = "" if top else f"|u{level:g}"
            (configs if top else below).append(cfg)
    return configs + below


def _config(pool_id: str, menu, i: int, latency: dict[StepRef, float], own_kv: Dtype) -> Config:
    kv = str(menu.kv_dtype[i])
    return Config(
        pool_id,
        menu.device_ids[int(menu.device_index[i])],
        int(menu.tp[i]),
        int(menu.batch[i]),
        str(menu.weight_dtype[i]),
        float(menu.throughput[i]),
        latency,
        kv_dtype=kv,
        kv_is_models_own=kv == own_kv.value,
        servers=int(menu.batch[i]),
    )


def _encoder_pool(
    kind: str,
    model_id: str,
    uses: list[tuple[Workflow, EmbedStep | ConvertStep]],
    catalog: Catalog,
    device_ids: list[str],
) -> Pool:
    model = catalog.model(model_id)
    refs = [StepRef(wf.id, s.id) for wf, s in uses]

    def tokens(s: EmbedStep | ConvertStep) -> int:
        return encoder_tokens_per_item(model, s.tokens_per_item if isinstance(s, EmbedStep) else None)

    demand = float(sum(wf.arrival_rate_rps * s.repeat * s.items for wf, s in uses))
    pool = Pool(f"{kind}:{model_id}", Phase(kind), "items", demand, model_id, refs)
    devices = [
        d
        for d in _devices_for(catalog, device_ids)
        if d.supports(model.weight_dtype) or d.supports("bf16") or d.supports("fp16")
    ]
    mean_tokens = round(sum(wf.arrival_rate_rps * s.repeat * s.items * tokens(s) for wf, s in uses) / demand)
    for batch in ENCODER_BATCHES:
        cap = encoder_cost(model, devices, batch, mean_tokens)
        per_step = [encoder_cost(model, devices, batch * s.items, tokens(s)) for _, s in uses]
        for j, dev in enumerate(devices):
            if not (cap.fits[j] and all(p.fits[j] for p in per_step)) or not np.isfinite(cap.latency_s[j]):
                continue
            latency = {r: float(p.latency_s[j]) for r, p in zip(refs, per_step, strict=True)}
            thr = batch / float(cap.latency_s[j])
            dtype = model.weight_dtype.value
            pool.configs.append(Config(pool.id, dev.id, 1, batch, dtype, thr, latency, servers=batch))
    return pool


def _retrieval_pool(wf: Workflow, step: RetrievalStep, catalog: Catalog, device_ids: list[str]) -> Pool:
    ref = StepRef(wf.id, step.id)
    demand = wf.arrival_rate_rps * step.repeat * step.queries
    pool = Pool(
        f"retrieval:{wf.id}.{step.id}", Phase.retrieval, "queries", demand, None, [ref], workflow=wf.id, step=step.id
    )
    devices = _devices_for(catalog, device_ids)
    cost = retrieval_cost(
        devices, step.corpus_vectors, step.dim, step.top_k, step.index, step.vector_dtype.value, step.queries
    )
    for j, dev in enumerate(devices):
        if cost.fits[j] and np.isfinite(cost.latency_s[j]):
            pool.configs.append(
                Config(
                    pool.id, dev.id, 1, 1, None, step.queries / float(cost.busy_s[j]), {ref: float(cost.latency_s[j])}
                )
            )
    return pool


def _tool_pool(uses: list[tuple[Workflow, ToolStep]], catalog: Catalog, device_ids: list[str]) -> Pool:
    refs = [StepRef(wf.id, s.id) for wf, s in uses]
    demand = float(sum(wf.arrival_rate_rps * s.repeat * s.cpu_s for wf, s in uses))
    pool = Pool("tool:cpu", Phase.tool, "cpu_seconds", demand, None, refs)
    pool.cpu_s = {r: s.cpu_s for r, (_, s) in zip(refs, uses, strict=True)}
    cpus = _devices_for(catalog, device_ids, {DeviceKind.cpu})
    for dev in cpus:
        costs = [tool_cost([dev], s.latency_s, s.cpu_s) for _, s in uses]
        pool.configs.append(
            Config(
                pool.id,
                dev.id,
                1,
                1,
                None,
                float(dev.cores or 0),  # the catalog requires cores on every CPU
                {r: float(c.latency_s[0]) for r, c in zip(refs, costs, strict=True)},
                servers=int(dev.cores or 1),
            )
        )
    return pool


# ---- Queueing pools (percentile SLAs) ----------------------------------------------------------------------


def service_time_proxies_s(pool: Pool, c: Config) -> dict[StepRef, float]:
    """Each served step's relative service time on a config, for the variability of the pool's service time: its
    latency without transfer (a tool call: its CPU-seconds, the part that holds a core)."""
    return {r: pool.cpu_s[r] if pool.cpu_s else c.latency_s[r] for r in pool.steps}


def queue_service(pool: Pool, c: Config) -> tuple[float, float]:
    """(mean service time of one request on one server, its squared coefficient of variation) for a config: the
    pool's work per request over the throughput of one of its `servers` slots, and the SCV of the mix of steps."""
    service_s = c.servers * (pool.demand / pool.calls_per_s) / c.throughput
    proxies = service_time_proxies_s(pool, c)
    scv = mixture_scv([pool.step_calls_per_s[r] for r in pool.steps], [proxies[r] for r in pool.steps])
    return service_s, scv


def queue_extra_s(
    pool: Pool, c: Config, replicas: np.ndarray, wait_probability: np.ndarray | None = None
) -> tuple[dict[StepRef, np.ndarray], np.ndarray]:
    """Per served step, the latency a queueing pool adds at each replica count: the wait at the step's percentile
    (M/G/c with r · servers servers) and, on a co-located config, the prefill stall at the actual load λ/(r·θ);
    service-time steps get the stall only. Also: at which counts some percentile step still waits.
    `wait_probability` passes Erlang C at those counts in when it is already known."""
    service_s, scv = queue_service(pool, c)
    servers = replicas * c.servers
    if wait_probability is None:
        wait_probability = erlang_c(servers, pool.calls_per_s * service_s)
    load = pool.demand / (replicas * c.throughput)
    out: dict[StepRef, np.ndarray] = {}
    waiting = np.zeros(len(replicas), dtype=bool)
    for ref in pool.steps:
        extra = np.zeros(len(replicas))
        if ref in pool.percentile:
            extra = wait_percentile_s(
                pool.percentile[ref], servers, pool.calls_per_s, service_s, scv, wait_probability=wait_probability
            )
            waiting |= extra > 0
        if c.decode_s:
            with np.errstate(divide="ignore"):
                extra = extra + c.decode_s[ref] * (1.0 / (1.0 - load * c.prefill_share) - 1.0)
        out[ref] = extra
    return out, waiting


def exact_latency_s(pool: Pool, c: Config, ref: StepRef, replicas: int, nominal: bool = False) -> float:
    """A served step's per-execution latency with `replicas` replicas of `c`, queueing delay and stall at exactly
    that count (beyond a curve's end too), transfer included. `nominal`: a robust config at its nominal estimate
    (service, throughput and so the queue at nominal speed)."""
    if nominal and c.nominal_latency_s is not None:
        f = c.slow_factor
        c = replace(
            c,
            latency_s=dict(c.nominal_latency_s),
            throughput=c.throughput * f,
            decode_s={r: t / f for r, t in c.decode_s.items()},
            nominal_latency_s=None,
            curves=None if c.curves is None else {},
        )
        if c.curves is not None:
            extras, _ = queue_extra_s(pool, c, np.array([replicas]))
            return c.latency_s[ref] + c.extra_s.get(ref, 0.0) + float(extras[ref][0])
    if not c.curves:
        return c.latency_s[ref] + c.extra_s.get(ref, 0.0)
    if replicas <= c.curve_end_replicas:
        return c.latency_at(ref, replicas)
    extras, _ = queue_extra_s(pool, c, np.array([replicas]))
    return c.latency_s[ref] + c.extra_s.get(ref, 0.0) + float(extras[ref][0])


def _chord_points(values: np.ndarray) -> tuple[int, ...]:
    """Indices of a piecewise-linear interpolation of `values` (one per integer) that is ≥ every value: chords are
    extended greedily as far as they stay on or above the values in between."""
    points = [0]
    i, n = 0, len(values)
    while i < n - 1:
        j = i + 1
        while j + 1 < n:
            k = np.arange(i, j + 2)
            chord = values[i] + (values[j + 1] - values[i]) * (k - i) / (j + 1 - i)
            if np.any(chord < values[k] - 1e-12 * max(1.0, abs(float(values[i])))):
                break
            j += 1
        points.append(j)
        i = j
    return tuple(points)


def attach_queueing_curves(pool: Pool) -> None:
    """Give every config of a queueing pool its replica curves: from the least stable replica count (r·θ > λ) to
    the first count where the queue delays no step's percentile any more, at most QUEUE_SCAN_REPLICAS further.
    Beyond that end the extras only fall (more servers, less load), so the formulation charges the last value
    there. The end does not depend on the utilisation cap, so relaxing the cap keeps every curve. A config whose
    curve is not finite is dropped. Erlang C is evaluated for all the pool's configs at once, in widening spans."""
    configs = [c for c in pool.configs if c.throughput > 0]
    first = np.array([max(1, math.floor(pool.demand / c.throughput) + 1) for c in configs], dtype=np.int64)
    slots = np.array([c.servers for c in configs], dtype=np.int64)
    offered = np.array([pool.calls_per_s * queue_service(pool, c)[0] for c in configs])
    pending = list(range(len(configs)))
    found: dict[int, tuple[np.ndarray, dict[StepRef, np.ndarray], np.ndarray]] = {}
    span = 8
    while pending:
        idx = np.array(pending)
        reps = first[idx, None] + np.arange(span)[None, :]
        wait_p = erlang_c(reps * slots[idx, None], np.broadcast_to(offered[idx, None], reps.shape))
        still = []
        for row, i in enumerate(pending):
            extras, waiting = queue_extra_s(pool, configs[i], reps[row], wait_p[row])
            if waiting.all() and span <= QUEUE_SCAN_REPLICAS:
                still.append(i)
            else:
                found[i] = (reps[row], extras, waiting)
        pending = still
        span *= 4
    kept = []
    for i, c in enumerate(configs):
        _, extras, waiting = found[i]
        stop = int(np.argmin(waiting)) if not waiting.all() else len(waiting) - 1
        curves = {}
        for ref, e in extras.items():
            vals = e[: stop + 1]
            if not np.all(np.isfinite(vals)):
                break
            curves[ref] = ReplicaCurve(int(first[i]), tuple(float(v) for v in vals), _chord_points(vals))
        else:
            c.curves = curves
            kept.append(c)
    pool.configs = kept
