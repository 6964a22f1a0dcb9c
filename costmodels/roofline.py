"""Roofline latency of operators on devices, with efficiency factors, per-kernel overheads and collectives.

time(op) = max(FLOPs · padding / (peak · η_c), bytes / (BW · η_m)) + overhead · kernel launches
(padding: tile/wave quantisation of the operator's main GEMM on devices with known compute units, see gemm.py)
time(all-reduce) = calls · α + 2(k−1)/k · payload / link bandwidth   (ring; NIC beyond the scale-up domain)
Engine terms (engine_terms.ServingParams, neutral by default) scale η per operator kind and override α and the
link efficiency; the per-step overhead is added per pass by llm_perf.evaluate_pass.
Ops run back to back (no overlap), the usual assumption of serving-cost models; it errs on the slow side.
Everything is vectorised over configs: device parameters are arrays aligned with the configs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hetplace.catalogs.schema import Device, Dtype
from hetplace.costmodels.arrays import BoolArray, FloatArray, Floats, IntArray, StrArray
from hetplace.costmodels.engine_terms import LINK_EFFICIENCY as LINK_EFFICIENCY  # re-exported: today's constants
from hetplace.costmodels.engine_terms import LINK_LATENCY_S as LINK_LATENCY_S
from hetplace.costmodels.engine_terms import NEUTRAL_ARRAYS, EngineArrays
from hetplace.costmodels.engine_terms import NIC_LATENCY_S as NIC_LATENCY_S
from hetplace.costmodels.gemm import padding_factor
from hetplace.costmodels.llm_ops import ATTENTION, COMM, GEMM, VECTOR, Operator
from hetplace.costmodels.precision import matmul_dtype, sixteen_bit_dtype


@dataclass(frozen=True)
class DeviceArrays:
    """Device parameters laid out per config (one row per config), in SI units."""

    gemm_flops: FloatArray  # FLOP/s for weight GEMMs in the config's weight format (nan: unsupported)
    attn_flops: FloatArray  # FLOP/s for attention (16-bit)
    vector_flops: FloatArray  # FLOP/s for element-wise work
    mem_bw: FloatArray  # bytes/s
    eta_c: FloatArray
    eta_m: FloatArray
    overhead_s: FloatArray
    link_bw: FloatArray  # bytes/s per direction, scale-up
    domain: FloatArray  # devices per scale-up domain
    nic_bw: FloatArray  # bytes/s per device, scale-out
    units: FloatArray  # compute units (SMs/CUs) for tile/wave padding; nan where unknown

    @classmethod
    def of(cls, devices: Sequence[Device], weight_dtypes: Sequence[Dtype]) -> DeviceArrays:
        """One row per (device, weight dtype) pair, in the order given."""

        def col(fn) -> FloatArray:
            return np.array([fn(d, w) for d, w in zip(devices, weight_dtypes, strict=True)], dtype=float)

        def peak(d: Device, dt: Dtype | None) -> float:
            return d.peak_tflops[dt] * 1e12 if dt is not None else np.nan

        return cls(
            gemm_flops=col(lambda d, w: peak(d, matmul_dtype(d, w))),
            attn_flops=col(lambda d, w: peak(d, sixteen_bit_dtype(d))),
            vector_flops=col(lambda d, w: peak(d, Dtype.fp32 if Dtype.fp32 in d.peak_tflops else sixteen_bit_dtype(d))),
            mem_bw=col(lambda d, w: d.mem_bw_gbs * 1e9),
            eta_c=col(lambda d, w: d.efficiency.compute),
            eta_m=col(lambda d, w: d.efficiency.memory),
            overhead_s=col(lambda d, w: d.efficiency.kernel_overhead_us * 1e-6),
            link_bw=col(lambda d, w: d.scaleup_bw_gbs * 1e9),
            domain=col(lambda d, w: d.scaleup_domain),
            nic_bw=col(lambda d, w: d.scaleout_nic_gbps * 1e9 / 8),
            units=col(lambda d, w: d.compute_units or np.nan),
        )

    def take(self, index: IntArray) -> DeviceArrays:
        """Rows re-indexed (expand a per-device table to per-config)."""
        return DeviceArrays(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class OpTiming:
    name: str
    latency_s: FloatArray
    compute_s: FloatArray
    memory_s: FloatArray
    comm_s: FloatArray
    is_comm: bool = False

    @property
    def bound(self) -> StrArray:
        """'compute' | 'memory' | 'comm' per config: which term dominates."""
        if self.is_comm:
            return np.full(self.latency_s.shape, "comm")
        return np.where(self.compute_s >= self.memory_s, "compute", "memory")


def allreduce_time(
    payload_bytes: FloatArray,
    calls: Floats,
    tp: FloatArray,
    dev: DeviceArrays,
    engine: EngineArrays = NEUTRAL_ARRAYS,
) -> FloatArray:
    """Ring all-reduce over `tp` devices: α per call + 2(k−1)/k · payload / bandwidth (NIC across nodes)."""
    inside = tp <= dev.domain
    bw = np.where(inside, dev.link_bw * engine.link_efficiency, dev.nic_bw * engine.nic_efficiency)
    alpha = np.where(inside, engine.link_latency_s, engine.nic_latency_s)
    t = calls * alpha + 2.0 * (tp - 1.0) / tp * payload_bytes / bw
    return np.where(tp > 1, t, 0.0)


MOE_EXPERTS = "moe_experts"  # the routed-expert operator (llm_ops._moe), which moe_gemm_eta scales


def _etas(op: Operator, dev: DeviceArrays, engine: EngineArrays, decode: BoolArray | bool) -> tuple[Floats, Floats]:
    """(η_c, η_m) of `op` per config: the device's, times the engine terms that apply to this operator."""
    eta_c: Floats = dev.eta_c * engine.compute_eta
    eta_m: Floats = dev.eta_m
    if op.kind == GEMM:
        eta_c = eta_c * engine.gemm_eta
    if op.name == MOE_EXPERTS:
        eta_c, eta_m = eta_c * engine.moe_gemm_eta, eta_m * engine.moe_gemm_eta
    if op.kind == ATTENTION:
        eta_m = eta_m * np.where(decode, engine.decode_attention_eta, 1.0)
    return eta_c, eta_m


def time_operators(
    ops: Sequence[Operator],
    dev: DeviceArrays,
    tp: FloatArray,
    engine: EngineArrays = NEUTRAL_ARRAYS,
    decode: BoolArray | bool = False,
) -> list[OpTiming]:
    """Latency of each operator for every config (arrays aligned with `dev` and `tp`). `decode` marks the configs
    whose pass is a decode step (one new token per sequence), where the decode-attention term applies."""
    timings = []
    zero = np.zeros_like(tp, dtype=float)
    for op in ops:
        if op.kind == COMM:
            comm = allreduce_time(op.bytes, np.asarray(op.collectives, dtype=float), tp, dev, engine)
            timings.append(OpTiming(op.name, comm, zero, zero, comm, is_comm=True))
            continue
        peak = {GEMM: dev.gemm_flops, ATTENTION: dev.attn_flops, VECTOR: dev.vector_flops}[op.kind]
        eta_c, eta_m = _etas(op, dev, engine, decode)
        compute = op.flops / (peak * eta_c)
        if op.gemm_m is not None and op.gemm_n is not None:
            compute = compute * padding_factor(np.maximum(op.gemm_m, 1.0), op.gemm_n, dev.units)
        memory = op.bytes / (dev.mem_bw * eta_m)
        latency = np.maximum(compute, memory) + dev.overhead_s * op.layers
        timings.append(OpTiming(op.name, latency, compute, memory, zero))
    return timings


def total_latency(timings: Sequence[OpTiming]) -> FloatArray:
    return np.sum([t.latency_s for t in timings], axis=0)


def kv_transfer_time(kv_bytes: Floats, same_node: BoolArray | bool, dev: DeviceArrays) -> FloatArray:
    """Moving a request's KV cache from its prefill replica to its decode replica (disaggregated serving): the
    payload over the scale-up link inside a node, over the NIC across nodes, of `dev` (the end whose link bounds
    the transfer), at LINK_EFFICIENCY. Bandwidth only: one message latency (10-25 µs) is noise beside a KV
    payload of megabytes, and leaving it out keeps the optimizer's numbers those the plan checker recomputes.
    Broadcasts, e.g. a column of payloads against a row of devices."""
    bw = np.where(same_node, dev.link_bw, dev.nic_bw) * LINK_EFFICIENCY
    return np.asarray(kv_bytes, dtype=float) / bw
