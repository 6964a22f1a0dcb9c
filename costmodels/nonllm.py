"""Cost models of the non-LLM steps of an agent workflow: embedding, retrieval, tool calls, conversion.

Embedding and conversion run an encoder forward pass (the same operator decomposition as an LLM prefill, with
bidirectional attention). Retrieval is a scan (flat) or an approximate-nearest-neighbour search whose work is
estimated from standard index parameters. Tool calls take their stated wall-clock latency and burn CPU-seconds.
All functions return per-device arrays so a step can be priced on every catalog device at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hetplace.catalogs.schema import DTYPE_BYTES, Device, DeviceKind, Dtype, ModelArch
from hetplace.costmodels.arrays import BoolArray, FloatArray
from hetplace.costmodels.capacity import usable_bytes
from hetplace.costmodels.llm_ops import Shape
from hetplace.costmodels.llm_perf import evaluate_pass
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.roofline import DeviceArrays

# Approximate-nearest-neighbour parameters (common defaults; FAISS / hnswlib documentation).
IVF_NPROBE = 32  # lists probed per query
HNSW_M = 32  # graph degree
HNSW_EF_SEARCH = 128  # candidate list size per query
RANDOM_ACCESS_EFFICIENCY = 0.25  # graph walks read scattered vectors: a fraction of streaming bandwidth


@dataclass(frozen=True)
class StepCost:
    """Cost of one execution of a step on each device (arrays aligned with the device list)."""

    latency_s: FloatArray  # wall-clock time of one execution on one device
    busy_s: FloatArray  # device-seconds one execution occupies (throughput = 1 / busy_s per device)
    fits: BoolArray
    cf_bytes: FloatArray  # resident bytes the step needs on the device
    flops: FloatArray
    bytes: FloatArray


def encoder_tokens_per_item(model: ModelArch, step_tokens_per_item: int | None) -> int:
    """Tokens one input item becomes: an embedding step states it (text lengths vary); a conversion step's items
    (images, audio clips) become the fixed number of patches/frames its encoder model declares."""
    if step_tokens_per_item is not None:
        return step_tokens_per_item
    if model.encoder_input is None:
        raise ValueError(f"{model.id} has no encoder_input: it cannot convert images or audio")
    return model.encoder_input.tokens_per_item


def encoder_cost(model: ModelArch, devices: Sequence[Device], items: int, tokens_per_item: int) -> StepCost:
    """An embedding or encoder pass over `items` inputs of `tokens_per_item` tokens, batched together."""
    precision = Precision(model.weight_dtype, model.kv_dtype)
    dev = DeviceArrays.of(devices, [model.weight_dtype] * len(devices))
    n = len(devices)
    shape = Shape.of(np.full(n, float(items)), tokens_per_item, 0, 1)
    res = evaluate_pass(model, precision, shape, dev, np.array([d.mem_gb for d in devices]))
    flops = np.sum([op.flops for op in res.ops], axis=0)
    moved = np.sum([op.bytes for op in res.ops], axis=0)
    return StepCost(res.latency_s, res.latency_s, res.fits, res.cf_bytes, flops, moved)


def retrieval_work(
    corpus_vectors: int, dim: int, top_k: int, index: str, vector_dtype: Dtype | str, queries: int
) -> tuple[float, float, float, bool]:
    """(FLOPs, bytes read, resident bytes, random_access) of `queries` searches of one index."""
    vb = DTYPE_BYTES[Dtype(vector_dtype)]
    n = float(corpus_vectors)
    data = n * dim * vb
    if index == "flat":
        return 2.0 * n * dim * queries, data * 1.0 + queries * dim * vb, data, False
    if index == "ivf":
        nlist = max(1.0, 4.0 * math.sqrt(n))  # FAISS guideline: nlist ≈ 4·sqrt(N)
        scanned = nlist + min(n, IVF_NPROBE * n / nlist)
        return 2.0 * scanned * dim * queries, scanned * dim * vb * queries, data + nlist * dim * vb, False
    if index == "hnsw":
        ef = max(HNSW_EF_SEARCH, top_k)
        visited = ef * HNSW_M * max(1.0, math.log2(n)) / 4.0  # neighbours expanded along the search path
        graph = n * HNSW_M * 2 * 4.0  # int32 neighbour lists, 2M links on level 0
        return 2.0 * visited * dim * queries, visited * (dim * vb + HNSW_M * 4.0) * queries, data + graph, True
    raise ValueError(f"unknown index kind {index!r}")


def retrieval_cost(
    devices: Sequence[Device],
    corpus_vectors: int,
    dim: int,
    top_k: int,
    index: str,
    vector_dtype: Dtype | str,
    queries: int,
) -> StepCost:
    """Vector search on each device: memory-bound scans, compute-bound only for big query batches."""
    flops, moved, resident, random_access = retrieval_work(corpus_vectors, dim, top_k, index, vector_dtype, queries)
    dev = DeviceArrays.of(devices, [Dtype.fp32] * len(devices))  # distances: element-wise fp32 work
    bw = dev.mem_bw * dev.eta_m
    if random_access:
        bw = bw * RANDOM_ACCESS_EFFICIENCY
    latency = np.maximum(flops / (dev.vector_flops * dev.eta_c), moved / bw) + dev.overhead_s * queries
    fits = resident <= usable_bytes(np.array([d.mem_gb for d in devices]))
    n = len(devices)
    return StepCost(latency, latency, fits, np.full(n, resident), np.full(n, flops), np.full(n, moved))


def tool_cost(devices: Sequence[Device], latency_s: float, cpu_s: float) -> StepCost:
    """A tool call: fixed wall-clock latency; it occupies `cpu_s` core-seconds, so only CPUs host tools and a
    socket serves cores / cpu_s calls per second (busy_s is per socket)."""
    n = len(devices)
    cores = np.array([float(d.cores) if d.kind == DeviceKind.cpu and d.cores else np.nan for d in devices])
    fits = np.isfinite(cores)
    busy = np.where(fits, cpu_s / np.where(fits, cores, 1.0), np.nan)
    return StepCost(np.full(n, latency_s), busy, fits, np.zeros(n), np.zeros(n), np.zeros(n))
