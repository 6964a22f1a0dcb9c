"""The memory capacity wall: how many sequences fit on a tensor-parallel replica.

max_batch = floor((mem · (1 − reserve) − weights/k − workspace) / (KV bytes per sequence / k))
A config whose weights alone do not fit, or whose batch exceeds max_batch, is reported as not fitting — never
clipped silently to a smaller batch.
"""

from __future__ import annotations

import numpy as np

from hetplace.catalogs.schema import ModelArch
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
