"""What the per-operator roofline misses about a serving engine, as named, fittable terms per (device, engine).

The roofline (roofline.py) prices each operator from datasheet peaks, the device's η_c/η_m and a per-kernel
overhead. A served request also pays for things no single GEMM shows. Each is one field of `ServingParams`, with a
NEUTRAL default that reproduces the plain roofline bit for bit (multiplying by 1.0 and adding 0.0 are exact in
IEEE arithmetic), so every plan and number stays as it was until someone sets a value (README "Serving estimate"):

- step_overhead_s        engine cost per forward step (scheduler, sampler, launches, host sync), added once per pass
- layer_overhead_s       engine cost per layer of every forward step (small kernels and launch gaps per layer), added
                         once per layer per pass (`step_overhead`)
- ttft_overhead_s        cost per request before its first token (API front end, tokeniser, admission), once per request
- compute_eta            multiplies η_c of every operator (this engine's kernels on this device: prefill speed)
- decode_attention_eta   multiplies η_m of the attention operator in decode passes (paged-KV gather efficiency)
- moe_gemm_eta           multiplies η_c and η_m of the routed-expert GEMM (grouped GEMMs over small experts)
- fp8/int8/fp4_gemm_eta  multiplies η_c of weight GEMMs computed in that format (relative to the 16-bit η_c)
- link_/nic_latency_s    α per all-reduce call inside / across the scale-up domain (None: LINK_/NIC_LATENCY_S)
- link_/nic_efficiency   achieved / peak all-reduce bandwidth inside / across the domain (None: LINK_EFFICIENCY)

`EngineArrays` lays the parameters out per config, like `DeviceArrays`, so a whole menu is still one vectorised
pass. `TERMS` names the groups `analyze` reports (seconds each adds to a pass or a request, see `isolate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from hetplace.catalogs.calibration_schema import CalibrationFile, ServingTerms
from hetplace.catalogs.engine_schema import Engine
from hetplace.catalogs.schema import Device, Dtype
from hetplace.common.errors import InputError
from hetplace.costmodels.arrays import FloatArray, Floats, IntArray
from hetplace.costmodels.llm_ops import COMM, Operator
from hetplace.costmodels.precision import matmul_dtype

LINK_LATENCY_S = 10e-6  # α per all-reduce call on a scale-up link (NCCL small-message latency, order of 10 µs)
NIC_LATENCY_S = 25e-6  # α per call when the group spans nodes
LINK_EFFICIENCY = 0.8  # achieved / peak link bandwidth for large all-reduce payloads (prior; calibrate)


@dataclass(frozen=True)
class ServingParams:
    """Engine terms of one (device, engine) pair. Every default is neutral: ServingParams() == the roofline."""

    step_overhead_s: float = 0.0
    """Seconds per forward step outside the operators' kernels: scheduling, sampling, detokenisation, host-device
    sync and launch gaps not hidden by CUDA graphs. Added once to every pass (prefill, decode or mixed step).
    From: measured TPOT at batch 1 minus the roofline's decode latency, or an engine's step profile."""

    layer_overhead_s: float = 0.0
    """Seconds per transformer layer per forward step outside the roofline's operators: the small kernels each
    layer launches (norms, rotary, activation, KV-cache write, residual adds) and the GPU-side gaps between them
    that CUDA graphs do not remove. Added layers × this to every pass, so it scales with the model's depth where
    step_overhead_s does not (a 126-layer model pays four times a 32-layer one).
    From: TPOT at batch 1 of models of different depth on one device and engine."""

    ttft_overhead_s: float = 0.0
    """Seconds added once to every request's time to first token (and so to its end-to-end latency) outside any
    forward pass: HTTP/API front end, tokenisation, admission into the running batch and the wait for the
    scheduler to start its prefill. Not part of any pass (`analyze`'s per-pass terms show 0 for it).
    From: measured TTFT at concurrency 1 minus the predicted prefill (serving_fit fits it per device and engine)."""

    decode_attention_eta: float = 1.0
    """Multiplier (dimensionless, > 0) on η_m of the attention operator in decode passes (one new token per
    sequence): paged-KV gathers of small blocks reach less bandwidth than a streaming read. 1 = streaming η_m.
    From: TPOT at long context and large batch, where the KV read dominates."""

    moe_gemm_eta: float = 1.0
    """Multiplier (dimensionless, > 0) on both η_c and η_m of the routed-expert GEMM (`moe_experts`): grouped
    GEMMs over many small experts with few tokens each run below a dense GEMM's efficiency. Router and shared
    experts are untouched. From: TPOT/throughput of MoE models against dense models on the same device."""

    fp8_gemm_eta: float = 1.0
    """Multiplier (dimensionless, > 0) on η_c of weight GEMMs computed in fp8 (W8A8), relative to the 16-bit η_c
    the device's efficiency describes. From: prefill/throughput of fp8 against bf16 deployments."""

    int8_gemm_eta: float = 1.0
    """As fp8_gemm_eta, for int8 (W8A8) GEMMs."""

    fp4_gemm_eta: float = 1.0
    """As fp8_gemm_eta, for fp4 (W4A4, e.g. nvfp4/mxfp4) GEMMs."""

    link_latency_s: float | None = None
    """Seconds per all-reduce call inside the scale-up domain (NVLink, xGMI/Infinity Fabric, PCIe, ICI);
    None = LINK_LATENCY_S (10 µs). From: small-message all-reduce latency (nccl-tests / rccl-tests, vidur CSVs)."""

    nic_latency_s: float | None = None
    """Seconds per all-reduce call when the tensor-parallel group spans nodes (the NIC); None = NIC_LATENCY_S."""

    link_efficiency: float | None = None
    """Achieved / peak scale-up bandwidth of large all-reduces (0 < x ≤ 1); None = LINK_EFFICIENCY (0.8).
    From: all-reduce bus bandwidth at large payloads over the datasheet link bandwidth."""

    nic_efficiency: float | None = None
    """Achieved / peak NIC bandwidth of large cross-node all-reduces (0 < x ≤ 1); None = LINK_EFFICIENCY."""

    compute_eta: float = 1.0
    """Multiplier (dimensionless, > 0) on η_c of every operator: the fraction of the device's calibrated GEMM
    efficiency this engine's kernels reach on it (fused attention, MLA, MoE dispatch, fp8 scaling, kernel
    maturity of the vendor stack). Compute binds in prefill, so this is the prefill speed relative to the GEMM
    roofline. From: TTFT at low load and prefill-heavy throughput (serving_fit fits it per device and engine)."""

    def gemm_eta(self, dtype: Dtype | None) -> float:
        """The low-precision multiplier for GEMMs computed in `dtype` (1 for 16/32-bit and weight-only int4)."""
        etas = {Dtype.fp8: self.fp8_gemm_eta, Dtype.int8: self.int8_gemm_eta, Dtype.fp4: self.fp4_gemm_eta}
        return etas.get(dtype, 1.0) if dtype is not None else 1.0


NEUTRAL = ServingParams()

TERMS: dict[str, tuple[str, ...]] = {
    "step_overhead": ("step_overhead_s",),
    "layer_overhead": ("layer_overhead_s",),
    "ttft_overhead": ("ttft_overhead_s",),
    "compute": ("compute_eta",),
    "decode_attention": ("decode_attention_eta",),
    "moe_gemm": ("moe_gemm_eta",),
    "low_precision": ("fp8_gemm_eta", "int8_gemm_eta", "fp4_gemm_eta"),
    "collectives": ("link_latency_s", "nic_latency_s", "link_efficiency", "nic_efficiency"),
}
"""Named terms `analyze` reports, each the ServingParams fields it groups."""


def isolate(params: ServingParams, term: str) -> ServingParams:
    """Neutral parameters except the fields of `term`, taken from `params`: what that term alone changes."""
    return replace(NEUTRAL, **{f: getattr(params, f) for f in TERMS[term]})


def is_neutral(params: ServingParams) -> bool:
    return params == NEUTRAL


@dataclass(frozen=True)
class EngineArrays:
    """ServingParams laid out per config (aligned with DeviceArrays rows); None fields resolved to the constants.

    `gemm_eta` is already the multiplier of the config's weight-GEMM format (see ServingParams.gemm_eta)."""

    step_overhead_s: Floats = 0.0
    layer_overhead_s: Floats = 0.0
    compute_eta: Floats = 1.0
    decode_attention_eta: Floats = 1.0
    moe_gemm_eta: Floats = 1.0
    gemm_eta: Floats = 1.0
    link_latency_s: Floats = LINK_LATENCY_S
    nic_latency_s: Floats = NIC_LATENCY_S
    link_efficiency: Floats = LINK_EFFICIENCY
    nic_efficiency: Floats = LINK_EFFICIENCY

    @classmethod
    def of(
        cls, params: Sequence[ServingParams], devices: Sequence[Device], weight_dtypes: Sequence[Dtype]
    ) -> EngineArrays:
        """One row per (params, device, weight dtype) triple, in the order given (like DeviceArrays.of)."""
        rows = list(zip(params, devices, weight_dtypes, strict=True))

        def col(values: Sequence[float]) -> FloatArray:
            return np.array(values, dtype=float)

        def dflt(x: float | None, default: float) -> float:
            return default if x is None else x

        return cls(
            step_overhead_s=col([p.step_overhead_s for p, _, _ in rows]),
            layer_overhead_s=col([p.layer_overhead_s for p, _, _ in rows]),
            compute_eta=col([p.compute_eta for p, _, _ in rows]),
            decode_attention_eta=col([p.decode_attention_eta for p, _, _ in rows]),
            moe_gemm_eta=col([p.moe_gemm_eta for p, _, _ in rows]),
            gemm_eta=col([p.gemm_eta(matmul_dtype(d, w)) for p, d, w in rows]),
            link_latency_s=col([dflt(p.link_latency_s, LINK_LATENCY_S) for p, _, _ in rows]),
            nic_latency_s=col([dflt(p.nic_latency_s, NIC_LATENCY_S) for p, _, _ in rows]),
            link_efficiency=col([dflt(p.link_efficiency, LINK_EFFICIENCY) for p, _, _ in rows]),
            nic_efficiency=col([dflt(p.nic_efficiency, LINK_EFFICIENCY) for p, _, _ in rows]),
        )

    def take(self, index: IntArray) -> EngineArrays:
        """Rows re-indexed (expand a per-device table to per-config); scalar fields stay scalars."""
        return EngineArrays(
            *(v[index] if isinstance(v, np.ndarray) else v for v in (getattr(self, f.name) for f in fields(self)))
        )


NEUTRAL_ARRAYS = EngineArrays()


def pass_overhead_s(engine: EngineArrays, ops: Sequence[Operator]) -> Floats:
    """Seconds the engine adds to one forward pass of `ops`: the per-step term plus the per-layer term times the
    pass's layers (`pass_layers`). With layer_overhead_s = 0 this is step_overhead_s exactly (x + 0.0·L == x)."""
    return engine.step_overhead_s + engine.layer_overhead_s * float(pass_layers(ops))


def pass_layers(ops: Sequence[Operator]) -> int:
    """Transformer layers of a forward pass: the most any compute operator spans (norms and attention span every
    layer; the collectives row counts calls, two per layer, and is left out)."""
    return max((op.layers for op in ops if op.kind != COMM), default=0)


def serving_params(
    device_id: str,
    engine_id: str | None,
    engines: Mapping[str, Engine],
    calibration: CalibrationFile | None = None,
) -> ServingParams:
    """The terms `analyze --engine` runs with: the calibration's fitted (device, engine) entry, else its
    engine-level entry (fitted across the engine's devices), else the engine's catalog defaults, else neutral (no
    engine given). An engine not in `engines` is an input error."""
    if engine_id is None:
        return NEUTRAL
    if engine_id not in engines:
        raise InputError.single(
            "--engine", "engine", f"unknown engine '{engine_id}' (known: {', '.join(sorted(engines))})"
        )
    fitted = None
    if calibration is not None:
        fitted = calibration.serving.get(device_id, {}).get(engine_id) or calibration.serving_engines.get(engine_id)
    return from_terms(fitted if fitted is not None else engines[engine_id].serving_defaults)


def from_terms(terms: ServingTerms) -> ServingParams:
    """A validated calibration/catalog entry as the cost models' frozen record (same field names)."""
    return ServingParams(**terms.model_dump())
