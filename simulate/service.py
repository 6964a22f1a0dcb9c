"""Service-time tables of a plan's pools, from the same cost-model functions the optimizer prices menus with.

The simulator cannot import the optimizer (layers), so it re-reads the plan's pool assignments and evaluates each
config with `costmodels` directly — `evaluate_menu` for LLM passes, `encoder_cost`, `retrieval_cost`,
`kv_transfer_time` — at the same token shapes (`costmodels.step_shape.llm_call_shape`, the mean call over a step's
repeats) and with the same engine terms (`serving_params`). Robust plans are simulated at the nominal estimate.

Tables per config (one replica):
  prefill   pass latency of k prompts of a step, k = 1..batch (a mixed pass: the mean over its prompts)
  decode    time of one decode step with n sequences in flight, n = 1..batch, linear in their mean context:
            a[n] + b[n]·context (two evaluations; decode is memory-bound, so the KV read is linear in context)
  colocated both: prefill at batch 1 (the optimizer's schedule) and the decode line at n = 1..batch
  encoder   pass latency of k calls of a step, k = 1..batch
  retrieval one execution's latency (one query batch at a time per replica)
  tool      the pool's cores; a call's wall time and CPU-seconds come from the step
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hetplace.catalogs.loader import load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.common.errors import InputError
from hetplace.costmodels.engine_terms import ServingParams, serving_params
from hetplace.costmodels.llm_ops import kv_bytes_per_token
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, encoder_tokens_per_item, retrieval_cost
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.roofline import DeviceArrays, kv_transfer_time
from hetplace.costmodels.step_shape import llm_call_shape
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, PoolAssignment
from hetplace.problems.schema import ConvertStep, EmbedStep, LlmStep, RetrievalStep, ToolStep

# Pool kinds of the engine.
BATCH, SLOTS, COLOCATED, CORES = "batch", "slots", "colocated", "cores"
MIN_CONTEXT_SPAN = 1024.0  # tokens between the two decode evaluations when every step has the same context


@dataclass(frozen=True)
class StepKey:
    workflow: str
    step: str


@dataclass
class ConfigTable:
    """One config of a pool (all its replicas share it)."""

    label: str  # device/tp/batch, for reports
    device: str
    replicas: int
    batch: int
    # BATCH pools: step -> latency of a pass of k = 1..batch calls (index k-1); COLOCATED: prefill at batch 1 in [0]
    pass_s: dict[StepKey, list[float]] = field(default_factory=dict)
    # SLOTS / COLOCATED: decode step time a[n] + b[n]·context, n = 1..batch (index n-1)
    step_a_s: list[float] = field(default_factory=list)
    step_b_s: list[float] = field(default_factory=list)
    front_s: float = 0.0  # engine's per-request time before the first token (a delay, no replica time)
    cores: int = 0  # CORES pools: cores of all replicas of this config


@dataclass
class PoolTable:
    """A plan pool as the simulator serves it."""

    id: str
    kind: str  # BATCH, SLOTS, COLOCATED or CORES
    configs: list[ConfigTable]
    model: str | None = None
    transfer_s: dict[StepKey, float] = field(default_factory=dict)  # SLOTS (decode): KV moved before decoding

    @property
    def replicas(self) -> int:
        return sum(c.replicas for c in self.configs)


@dataclass
class LlmRouting:
    """How one model's calls are served: co-located with probability `colocated_share`, else disaggregated."""

    colocated_share: float
    prefill: str | None
    decode: str | None
    colocated: str | None


@dataclass
class ServiceModel:
    pools: dict[str, PoolTable]
    llm: dict[str, LlmRouting]  # model id -> routing
    step_pool: dict[StepKey, str]  # non-LLM step -> its pool id


def _bad_plan(plan_src: str, where: str, msg: str) -> InputError:
    return InputError.single(plan_src, where, msg)


def build_service_model(resolved: ResolvedScenario, plan: Plan, plan_src: str = "plan") -> ServiceModel:
    """Service tables for every pool of `plan`, which must have been made for `resolved`'s scenario."""
    catalog = resolved.catalog
    engines = load_engines()
    by_pool: dict[str, list[tuple[int, PoolAssignment]]] = {}
    for i, a in enumerate(plan.pools):
        if a.device not in catalog.devices:
            raise _bad_plan(plan_src, f"pools[{i}].device", f"unknown device '{a.device}'")
        by_pool.setdefault(a.pool, []).append((i, a))
    llm_uses: dict[str, list[tuple[str, LlmStep, float]]] = {}
    other_steps: dict[StepKey, ToolStep | RetrievalStep | EmbedStep | ConvertStep] = {}
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep):
                llm_uses.setdefault(s.model, []).append((wf.id, s, wf.arrival_rate_rps * s.repeat))
            else:
                other_steps[StepKey(wf.id, s.id)] = s
    pools: dict[str, PoolTable] = {}
    for pool_id, assignments in by_pool.items():
        first_i, first = assignments[0]
        where = f"pools[{first_i}]"
        phase = first.phase.value
        if phase in ("prefill", "decode", "colocated"):
            if first.model is None or first.model not in llm_uses:
                raise _bad_plan(plan_src, f"{where}.model", f"'{first.model}' is no LLM of the scenario's workflows")
            pools[pool_id] = _llm_pool(resolved, pool_id, phase, first.model, assignments, llm_uses, engines)
        elif phase in ("embed", "convert"):
            pools[pool_id] = _encoder_pool(resolved, pool_id, phase, first.model, assignments, other_steps, plan_src)
        elif phase == "retrieval":
            pools[pool_id] = _retrieval_pool(resolved, pool_id, assignments, other_steps, plan_src)
        else:
            cfgs = []
            for _, a in assignments:
                dev = catalog.device(a.device)
                cfgs.append(ConfigTable(_label(a), a.device, a.replicas, 1, cores=a.replicas * int(dev.cores or 0)))
            if not sum(c.cores for c in cfgs):
                raise _bad_plan(
                    plan_src, f"{where}.device", f"{pool_id}: tool calls need CPU cores, '{first.device}' has none"
                )
            pools[pool_id] = PoolTable(pool_id, CORES, cfgs)
    llm = {m: _routing(m, pools, plan, sum(r for _, _, r in uses)) for m, uses in llm_uses.items()}
    for m, r in llm.items():
        if r.colocated is None and (r.prefill is None or r.decode is None):
            raise _bad_plan(plan_src, "pools", f"model {m}: the plan serves it neither co-located nor disaggregated")
    step_pool: dict[StepKey, str] = {}
    for key, s in other_steps.items():
        pid = _non_llm_pool_id(key, s, pools)
        if pid is None:
            raise _bad_plan(plan_src, "pools", f"no pool serves step {key.workflow}.{key.step} ({s.kind})")
        step_pool[key] = pid
    return ServiceModel(pools, llm, step_pool)


def _label(a: PoolAssignment) -> str:
    return f"{a.device}/tp{a.tensor_parallel}/b{a.batch}"


def _non_llm_pool_id(key: StepKey, s: object, pools: dict[str, PoolTable]) -> str | None:
    if isinstance(s, ToolStep):
        return next((p.id for p in pools.values() if p.kind == CORES), None)
    if isinstance(s, RetrievalStep):
        pid = f"retrieval:{key.workflow}.{key.step}"
        return pid if pid in pools else None
    if isinstance(s, EmbedStep | ConvertStep):
        pid = f"{s.kind}:{s.model}"
        return pid if pid in pools else None
    return None


def _routing(model_id: str, pools: dict[str, PoolTable], plan: Plan, calls_per_s: float) -> LlmRouting:
    """The co-located share of a model's calls: the calls/s the plan's co-located assignments serve (their
    `demand`, in calls/s) over all the model's calls/s (arrival rate × repeat of every step calling it)."""
    pre, dec, col = (f"{model_id}:{p}" for p in ("prefill", "decode", "colocated"))
    if col not in pools:
        return LlmRouting(0.0, pre if pre in pools else None, dec if dec in pools else None, None)
    if pre not in pools or dec not in pools:
        return LlmRouting(1.0, None, None, col)
    col_calls = sum(a.demand for a in plan.pools if a.pool == col)
    share = col_calls / calls_per_s if calls_per_s > 0 else 1.0
    return LlmRouting(float(min(1.0, max(0.0, share))), pre, dec, col)


def _engine_terms(resolved: ResolvedScenario, device: str, engines: dict) -> ServingParams:
    return serving_params(device, resolved.scenario.engine, engines, resolved.calibration)


def _llm_pool(
    resolved: ResolvedScenario,
    pool_id: str,
    phase: str,
    model_id: str,
    assignments: list[tuple[int, PoolAssignment]],
    llm_uses: dict[str, list[tuple[str, LlmStep, float]]],
    engines: dict,
) -> PoolTable:
    model = resolved.catalog.model(model_id)
    uses = llm_uses[model_id]
    shapes = {
        StepKey(w, s.id): llm_call_shape(
            s.prompt_tokens, s.cached_prefix_tokens, s.output_tokens, s.repeat, s.prompt_growth_tokens_per_repeat
        )
        for w, s, _ in uses
    }
    ctx_lo = min(s.prompt_tokens + s.output_tokens / 2.0 for _, s, _ in uses)
    ctx_hi = max(
        s.prompt_tokens + s.prompt_growth_tokens_per_repeat * (s.repeat - 1) + s.output_tokens / 2.0 for _, s, _ in uses
    )
    if ctx_hi - ctx_lo < MIN_CONTEXT_SPAN:
        ctx_hi = ctx_lo + MIN_CONTEXT_SPAN
    kind = {"prefill": BATCH, "decode": SLOTS, "colocated": COLOCATED}[phase]
    table = PoolTable(pool_id, kind, [], model=model_id)
    for _, a in assignments:
        dev = resolved.catalog.device(a.device)
        dtype = Dtype(a.weight_dtype) if a.weight_dtype is not None else model.weight_dtype
        kv = Dtype(a.kv_dtype) if a.kv_dtype is not None else model.kv_dtype
        terms = _engine_terms(resolved, a.device, engines)
        cfg = ConfigTable(_label(a), a.device, a.replicas, a.batch, front_s=float(terms.ttft_overhead_s))

        def menu(
            ph: str,
            batches: list[int],
            prompt: float,
            cached: float,
            context: float,
            a=a,
            dev=dev,
            dtype=dtype,
            kv=kv,
            terms=terms,
        ) -> np.ndarray:
            m = evaluate_menu(
                model,
                ph,
                [dev],
                [a.tensor_parallel],
                batches,
                [dtype],
                prompt,
                cached,
                context,
                kv_dtypes=[kv],
                engine=[terms],
            )
            return np.asarray(m.latency_s, dtype=float)

        if phase in ("prefill", "colocated"):
            ks = list(range(1, a.batch + 1)) if phase == "prefill" else [1]
            for key, sh in shapes.items():
                cfg.pass_s[key] = [float(x) for x in menu("prefill", ks, sh.prompt_tokens, sh.cached_tokens, 0.0)]
        if phase in ("decode", "colocated"):
            ns = list(range(1, a.batch + 1))
            lo, hi = menu("decode", ns, 0, 0, ctx_lo), menu("decode", ns, 0, 0, ctx_hi)
            slope = (hi - lo) / (ctx_hi - ctx_lo)
            cfg.step_a_s = [float(x) for x in lo - slope * ctx_lo]
            cfg.step_b_s = [float(x) for x in slope]
        if phase == "decode":
            per_token = float(kv_bytes_per_token(model, Precision(dtype, kv)))
            table_dev = DeviceArrays.of([dev], [dtype])
            for w, s, _ in uses:
                moved = float(kv_transfer_time(np.array([per_token * s.prompt_tokens]), False, table_dev)[0])
                key = StepKey(w, s.id)
                table.transfer_s[key] = max(table.transfer_s.get(key, 0.0), moved)  # the slowest config, as planned
        table.configs.append(cfg)
    return table


def _encoder_pool(
    resolved: ResolvedScenario,
    pool_id: str,
    kind: str,
    model_id: str | None,
    assignments: list[tuple[int, PoolAssignment]],
    steps: dict[StepKey, ToolStep | RetrievalStep | EmbedStep | ConvertStep],
    plan_src: str,
) -> PoolTable:
    if model_id is None or model_id not in resolved.catalog.models:
        raise _bad_plan(plan_src, "pools", f"{pool_id}: unknown encoder model '{model_id}'")
    model = resolved.catalog.model(model_id)
    served = {
        k: s
        for k, s in steps.items()
        if isinstance(s, EmbedStep | ConvertStep) and s.kind == kind and s.model == model_id
    }
    table = PoolTable(pool_id, BATCH, [], model=model_id)
    for _, a in assignments:
        dev = resolved.catalog.device(a.device)
        cfg = ConfigTable(_label(a), a.device, a.replicas, a.batch)
        for key, s in served.items():
            tokens = encoder_tokens_per_item(model, s.tokens_per_item if isinstance(s, EmbedStep) else None)
            cfg.pass_s[key] = [
                float(encoder_cost(model, [dev], k * s.items, tokens).latency_s[0]) for k in range(1, a.batch + 1)
            ]
        table.configs.append(cfg)
    return table


def _retrieval_pool(
    resolved: ResolvedScenario,
    pool_id: str,
    assignments: list[tuple[int, PoolAssignment]],
    steps: dict[StepKey, ToolStep | RetrievalStep | EmbedStep | ConvertStep],
    plan_src: str,
) -> PoolTable:
    first = assignments[0][1]
    key = StepKey(first.workflow or "", first.step or "")
    if key not in steps:
        wf_id, _, step_id = pool_id.partition(":")[2].rpartition(".")
        key = StepKey(wf_id, step_id)
    s = steps.get(key)
    if not isinstance(s, RetrievalStep):
        raise _bad_plan(plan_src, "pools", f"{pool_id}: no retrieval step {key.workflow}.{key.step} in the scenario")
    table = PoolTable(pool_id, BATCH, [])
    for _, a in assignments:
        dev = resolved.catalog.device(a.device)
        cost = retrieval_cost([dev], s.corpus_vectors, s.dim, s.top_k, s.index, s.vector_dtype.value, s.queries)
        cfg = ConfigTable(_label(a), a.device, a.replicas, 1)
        cfg.pass_s[key] = [float(cost.latency_s[0])]
        table.configs.append(cfg)
    return table
