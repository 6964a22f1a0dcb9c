"""Small HiGHS models built straight from arrays: the family pricing MILPs and the master LP, which need what the
solver-neutral backends do not give — LP duals, and a model kept alive between solves whose costs change."""

from __future__ import annotations

import math

import highspy
import numpy as np

from hetplace.optimizer.linear import Row, Var

INF = highspy.kHighsInf


def new_highs(gap: float = 1e-6, threads: int = 1) -> highspy.Highs:
    h = highspy.Highs()
    for name, setting in (
        ("output_flag", False),
        ("threads", threads),
        ("random_seed", 0),
        ("mip_rel_gap", gap),
    ):
        h.setOptionValue(name, setting)
    return h


def row_bounds(row: Row) -> tuple[float, float]:
    """(lower, upper) of a row as HiGHS takes it."""
    lo = row.rhs if row.sense in (">=", "==") else -INF
    hi = row.rhs if row.sense in ("<=", "==") else INF
    return lo, hi


def block_highs(variables: list[Var], rows: list[dict[int, float]], bounds: list[tuple[float, float]]) -> highspy.Highs:
    """A HiGHS model over `variables` (local indices) with `rows` (local coefficients) and their bounds, zero cost."""
    h = new_highs()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(variables), len(rows)
    lp.col_cost_ = np.zeros(len(variables))
    lp.col_lower_ = np.array([v.lb for v in variables], dtype=float)
    lp.col_upper_ = np.array([INF if math.isinf(v.ub) else v.ub for v in variables], dtype=float)
    lp.row_lower_ = np.array([b[0] for b in bounds], dtype=float)
    lp.row_upper_ = np.array([b[1] for b in bounds], dtype=float)
    starts: list[int] = [0]
    index: list[int] = []
    value: list[float] = []
    for coeffs in rows:
        index.extend(coeffs.keys())
        value.extend(coeffs.values())
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value, dtype=float)
    if any(v.integer for v in variables):
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if v.integer else highspy.HighsVarType.kContinuous for v in variables
        ]
    h.passModel(lp)
    return h
