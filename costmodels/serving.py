"""Serving-level estimate of one deployment: TTFT, TPOT, end-to-end latency and output throughput of requests of
ISL prompt and OSL output tokens, built from the same forward passes the optimizer's menus price.

Modes (README "Serving estimate"):

- `batch` B — one static batch. All B prompts are prefilled in one pass: TTFT = that pass. Then OSL − 1 decode
  steps of B sequences, each priced at the mean context ISL + OSL/2: TPOT = that step.
  e2e = TTFT + (OSL − 1)·TPOT; throughput = B·OSL / e2e.
- `concurrency` C — steady-state continuous batching with C requests in flight. Each request is in flight for
  OSL steps, so on average n = C/OSL new prompts join per step. Their prefill is mixed into the step (chunked
  prefill / piggybacking, as vLLM, SGLang and TensorRT-LLM do): one forward pass over the C decode tokens at the
  mean context ISL + OSL/2 plus n·ISL prompt tokens, in which every operator reads its weights ONCE and does the
  work of all tokens (per operator: FLOPs add, bytes add minus the weights counted twice; GEMM rows add, so tile
  padding is paid on the joint GEMM; attention is one ragged kernel over all sequences, priced as a decode pass;
  collectives pay α once per call for the joint payload). TPOT = that mixed step.
  TTFT = TPOT/2 (a request arrives, on average, half-way through the step in flight) + the step it joins, which
  carries the C decode tokens and its whole prompt (one mixed step with n = 1).
  e2e = TTFT + (OSL − 1)·TPOT; throughput = C·OSL / e2e (Little's law: C requests each in flight for e2e).
  Engine limits (`limits`, capacity.EngineLimits from the engine's catalog `scheduler`; none for no engine):
  the step decodes d = min(C, the running cap, and — when decode and prefill share one step's token budget T —
  floor(T·OSL / (ISL + OSL)), the most sequences whose steady-state prompts still fit beside their decode tokens)
  sequences and prefills d/OSL prompts. A prompt longer than the step's room (T − d, or T when decode is not in
  the budget) is prefilled over k = ceil(ISL / room) steps (chunked prefill; k = 1 without it): TTFT = TPOT/2 +
  k · a step carrying the d decode tokens and 1/k of the prompt. The C − d requests beyond the decode batch wait
  for a slot: their wait, (C/d − 1) · (TTFT + (OSL − 1)·TPOT), is added to TTFT, so throughput = d·OSL / (TTFT +
  (OSL − 1)·TPOT at d) by Little's law over C.
  Ignored: preemption and recompute when the KV cache runs out, prefix caching, the spread of contexts around the
  mean, SGLang's separate prefill and decode batches (priced mixed, like vLLM), and vLLM's on-demand KV blocks
  (it may run more sequences than fit at ISL + OSL; this counts the peak). Routed MoE experts touched by decode
  and by prompt tokens are both paid (an upper bound on expert weight reads).
- `max-load` — C = the largest batch that runs: min(the KV capacity at context ISL + OSL
  (costmodels.capacity.max_batch), the engine's decode bound above), then as `concurrency`; `batch_bound_by`
  says which limit set it. Without an engine (`--engine none`) it is the plain KV capacity, the roofline's
  reference. `batch` mode (one static batch) applies no engine limit.

`fits` compares the batch (B, or the decode batch d) with max_batch at context ISL + OSL, the peak a request reaches.
Engine terms (engine_terms.ServingParams) apply to every pass (ttft_overhead_s: once to every request's TTFT);
`terms` reports, per named term, how many seconds it alone adds to TTFT, TPOT and e2e over the neutral roofline
(terms that touch the same operator interact, so the sum of the terms can differ slightly from the total minus
the roofline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hetplace.catalogs.schema import Device, ModelArch
from hetplace.common.errors import InputError
from hetplace.costmodels.arrays import FloatArray, Floats
from hetplace.costmodels.capacity import NO_LIMITS, EngineLimits, max_batch
from hetplace.costmodels.engine_terms import NEUTRAL, TERMS, EngineArrays, ServingParams, isolate, pass_overhead_s
from hetplace.costmodels.llm_ops import Operator, Shape, llm_operators
from hetplace.costmodels.llm_perf import feasible_tp
from hetplace.costmodels.precision import Precision, unsupported_reason
from hetplace.costmodels.roofline import DeviceArrays, time_operators, total_latency


class ServingMode(StrEnum):
    batch = "batch"
    concurrency = "concurrency"
    max_load = "max-load"


BOUND_LOAD = "load"  # the batch is the load asked for (B, or C within every limit)
BOUND_KV = "kv_capacity"  # max-load: the KV cache at context ISL + OSL
BOUND_RUNNING = "engine_max_running_seqs"  # the engine's cap on sequences running at once
BOUND_BUDGET = "engine_max_tokens_per_step"  # the engine's token budget per step, in steady state


@dataclass(frozen=True)
class ServingEstimate:
    """Per-request latencies and per-replica output throughput of one deployment (seconds, tokens/s)."""

    mode: str
    batch: float  # sequences per decode step: B, C, or the max-load C
    ttft_s: float
    tpot_s: float
    e2e_latency_s: float
    output_tokens_per_s: float  # per replica (tp devices)
    output_tokens_per_s_per_device: float
    prefill_prompts_per_step: float  # concurrency: C/OSL prompts mixed into each step; batch: 0
    fits: bool  # batch ≤ max_batch at context ISL + OSL
    max_batch: float  # sequences whose KV cache at context ISL + OSL fits on the replica
    terms: dict[str, dict[str, float]]  # term → {"ttft_s", "tpot_s", "e2e_latency_s"}: seconds the term alone adds
    in_flight: float = 0.0  # requests in flight: B, C, or the max-load batch; above `batch` they wait for a slot
    batch_bound_by: str = BOUND_LOAD  # what set `batch`: the load, the KV capacity or an engine limit
    engine_max_running_seqs: float = math.inf  # the engine's limits on this deployment (inf: none)
    engine_max_tokens_per_step: float = math.inf
    prefill_chunks: float = 1.0  # steps one prompt is prefilled over (chunked prefill under the token budget)

    def as_dict(self) -> dict[str, object]:
        """The `serving` object of `hetplace analyze --json`."""
        return {
            "mode": self.mode,
            "batch": self.batch,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_latency_s": self.e2e_latency_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "output_tokens_per_s_per_device": self.output_tokens_per_s_per_device,
            "prefill_prompts_per_step": self.prefill_prompts_per_step,
            "fits": self.fits,
            "max_batch": self.max_batch,
            "in_flight": self.in_flight,
            "batch_bound_by": self.batch_bound_by,
            "engine_limits": {
                "max_running_seqs": _finite(self.engine_max_running_seqs),
                "max_tokens_per_step": _finite(self.engine_max_tokens_per_step),
            },
            "prefill_chunks": self.prefill_chunks,
            "terms": self.terms,
        }


def _finite(x: float) -> float | None:
    """JSON has no infinity: no limit is null."""
    return x if math.isfinite(x) else None


def _merge(dec: Operator, pre: Operator, weights: Operator) -> Operator:
    """One operator doing the work of a decode and a prefill operator in a single kernel: FLOPs and bytes add,
    the weights (the bytes of a zero-token pass) are read once, GEMM rows add."""
    rows = dec.gemm_m + pre.gemm_m if dec.gemm_m is not None and pre.gemm_m is not None else None
    return Operator(
        dec.name,
        dec.kind,
        dec.flops + pre.flops,
        dec.bytes + pre.bytes - weights.bytes,
        dec.cf_bytes + pre.cf_bytes - weights.cf_bytes,
        dec.layers,
        dec.collectives,
        rows,
        dec.gemm_n,
    )


@dataclass(frozen=True)
class ServingPasses:
    """The two forward passes a mode is priced by, for one load or an array of loads. Their operators do not depend
    on the engine terms, so a fit builds them once and times them under many parameter sets (serving_fit)."""

    mode: ServingMode
    isl: float
    first: list[Operator]  # one of the steps that carry a request's prompt (TTFT); `chunks` of them
    step: list[Operator]  # a steady-state step (TPOT)
    osl: float = 1.0
    batch: FloatArray | None = None  # sequences decoded per step (continuous batching: ≤ the engine's caps)
    in_flight: FloatArray | None = None  # requests in flight (the load); above `batch`, the rest wait for a slot
    chunks: FloatArray | None = None  # steps a prompt is split over (chunked prefill under a token budget)


def decode_batch_bound(limits: EngineLimits, isl: float, osl: float) -> tuple[float, str]:
    """The most sequences an engine decodes per step, and which limit sets it: its running cap, or — when decode
    and prefill share one step's token budget T (vLLM, TensorRT-LLM) — the steady state's d + (d/OSL)·ISL ≤ T
    (each finished request is replaced by one whose ISL prompt tokens must fit beside the d decode tokens)."""
    by_budget = math.inf
    if limits.decode_tokens_in_budget and math.isfinite(limits.max_tokens_per_step):
        by_budget = max(1.0, math.floor(limits.max_tokens_per_step * osl / (isl + osl)))
    if by_budget < limits.max_running_seqs:
        return by_budget, BOUND_BUDGET
    return limits.max_running_seqs, BOUND_RUNNING


def prompt_chunks(limits: EngineLimits, isl: float, batch: Floats) -> FloatArray:
    """Steps one prompt is prefilled over: ceil(ISL / room), room = the token budget less the step's decode tokens
    when they share it (vLLM schedules running requests first), 1 without chunked prefill or a budget."""
    batch = np.asarray(batch, dtype=float)
    if not limits.chunked_prefill or not math.isfinite(limits.max_tokens_per_step):
        return np.ones_like(batch)
    room = limits.max_tokens_per_step - (batch if limits.decode_tokens_in_budget else 0.0 * batch)
    return np.ceil(isl / np.maximum(room, 1.0))


def serving_passes(
    model: ModelArch,
    precision: Precision,
    tp: float,
    isl: float,
    osl: float,
    mode: ServingMode,
    load: FloatArray,
    limits: EngineLimits = NO_LIMITS,
) -> ServingPasses:
    """`batch`: prefill of `load` prompts, then decode steps of `load` sequences at the mean context (engine limits
    do not apply: one static batch). Otherwise a continuous-batching step: d = min(load, the engine's decode
    bound) decode tokens at the mean context plus d/OSL prompts mixed into the same pass (module docstring); a
    request's prompt rides on `chunks` such steps, 1/chunks of it in each."""
    context = isl + osl / 2.0
    load = np.asarray(load, dtype=float)
    if mode == ServingMode.batch:
        return ServingPasses(
            mode,
            isl,
            llm_operators(model, Shape.of(load, isl, 0, tp), precision),
            llm_operators(model, Shape.of(load, 1, context, tp), precision),
            osl,
            load,
            load,
            np.ones_like(load),
        )
    batch = np.minimum(load, decode_batch_bound(limits, isl, osl)[0])
    chunks = prompt_chunks(limits, isl, batch)
    return ServingPasses(
        mode,
        isl,
        mixed_step_operators(model, precision, tp, batch, context, 1.0 / chunks, isl),
        mixed_step_operators(model, precision, tp, batch, context, batch / osl, isl),
        osl,
        batch,
        load,
        chunks,
    )


def mixed_step_operators(
    model: ModelArch, precision: Precision, tp: float, decode_seqs: Floats, context: float, prompts: Floats, isl: float
) -> list[Operator]:
    """A continuous-batching step: `decode_seqs` decode tokens at `context` plus `prompts` (may be fractional)
    prompts of `isl` tokens prefilled in the same forward pass, each operator reading its weights once."""
    dec = llm_operators(model, Shape.of(decode_seqs, 1, context, tp), precision)
    pre = llm_operators(model, Shape.of(prompts, isl, 0, tp), precision)
    zero = llm_operators(model, Shape.of(0.0 * np.asarray(prompts, dtype=float), isl, 0, tp), precision)
    return [_merge(d, pr, z) for d, pr, z in zip(dec, pre, zero, strict=True)]


def mixed_step_s(
    model: ModelArch,
    precision: Precision,
    device: Device,
    tp: int,
    decode_seqs: float,
    context: float,
    prompts: float,
    isl: float,
    params: ServingParams = NEUTRAL,
) -> float:
    """Seconds of one mixed step (`mixed_step_operators`) on a tp-way replica of `device`, step overhead included."""
    ops = mixed_step_operators(model, precision, float(tp), decode_seqs, context, prompts, isl)
    engine = EngineArrays.of([params], [device], [precision.weight])
    dev = DeviceArrays.of([device], [precision.weight])
    timings = time_operators(ops, dev, np.array([float(tp)]), engine, decode=True)
    return float((total_latency(timings) + pass_overhead_s(engine, ops))[0])


def passes_latency_s(
    passes: ServingPasses, dev: DeviceArrays, tp: FloatArray, engine: EngineArrays
) -> tuple[FloatArray, FloatArray]:
    """(TTFT before the engine's per-request overhead, TPOT), one entry per row of `dev`/`engine`. Every pass pays
    the engine's step overhead once; in continuous batching a request arrives half-way through the step in flight,
    its prompt rides on `chunks` steps, and requests in flight beyond the decode batch wait for a slot (Little's
    law: the wait is (in_flight/batch − 1) times a slot's holding time, TTFT + (OSL − 1)·TPOT)."""

    tpot = pass_latency_s(passes.step, dev, tp, engine, decode=True)
    if passes.mode == ServingMode.batch:
        return pass_latency_s(passes.first, dev, tp, engine, decode=passes.isl <= 1), tpot
    chunks = np.ones(1) if passes.chunks is None else passes.chunks
    ttft = tpot / 2.0 + chunks * pass_latency_s(passes.first, dev, tp, engine, decode=True)
    if passes.batch is None or passes.in_flight is None:
        return ttft, tpot
    waves = passes.in_flight / passes.batch - 1.0
    return ttft + waves * (ttft + (passes.osl - 1.0) * tpot), tpot


def pass_latency_s(
    ops: list[Operator], dev: DeviceArrays, tp: FloatArray, engine: EngineArrays, decode: bool
) -> FloatArray:
    """Seconds of one forward pass per row of `dev`/`engine`: its operators plus the engine's step overhead."""
    return total_latency(time_operators(ops, dev, tp, engine, decode=decode)) + pass_overhead_s(engine, ops)


def burst_prefill_operators(
    model: ModelArch, precision: Precision, tp: float, isl: float, prompts: float
) -> tuple[list[Operator], list[Operator]]:
    """Prefill passes of one prompt and of `prompts` prompts together: the first and the last request of a burst
    of simultaneous arrivals (serving_fit's closed-loop harness model times the mean of the two)."""
    return (
        llm_operators(model, Shape.of(1.0, isl, 0, tp), precision),
        llm_operators(model, Shape.of(prompts, isl, 0, tp), precision),
    )


@dataclass(frozen=True)
class _Core:
    batch: float
    in_flight: float
    ttft_s: float
    tpot_s: float
    prompts_per_step: float

    def e2e_s(self, osl: float) -> float:
        return self.ttft_s + (osl - 1.0) * self.tpot_s


def serving_estimate(
    model: ModelArch,
    device: Device,
    tp: int,
    precision: Precision,
    isl: float,
    osl: float,
    mode: ServingMode | str,
    load: float | None = None,
    params: ServingParams = NEUTRAL,
    limits: EngineLimits = NO_LIMITS,
) -> ServingEstimate:
    """TTFT, TPOT, e2e latency and output throughput of requests of `isl` prompt and `osl` output tokens on a
    tp-way replica of `device` (its efficiency factors as given, e.g. calibrated), in `mode` with `load` = B
    (batch) or C (concurrency); ignored for max-load. `params`: the (device, engine) terms, neutral by default;
    `limits`: the engine's scheduler limits (capacity.engine_limits), none by default (the plain KV wall)."""
    mode = ServingMode(mode)
    if isl < 1 or osl < 1:
        raise InputError.single("serving", "isl/osl", f"ISL and OSL must be ≥ 1 (got {isl}, {osl})")
    reason = unsupported_reason(device, precision.weight)
    if reason:
        raise InputError.single("serving", "dtype", reason)
    if not feasible_tp(model, device, tp):
        raise InputError.single(
            "serving", "tp", f"tp={tp} must divide {model.num_heads} heads and be ≤ the reach of {device.id}"
        )
    capacity = float(max_batch(model, precision, np.array([device.mem_gb]), np.array([float(tp)]), isl + osl)[0])
    engine_cap, engine_bound = decode_batch_bound(limits, float(isl), float(osl))
    if mode == ServingMode.max_load:
        if capacity < 1:
            raise InputError.single(
                "serving", "max-load", f"not one sequence of {isl + osl:g} tokens fits on {tp}× {device.id}"
            )
        load = min(capacity, engine_cap)
    if load is None or load < 1:
        raise InputError.single("serving", mode.value, f"{mode.value} needs a load ≥ 1 (got {load})")
    dev = DeviceArrays.of([device], [precision.weight])
    passes = serving_passes(model, precision, float(tp), float(isl), float(osl), mode, np.array([float(load)]), limits)
    assert passes.batch is not None and passes.chunks is not None  # serving_passes sets both
    batch = float(passes.batch[0])
    if mode == ServingMode.batch or (batch == load and mode == ServingMode.concurrency):
        bound_by = BOUND_LOAD
    elif mode == ServingMode.max_load and capacity <= engine_cap:
        bound_by = BOUND_KV
    else:
        bound_by = engine_bound

    def core(p: ServingParams) -> _Core:
        engine = EngineArrays.of([p], [device], [precision.weight])
        ttft, tpot = passes_latency_s(passes, dev, np.array([float(tp)]), engine)
        prompts = 0.0 if mode == ServingMode.batch else batch / osl
        return _Core(batch, float(load), float(ttft[0]) + p.ttft_overhead_s, float(tpot[0]), prompts)

    main = core(params)
    base = main if params == NEUTRAL else core(NEUTRAL)
    terms: dict[str, dict[str, float]] = {}
    for name in TERMS:
        alone = base if isolate(params, name) == NEUTRAL else core(isolate(params, name))
        terms[name] = {
            "ttft_s": alone.ttft_s - base.ttft_s,
            "tpot_s": alone.tpot_s - base.tpot_s,
            "e2e_latency_s": alone.e2e_s(osl) - base.e2e_s(osl),
        }
    applied = NO_LIMITS if mode == ServingMode.batch else limits  # one static batch: no engine scheduler limits
    e2e = main.e2e_s(osl)
    throughput = main.in_flight * osl / e2e  # Little's law over every request in flight (= batch·OSL/e2e unqueued)
    return ServingEstimate(
        mode=mode.value,
        batch=main.batch,
        ttft_s=main.ttft_s,
        tpot_s=main.tpot_s,
        e2e_latency_s=e2e,
        output_tokens_per_s=throughput,
        output_tokens_per_s_per_device=throughput / tp,
        prefill_prompts_per_step=main.prompts_per_step,
        fits=bool(main.batch <= capacity),
        max_batch=capacity,
        terms=terms,
        in_flight=main.in_flight,
        batch_bound_by=bound_by,
        engine_max_running_seqs=applied.max_running_seqs,
        engine_max_tokens_per_step=applied.max_tokens_per_step,
        prefill_chunks=float(passes.chunks[0]),
    )
