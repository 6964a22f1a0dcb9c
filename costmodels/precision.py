"""Which numeric formats a serving config stores and computes in, and whether a device can run it.

Rules (documented in README "Cost models"):
- fp8 / int8 / fp4 weights compute in that format (W8A8, W4A4): the device must list the dtype in `peak_tflops`.
- int4 weights are weight-only quantisation (W4A16, AWQ/GPTQ-style kernels): stored in 4 bits, computed in 16-bit.
- bf16 / fp16 compute in 16-bit; a device without bf16 (V100, T4) runs bf16 models in fp16.
- Attention always computes in 16-bit; the KV cache may be stored in fp8 on any device (storage only).
A format the device cannot run makes the config infeasible — never extrapolated from another format.
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplace.catalogs.schema import DTYPE_BYTES, Device, Dtype

ACT_BYTES = 2.0  # activations travel in 16-bit
SIXTEEN_BIT = (Dtype.bf16, Dtype.fp16)
NATIVE_COMPUTE = (Dtype.fp8, Dtype.int8, Dtype.fp4)
# Formats a KV cache may be stored in (scenario allowed_kv_dtypes, analyze --kv-dtype): 16-bit, or fp8 (storage only,
# read back to 16-bit for attention).
KV_CACHE_DTYPES = (Dtype.bf16, Dtype.fp16, Dtype.fp8)


@dataclass(frozen=True)
class Precision:
    weight: Dtype
    kv: Dtype

    @property
    def weight_bytes(self) -> float:
        return DTYPE_BYTES[self.weight]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv]


def sixteen_bit_dtype(device: Device) -> Dtype | None:
    """The 16-bit format the device computes in (bf16 preferred), or None if it has neither."""
    return next((d for d in SIXTEEN_BIT if d in device.peak_tflops), None)


def matmul_dtype(device: Device, weight: Dtype) -> Dtype | None:
    """Format the weight GEMMs run in on `device`, or None if the device cannot run `weight` at all."""
    if weight in NATIVE_COMPUTE:
        return weight if weight in device.peak_tflops else None
    if weight == Dtype.fp32:
        return Dtype.fp32 if Dtype.fp32 in device.peak_tflops else None
    return sixteen_bit_dtype(device)  # bf16, fp16, tf32-stored and int4 weight-only


def unsupported_reason(device: Device, weight: Dtype) -> str | None:
    """Why `device` cannot run weights in `weight`, or None when it can."""
    if matmul_dtype(device, weight) is not None and sixteen_bit_dtype(device) is not None:
        return None
    if sixteen_bit_dtype(device) is None:
        return f"{device.id} has no bf16/fp16 peak for attention"
    return f"{device.id} has no native {weight.value} (its peaks: {', '.join(d.value for d in device.peak_tflops)})"
