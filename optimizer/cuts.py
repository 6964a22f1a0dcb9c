"""Valid inequalities added to the fleet MILP (solver-neutral rows: every backend gets them).

Each family cuts off fractional points of the LP relaxation and no integer-feasible point of the tightened model
(`Formulation.tighten`: coverage clipped at 1, r_c ≥ x_c), so the optimum is unchanged. The one-line validity
argument of each is in its docstring; tests/test_cuts.py checks every family against brute-forced integer points
and a hand-computed example. Measured effect: benchmarks/RESULTS.md ("Cuts").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-9
ROUND_TOL = 1e-6  # a multiplier this close to an integer is rounded to it (CG instead of MIR)
MIN_SHARE_FRAC = 0.05  # with a route share, multipliers are at least this far above an integer (see capacity_mir)
SAFETY = 1e-7  # right-hand sides are lowered by this much, so float noise in coefficients never cuts a plan


@dataclass(frozen=True)
class Cut:
    """coeffs · vars ≥ rhs, over named terms ("r:<config>", "share") before they are mapped to model indices."""

    coeffs: dict[str, float]
    rhs: float


def capacity_mir(coverage: dict[str, float], multiplier: float, with_share: bool) -> Cut:
    """Mixed-integer rounding of a pool's capacity row Σ_c a_c r_c ≥ s (r_c ∈ ℤ≥0, share s ∈ [0, 1]; s = 1 without
    a route split) scaled by λ = `multiplier`: Σ_c λa_c r_c + t ≥ λ with t = λ(1 − s) ≥ 0, and with g = frac(λ) > 0
    the MIR inequality is Σ_c (⌈λa_c⌉ − (g − frac(λa_c))⁺ / g) r_c + t / g ≥ ⌈λ⌉ (Nemhauser–Wolsey; for g = 0 the
    Chvátal–Gomory cut Σ ⌈λa_c⌉ r_c ≥ λ s). Valid: MIR of a valid row over integer r and continuous t ≥ 0.
    With λ = 1/a_k it says "count in units of config k's coverage": k alone needs ⌈1/a_k⌉ replicas, which the LP
    otherwise buys as 1/a_k. Keys of `coverage` are config keys; the cut's terms are "r:<key>" and "share". With a
    share, a multiplier just above an integer is raised to frac 0.05 (any λ > 0 is valid), so the share's
    coefficient λ/g stays moderate for every backend."""
    lam = multiplier
    g = lam - math.floor(lam)
    if with_share and ROUND_TOL <= g < MIN_SHARE_FRAC:  # keep the share's coefficient λ/g moderate: a larger λ
        lam, g = math.floor(lam) + MIN_SHARE_FRAC, MIN_SHARE_FRAC  # is as valid a multiplier
    coeffs: dict[str, float] = {}
    if g < ROUND_TOL or g > 1 - ROUND_TOL:  # λ (nearly) integral: CG with the integer multiplier, exact for every s
        whole = round(lam)
        for key, a in coverage.items():
            coeffs[f"r:{key}"] = float(math.ceil(whole * a - EPS))
        if with_share:
            coeffs["share"] = -float(whole)
            return Cut(coeffs, -SAFETY)
        return Cut(coeffs, whole - SAFETY)
    for key, a in coverage.items():
        la = lam * a
        frac = la - math.floor(la)
        coeffs[f"r:{key}"] = la if frac == 0.0 else math.ceil(la) - max(g - frac, 0.0) / g
    q = float(math.ceil(lam))
    if not with_share:
        return Cut(coeffs, q - SAFETY)
    coeffs["share"] = -lam / g  # t / g = (λ / g)(1 − s)
    return Cut(coeffs, q - lam / g - SAFETY)


def mir_multipliers(coverage: dict[str, float], unit_cost: dict[str, float], count: int) -> list[float]:
    """The multipliers 1/a_k of the `count` configs with the lowest cost per unit of coverage (those the LP
    relaxation leans on), for configs that cannot cover the pool alone with one replica (a_k < 1)."""
    ranked = sorted(coverage, key=lambda k: (unit_cost[k] / coverage[k], k))
    out: list[float] = []
    for k in ranked:
        if coverage[k] < 1 - EPS:
            lam = 1.0 / coverage[k]
            if all(abs(lam - m) > 1e-9 for m in out):
                out.append(lam)
        if len(out) >= count:
            break
    return out


def step_floor(latencies: dict[str, float], with_share: bool, slack_s: float = 0.0) -> Cut:
    """L_{p,s} ≥ (min_c ℓ_c − slack) · s: a pool whose route carries traffic (s > 0) has a config in use (choose
    row, x integer), and every config in use holds L ≥ its floor latency ≥ the least of them. Terms "L" and
    "share" (without a route split s = 1 and the cut is L ≥ min ℓ − slack). The LP otherwise spreads x over
    configs and reads L ≥ max_c ℓ_c x_c, below every config's latency. `slack_s` only weakens the cut (the
    formulation passes CP-SAT's rounding of the share term, so CP-SAT never needs L above the fastest latency)."""
    least = min(latencies.values()) - slack_s
    if with_share:
        return Cut({"L": 1.0, "share": -least}, 0.0)
    return Cut({"L": 1.0}, least)


def node_use(device_sources: list[str], config_key: str) -> Cut:
    """own_d + nodes_d + rent_d ≥ x_c for a config c on device d: a config in use has a replica (r_c ≥ x_c), so
    some device of type d is in service, and with integer counts one of the three sources is ≥ 1 (a bought node
    counts 1 here, however many devices it holds). The LP otherwise buys 1/devices_per_node of a node."""
    coeffs = dict.fromkeys(device_sources, 1.0)
    coeffs[f"x:{config_key}"] = -1.0
    return Cut(coeffs, 0.0)
