"""LLM serving performance: TTFT, TPOT, throughput and capacity of a config, and whole menus in one call.

A config = (device, tensor-parallel degree k, batch B, weight dtype). Prefill of B prompts with T uncached tokens
each (P cached) takes one forward pass: TTFT = its latency, throughput = B·T / latency. A decode step of B
sequences at context C: TPOT = step latency, throughput = B / TPOT tokens/s per replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hetplace.catalogs.schema import Device, Dtype, ModelArch
from hetplace.costmodels.arrays import BoolArray, FloatArray, IntArray, StrArray
from hetplace.costmodels.capacity import max_batch
from hetplace.costmodels.engine_terms import NEUTRAL_ARRAYS, EngineArrays, ServingParams, pass_overhead_s
from hetplace.costmodels.llm_ops import Operator, Shape, llm_operators
from hetplace.costmodels.precision import Precision, matmul_dtype, sixteen_bit_dtype
from hetplace.costmodels.roofline import DeviceArrays, OpTiming, time_operators, total_latency

PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class PassResult:
    """One forward pass evaluated for every config."""

    ops: list[Operator]
    timings: list[OpTiming]
    latency_s: FloatArray
    fits: BoolArray
    max_batch: FloatArray
    cf_bytes: FloatArray  # resident bytes per device: weights + KV of this batch + workspace-free estimate


def phase_shape(phase: str, batch, prompt_tokens, cached_tokens, context_tokens, tp) -> Shape:
    """Forward-pass shape of a phase: prefill processes the uncached prompt; decode one token at `context`."""
    if phase == "prefill":
        new = np.asarray(prompt_tokens, dtype=float) - np.asarray(cached_tokens, dtype=float)
        return Shape.of(batch, new, cached_tokens, tp)
    if phase == "decode":
        return Shape.of(batch, 1, context_tokens, tp)
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


def evaluate_pass(
    model: ModelArch,
    precision: Precision,
    shape: Shape,
    dev: DeviceArrays,
    mem_gb: FloatArray,
    engine: EngineArrays = NEUTRAL_ARRAYS,
) -> PassResult:
    """Latency, fit and footprint of one forward pass for configs aligned with `dev` rows (and `engine` rows:
    the engine terms, neutral by default; the per-step overhead is added once to the pass)."""
    ops = llm_operators(model, shape, precision)
    timings = time_operators(ops, dev, shape.tp, engine, decode=shape.new_tokens <= 1)
    latency = total_latency(timings) + pass_overhead_s(engine, ops)
    kv_context = shape.past_tokens + shape.new_tokens
    mb = max_batch(model, precision, mem_gb, shape.tp, kv_context)
    fits = (shape.batch <= mb) & np.isfinite(latency)
    cf = np.sum([op.cf_bytes for op in ops], axis=0)
    return PassResult(ops, timings, latency, fits, mb, cf)


@dataclass(frozen=True)
class Menu:
    """Every config of one pool, as parallel arrays (one entry per config)."""

    model: str
    phase: str
    device_ids: list[str]  # index → device id
    device_index: IntArray
    tp: FloatArray
    batch: FloatArray
    weight_dtype: StrArray  # dtype names
    kv_dtype: StrArray  # KV-cache dtype names (storage only: attention computes in 16-bit)
    latency_s: FloatArray  # TTFT (prefill) or TPOT (decode)
    throughput: FloatArray  # tokens/s per replica (prefill tokens or decode tokens)
    fits: BoolArray
    max_batch: FloatArray
    devices_per_replica: FloatArray
    usd_per_hour: FloatArray  # replica cost at the devices' hourly rate (see `hourly_usd`)

    def __len__(self) -> int:
        return int(self.tp.size)


MAX_TP_NODES = 8  # tensor parallelism beyond the scale-up domain spans at most this many nodes over the NIC


def tp_reach(device: Device) -> int:
    """Largest tensor-parallel group considered: the scale-up domain, or up to MAX_TP_NODES nodes over the NIC."""
    return max(device.scaleup_domain, device.devices_per_node * MAX_TP_NODES)


def feasible_tp(model: ModelArch, device: Device, tp: int) -> bool:
    """Tensor parallelism must split the attention heads evenly and stay within `tp_reach`."""
    return model.num_heads % tp == 0 and tp <= tp_reach(device)


def evaluate_menu(
    model: ModelArch,
    phase: str,
    devices: Sequence[Device],
    tps: Sequence[int],
    batches: Sequence[int],
    weight_dtypes: Sequence[Dtype],
    prompt_tokens: float,
    cached_tokens: float,
    context_tokens: float,
    hourly_usd: dict[str, float] | None = None,
    kv_dtypes: Sequence[Dtype] | None = None,
    engine: Sequence[ServingParams] | None = None,
) -> Menu:
    """Evaluate the cartesian product devices × tp × batch × weight dtype × KV dtype, one vectorised pass per
    (weight, KV) pair, weight dtypes outermost. `kv_dtypes` defaults to the model's own KV dtype. `engine` gives
    each device's serving terms (engine_terms.serving_params, aligned with `devices`); None = neutral terms, the
    plain roofline bit for bit.

    Configs the device cannot run (dtype unsupported, tp not dividing the heads) or that do not fit in memory
    come back with fits=False; their latency is still reported where it is defined.
    """
    dev_idx, tp_arr, b_arr = (
        a.ravel()
        for a in np.meshgrid(np.arange(len(devices)), np.asarray(tps, float), np.asarray(batches, float), indexing="ij")
    )
    parts = []
    kvs = [Dtype(kv) for kv in (kv_dtypes or (model.kv_dtype,))]
    for dtype, kv in ((w, kv) for w in weight_dtypes for kv in kvs):
        precision = Precision(Dtype(dtype), kv)
        table = DeviceArrays.of(devices, [Dtype(dtype)] * len(devices))
        dev = table.take(dev_idx)
        mem = np.array([d.mem_gb for d in devices])[dev_idx]
        shape = phase_shape(phase, b_arr, prompt_tokens, cached_tokens, context_tokens, tp_arr)
        terms = (
            EngineArrays.of(engine, devices, [Dtype(dtype)] * len(devices)).take(dev_idx)
            if engine is not None
            else NEUTRAL_ARRAYS
        )
        res = evaluate_pass(model, precision, shape, dev, mem, terms)
        ok_tp = _vector_tp_ok(model, devices, dev_idx, tp_arr)
        runnable = np.array(
            [matmul_dtype(d, Dtype(dtype)) is not None and sixteen_bit_dtype(d) is not None for d in devices]
        )[dev_idx]
        tokens = shape.tokens if phase == "prefill" else shape.batch
        with np.errstate(divide="ignore", invalid="ignore"):
            throughput = np.where(res.latency_s > 0, tokens / res.latency_s, 0.0)
        rates = np.array([(hourly_usd or {}).get(d.id, np.nan) for d in devices])[dev_idx]
        parts.append(
            dict(
                device_index=dev_idx,
                tp=tp_arr,
                batch=b_arr,
                weight_dtype=np.full(dev_idx.size, Dtype(dtype).value),
                kv_dtype=np.full(dev_idx.size, kv.value),
                latency_s=res.latency_s,
                throughput=throughput,
                fits=res.fits & ok_tp & runnable,
                max_batch=res.max_batch,
                devices_per_replica=tp_arr,
                usd_per_hour=rates * tp_arr,
            )
        )
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return Menu(model.id, phase, [d.id for d in devices], **merged)


def _vector_tp_ok(model: ModelArch, devices: Sequence[Device], dev_idx: IntArray, tp: FloatArray) -> BoolArray:
    """`feasible_tp` for many configs at once."""
    reach = np.array([tp_reach(d) for d in devices], dtype=float)[dev_idx]
    return (np.mod(model.num_heads, tp) == 0) & (tp <= reach)
