"""Shape-aware GEMM time: tile and wave quantisation on top of the roofline.

A GPU GEMM of [m×k]·[k×n] is cut into output tiles; tiles run in waves of one tile per compute unit (SM/CU), so
the work actually paid for is waves · units · tile_m · tile_n · k · 2 FLOPs, not 2·m·n·k (with fewer tiles than
units, split-K fills the machine and only the tile padding of m and n is paid). The library picks the
tile that wastes least; we take the minimum over common CUTLASS/cuBLAS tile shapes. Devices without a
`compute_units` figure (CPUs, TPUs, Gaudi) fall back to the plain roofline (no padding).

    t = max(padded_flops / (peak · η_c), bytes / (BW · η_m)) + overhead
"""

from __future__ import annotations

import numpy as np

from hetplace.costmodels.arrays import FloatArray, Floats

TILE_SHAPES = ((128, 128), (128, 256), (256, 128), (64, 128), (128, 64))


def padded_flops(m: Floats, n: Floats, k: Floats, units: Floats) -> FloatArray:
    """FLOPs paid for after tile and wave quantisation (plain 2mnk where `units` is nan or ≤ 0)."""
    m_, n_, k_, units_ = (np.asarray(x, dtype=np.float64) for x in (m, n, k, units))
    plain = 2.0 * m_ * n_ * k_
    known = np.isfinite(units_) & (units_ > 0)
    safe_units = np.where(known, units_, 1.0)
    best = np.full(np.broadcast(plain, safe_units).shape, np.inf)
    for tm, tn in TILE_SHAPES:
        tiles = np.ceil(m_ / tm) * np.ceil(n_ / tn)
        # Fewer tiles than units: libraries split K over the idle units (split-K / stream-K), so no wave is
        # wasted; otherwise the last, partial wave costs a full one.
        waves = np.where(tiles >= safe_units, np.ceil(tiles / safe_units), tiles / safe_units)
        paid = waves * safe_units * tm * tn * k_ * 2.0
        best = np.minimum(best, paid)
    return np.where(known, np.maximum(best, plain), plain)


def padding_factor(m: Floats, n: Floats, units: Floats) -> FloatArray:
    """padded / plain FLOPs for an [m×·]·[·×n] GEMM (k cancels)."""
    m_ = np.asarray(m, dtype=np.float64)
    return padded_flops(m_, n, np.ones_like(m_), units) / (2.0 * m_ * np.asarray(n, dtype=np.float64))


def gemm_time(
    m: Floats,
    n: Floats,
    k: Floats,
    peak_flops: Floats,
    mem_bw: Floats,
    eta_c: Floats,
    eta_m: Floats,
    overhead_s: Floats,
    units: Floats,
    elem_bytes: float = 2.0,
) -> FloatArray:
    """Time of one GEMM: tile-padded compute vs. reading A, B and writing C once, plus a launch overhead."""
    m_, n_, k_ = (np.asarray(x, dtype=np.float64) for x in (m, n, k))
    compute = padded_flops(m_, n_, k_, units) / (np.multiply(peak_flops, eta_c))
    memory = (m_ * k_ + k_ * n_ + m_ * n_) * elem_bytes / (np.multiply(mem_bw, eta_m))
    return np.maximum(compute, memory) + overhead_s
