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
                 stretched by 1 / (1 − u_max · φ), φ = the replica's busy-time share spent on prefill. No KV transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hetplace.catalogs.loader import Catalog
from hetplace.catalogs.schema import Device, DeviceKind, Dtype, ModelArch
from hetplace.common.enums import Phase
from hetplace.costmodels.engine_terms import ServingParams
from hetplace.costmodels.llm_ops import kv_bytes_per_token
from hetplace.costmodels.llm_perf import Menu, evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, encoder_tokens_per_item, retrieval_cost, tool_cost
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.roofline import DeviceArrays, kv_transfer_time
from hetplace.costmodels.step_shape import LlmCallShape, llm_call_shape, llm_pool_shape
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, ToolStep, Workflow

PREFILL_BATCHES = (1, 2, 4, 8)
DECODE_BATCHES = (1, 4, 16, 32, 64, 128, 256)
TENSOR_PARALLEL = (1, 2, 4, 8)
ENCODER_BATCHES = (1, 8, 32)  # calls batched together on an encoder replica


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

    @property
    def key(self) -> str:
        """Unique within the model; a KV dtype other than the model's own is appended (keys of today's menus stay)."""
        kv = "" if self.kv_is_models_own else f"|kv-{self.kv_dtype}"
        return f"{self.pool}|{self.device}|tp{self.tp}|b{self.batch}|{self.dtype or '-'}{kv}"


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
) -> list[Pool]:
    """Every pool with its demand and its menu of feasible configs on the offered devices. `max_utilisation` is
    the load pools are sized for; co-located replicas need it for their prefill stall. `weight_dtypes` lets LLM
    weights be served in other quantisations too (the scenario's allowed_weight_dtypes), `kv_dtypes` their KV
    caches be stored in other formats (allowed_kv_dtypes); the model's own dtypes are always on the menu.
    `engine` prices LLM menus with each device's serving terms (None = plain roofline); `slow_factor` (robust
    planning, device → 1 + error band) prices LLM configs at the slow end (`derate_to_slow_end`)."""
    llm_steps: dict[str, list[tuple[Workflow, LlmStep]]] = {}
    encoder_steps: dict[tuple[str, str], list[tuple[Workflow, EmbedStep | ConvertStep]]] = {}
    pools: list[Pool] = []
    tool_refs: list[tuple[Workflow, ToolStep]] = []
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
        llm = _llm_pools(model_id, llm_uses, catalog, device_ids, max_utilisation, weight_dtypes, kv_dtypes, engine)
        if slow_factor is not None:
            for pool in llm:
                derate_to_slow_end(pool, slow_factor)
        pools.extend(llm)
    for (kind, model_id), encoder_uses in encoder_steps.items():
        pools.append(_encoder_pool(kind, model_id, encoder_uses, catalog, device_ids))
    if tool_refs:
        pools.append(_tool_pool(tool_refs, catalog, device_ids))
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
    col.configs = _colocated_configs(
        col, cap_pre, lat_pre, cap_dec, lat_dec, demands, uses, u_max, model.kv_dtype, ttft_overhead_s
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
        c.throughput = c.throughput / f


def model_kv_dtypes(own: Dtype, allowed: list[Dtype] | None) -> list[Dtype]:
    """The KV dtypes on a model's menu: its own first, then the scenario's allowed ones (no repeats)."""
    return list(dict.fromkeys([own, *(allowed or [])]))


def _kv_transfer_s(model: ModelArch, kv: Dtype, uses: list[tuple[Workflow, LlmStep]], devices: list[Device]):
    """Seconds to move each step's prompt KV (rows) to a decode replica on each device (columns), in `kv`."""
    kv_per_token = float(kv_bytes_per_token(model, Precision(model.weight_dtype, kv)))
    kv_bytes = np.array([[kv_per_token * s.prompt_tokens] for _, s in uses])  # one row per step
    return kv_transfer_time(kv_bytes, False, DeviceArrays.of(devices, [model.weight_dtype] * len(devices)))


def _colocated_configs(
    col: Pool, cap_pre, lat_pre, cap_dec, lat_dec, demands, uses, u_max: float, own_kv: Dtype, ttft_overhead_s
) -> list[Config]:
    """Co-located replicas: prefill at batch 1 beside a decode batch on the same devices (see module docstring).

    Throughput is in LLM calls / s: a replica needs prefill_demand/θ_prefill + decode_demand/θ_decode seconds of
    work per second to serve all of the model's traffic. The stall factor uses u_max, the most load a replica is
    sized for, so it is an upper bound."""
    prefill_demand, decode_demand = demands

    def same_replica(menu, i: int) -> tuple[int, int, str, str]:
        return int(menu.device_index[i]), int(menu.tp[i]), str(menu.weight_dtype[i]), str(menu.kv_dtype[i])

    prefill_at_batch1 = {
        same_replica(cap_pre, i): i
        for i in range(len(cap_pre))
        if cap_pre.batch[i] == 1 and cap_pre.fits[i] and all(m.fits[i] and np.isfinite(m.latency_s[i]) for m in lat_pre)
    }
    configs = []
    for i in range(len(cap_dec)):
        j = prefill_at_batch1.get(same_replica(cap_dec, i))
        if j is None or not (cap_dec.fits[i] and all(m.fits[i] for m in lat_dec)):
            continue
        prefill_busy = prefill_demand / float(cap_pre.throughput[j])
        busy = prefill_busy + decode_demand / float(cap_dec.throughput[i])
        stall = 1.0 / (1.0 - u_max * prefill_busy / busy)
        front_s = float(ttft_overhead_s[int(cap_pre.device_index[j])])
        latency = {
            r: float(mp.latency_s[j]) + front_s + float(md.latency_s[i]) * s.output_tokens * stall
            for r, mp, md, (_, s) in zip(col.steps, lat_pre, lat_dec, uses, strict=True)
        }
        configs.append(_config(col.id, cap_dec, i, latency, own_kv))
        configs[-1].throughput = col.demand / busy
    return configs


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
            pool.configs.append(
                Config(pool.id, dev.id, 1, batch, model.weight_dtype.value, batch / float(cap.latency_s[j]), latency)
            )
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
            )
        )
    return pool
