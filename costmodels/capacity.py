"""The memory capacity wall: how many sequences fit on a tensor-parallel replica.

max_batch = floor((mem · (1 − reserve) − weights/k − workspace) / (KV bytes per sequence / k))
A config whose weights alone do not fit, or whose batch exceeds max_batch, is reported as not fitting — never
clipped silently to a smaller batch.

The serving engines cap the running batch below that wall by their own defaults (catalogs/engines/*.yaml,
`scheduler`): `engine_limits` resolves them for one deployment into an EngineLimits record that the serving
estimate applies (costmodels.serving; README "Serving estimate").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hetplace.catalogs.engine_schema import SchedulerDefaults
from hetplace.catalogs.schema import Device, ModelArch
from hetplace.costmodels.arrays import FloatArray, Floats
from hetplace.costmodels.llm_ops import kv_bytes_per_token, weight_bytes
from hetplace.costmodels.precision import ACT_BYTES, Precision

MEMORY_RESERVE = 0.10  # runtime, allocator fragmentation and CUDA graphs (vLLM's default gpu_memory_utilization=0.9)
WORKSPACE_TOKENS = 8192  # activation workspace sized for a chunked-prefill budget of 8k tokens per step


def workspace_bytes(model: ModelArch, tp: Floats) -> FloatArray:
    """Peak activation workspace per device: the widest layer output for a full token budget, 4 live buffers."""
    widest = max(
        model.hidden_size,
        model.intermediate_size,
        model.moe.expert_intermediate_size * model.moe.experts_per_token if model.moe else 0,
    )
    return 4.0 * WORKSPACE_TOKENS * widest * ACT_BYTES / np.asarray(tp, dtype=float)


def usable_bytes(mem_gb: Floats) -> FloatArray:
    """Device memory a serving runtime can fill: everything but MEMORY_RESERVE (LLMs, encoders and indexes)."""
    return np.asarray(mem_gb, dtype=float) * 1e9 * (1.0 - MEMORY_RESERVE)


def free_bytes_for_kv(model: ModelArch, precision: Precision, mem_gb: Floats, tp: Floats) -> FloatArray:
    """Bytes per device left for the KV cache after reserve, weights and workspace (negative: weights don't fit)."""
    tp = np.asarray(tp, dtype=float)
    return usable_bytes(mem_gb) - weight_bytes(model, precision) / tp - workspace_bytes(model, tp)


def max_batch(model: ModelArch, precision: Precision, mem_gb: Floats, tp: Floats, context_tokens: Floats) -> FloatArray:
    """Largest number of sequences of `context_tokens` whose KV fits; 0 when even the weights don't fit."""
    free = free_bytes_for_kv(model, precision, mem_gb, tp)
    context = np.maximum(np.asarray(context_tokens, dtype=float), 1.0)
    per_seq = kv_bytes_per_token(model, precision, tp) * context
    if model.sliding_window is not None:  # windowed layers keep only the last `window` tokens
        frac = model.sliding_window.layers / model.num_layers
        kept = (1 - frac) * context + frac * np.minimum(context, model.sliding_window.window_tokens)
        per_seq = kv_bytes_per_token(model, precision, tp) * kept
    return np.where(free > 0, np.floor(np.maximum(free, 0.0) / per_seq), 0.0)


def min_devices_for_weights(model: ModelArch, precision: Precision, mem_gb: float) -> int:
    """Smallest tensor-parallel degree (power of two) at which the weights plus workspace fit at all."""
    k = 1
    while k <= 1024:
        if free_bytes_for_kv(model, precision, np.array([mem_gb]), np.array([float(k)]))[0] > 0:
            return k
        k *= 2
    return 0


GIB_BYTES = float(2**30)


@dataclass(frozen=True)
class EngineLimits:
    """The scheduler limits one engine applies to one deployment (inf: no limit): sequences it runs at once and
    tokens one forward step may carry; whether decode tokens share that budget with prefill in one mixed step
    (vLLM, TensorRT-LLM) and whether a prompt longer than the room left is split over steps (chunked prefill)."""

    max_running_seqs: float = math.inf
    max_tokens_per_step: float = math.inf
    decode_tokens_in_budget: bool = True
    chunked_prefill: bool = True


NO_LIMITS = EngineLimits()
"""No engine (`--engine none`): the plain KV-capacity wall, every prompt in one step."""


def engine_limits(
    scheduler: SchedulerDefaults | None, device: Device, model: ModelArch, precision: Precision, tp: int
) -> EngineLimits:
    """An engine's default limits on `device` (its first matching per-memory rule over its base values); the
    SGLang-style running cap sized from the KV tokens this deployment holds (capacity model, not the engine's own)."""
    if scheduler is None:
        return NO_LIMITS
    mem_gib = device.mem_gb * 1e9 / GIB_BYTES
    seqs: float | None = scheduler.max_running_seqs
    tokens: float | None = scheduler.max_tokens_per_step
    for rule in scheduler.rules:
        above = mem_gib >= rule.min_device_mem_gib
        below = rule.below_device_mem_gib is None or mem_gib < rule.below_device_mem_gib
        excluded = any(word in device.id for word in rule.unless_device_id_contains)
        if above and below and not excluded:
            seqs = rule.max_running_seqs if rule.max_running_seqs is not None else seqs
            tokens = rule.max_tokens_per_step if rule.max_tokens_per_step is not None else tokens
            break
    pool = scheduler.running_seqs_from_kv
    if pool is not None:
        kv_tokens = float(kv_token_capacity(model, precision, np.array([device.mem_gb]), np.array([float(tp)]))[0])
        sized = math.floor(kv_tokens * pool.seqs_per_max_context / model.max_context_tokens)
        seqs = float(min(max(sized, pool.min_seqs), pool.max_seqs))
    if tokens is not None and seqs is not None and scheduler.decode_tokens_in_budget:
        seqs = min(seqs, tokens)  # a mixed step holds no more decode tokens than its budget (vLLM takes the min)
    return EngineLimits(
        max_running_seqs=math.inf if seqs is None else float(seqs),
        max_tokens_per_step=math.inf if tokens is None else float(tokens),
        decode_tokens_in_budget=scheduler.decode_tokens_in_budget,
        chunked_prefill=scheduler.chunked_prefill,
    )


def kv_token_capacity(model: ModelArch, precision: Precision, mem_gb: Floats, tp: Floats) -> FloatArray:
    """Tokens the KV cache of a tp-way replica holds (0 when the weights don't fit)."""
    free = np.maximum(free_bytes_for_kv(model, precision, mem_gb, tp), 0.0)
    return np.floor(free / kv_bytes_per_token(model, precision, tp))
