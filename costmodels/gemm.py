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

Array = np.ndarray

TILE_SHAPES = ((128, 128), (128, 256), (256, 128), (64, 128), (128, 64))


def padded_flops(m: Array, n: Array, k: Array, units: Array) -> Array:
    """FLOPs paid for after tile and wave quantisation (plain 2mnk where `units` is nan or ≤ 0)."""
    m, n, k, units = (np.asarray(x, dtype=float) for x in (m, n, k, units))
    plain = 2.0 * m * n * k
    known = np.isfinite(units) & (units > 0)
    safe_units = np.where(known, units, 1.0)
    best = None
    for tm, tn in TILE_SHAPES:
        tiles = np.ceil(m / tm) * np.ceil(n / tn)
        # Fewer tiles than units: libraries split K over the idle units (split-K / stream-K), so no wave is
        # wasted; otherwise the last, partial wave costs a full one.
        waves = np.where(tiles >= safe_units, np.ceil(tiles / safe_units), tiles / safe_units)
        paid = waves * safe_units * tm * tn * k * 2.0
        best = paid if best is None else np.minimum(best, paid)
    return np.where(known, np.maximum(best, plain), plain)


def padding_factor(m: Array, n: Array, units: Array) -> Array:
    """padded / plain FLOPs for an [m×·]·[·×n] GEMM (k cancels)."""
    one = np.ones_like(np.asarray(m, dtype=float))
    return padded_flops(m, n, one, units) / (2.0 * np.asarray(m, dtype=float) * np.asarray(n, dtype=float))


def gemm_time(
    m: Array,
    n: Array,
    k: Array,
    peak_flops: Array,
    mem_bw: Array,
    eta_c: Array,
    eta_m: Array,
    overhead_s: Array,
    units: Array,
    elem_bytes: float = 2.0,
) -> Array:
    """Time of one GEMM: tile-padded compute vs. reading A, B and writing C once, plus a launch overhead."""
    m, n, k = (np.asarray(x, dtype=float) for x in (m, n, k))
    compute = padded_flops(m, n, k, units) / (peak_flops * eta_c)
    memory = (m * k + k * n + m * n) * elem_bytes / (mem_bw * eta_m)
    return np.maximum(compute, memory) + overhead_s
