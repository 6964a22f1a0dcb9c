"""Dantzig–Wolfe decomposition by model family: column generation with a Lagrangian lower bound.

Columns are whole integer family plans (a point of one family's block: replicas, in-use flags, route shares, KV
dtype, the latencies they give). The master keeps the linking rows (partition.py) over the master variables and
a convex combination of each family's columns. Its LP bound is that of the convex hull of every family's integer
plans — a family's configs must meet all its steps at once, which per-step cuts cannot express.

Bound. For any multipliers y on the linking rows (sign-correct), the Lagrangian

    L(y) = Σ_families min_{x ∈ X_F} (c − Aᵀy)·x  +  min_{box} (c₀ − A₀ᵀy)·x₀  +  Σ_rows min_{r ∈ [lo, hi]} y·r

is a lower bound on the optimum. Each family minimum is its pricing MILP, and the bound uses that MILP's proven
dual bound, so an early stop or an inexact pricing weakens the bound, never invalidates it. At convergence L(y)
equals the master LP value. Pricing adds a tiny push toward short latencies and few replicas (so of equally priced
plans the faster becomes the column); its largest possible effect is subtracted from the bound.

The LP master and the pricing MILPs run on HiGHS (they need LP duals and models kept between solves); the integer
master over the generated columns is a LinearModel and runs on any backend (master.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import highspy
import numpy as np

from hetplace.optimizer.decomposition.highs_block import INF, block_highs, new_highs, row_bounds
from hetplace.optimizer.decomposition.partition import Block, Partition
from hetplace.optimizer.linear import LinearModel

Progress = Callable[[float | None, float | None], None]  # (incumbent, bound), either may be unknown
# A fast pricer: (block, its Pricer, block-local reduced costs) -> (reduced cost, values fixing a plan) or None
QuickPrice = Callable[[int, "Pricer", np.ndarray], "tuple[float, dict[int, float]] | None"]
PUSH = 1e-7  # tie-break push in pricing, as a share of the largest device-year price, per family


@dataclass
class Column:
    block: int
    values: np.ndarray  # the block's variables, in its local order
    cost: float  # the column's share of the objective
    link: dict[int, float]  # linking-row position -> the column's coefficient in that row


class Pricer:
    """One family's pricing MILP, kept alive between calls; only the costs change."""

    def __init__(self, model: LinearModel, block: Block, link_pos: dict[int, int], push_scale: float) -> None:
        self.block = block
        local = {g: j for j, g in enumerate(block.variables)}
        self.local = local
        rows = [{local[i]: c for i, c in model.rows[k].coeffs.items()} for k in block.rows]
        bounds = [row_bounds(model.rows[k]) for k in block.rows]
        self.h = block_highs([model.vars[g] for g in block.variables], rows, bounds)
        n = len(block.variables)
        self.n = n
        self.cost = np.array([model.objective.get(g, 0.0) for g in block.variables])
        self.lb = np.array([model.vars[g].lb for g in block.variables])
        self.ub = np.array([model.vars[g].ub for g in block.variables])
        pos, col, val, push = [], [], [], np.zeros(n)
        for k, p in link_pos.items():
            r = model.rows[k]
            sign = 1.0 if r.sense == "<=" else -1.0 if r.sense == ">=" else 0.0
            for i, c in r.coeffs.items():
                j = local.get(i)
                if j is not None:
                    pos.append(p)
                    col.append(j)
                    val.append(c)
                    push[j] += sign * c
        self.link_pos = np.array(pos, dtype=np.int64)
        self.link_col = np.array(col, dtype=np.int64)
        self.link_val = np.array(val, dtype=float)
        push = np.where(np.isfinite(self.ub) & (self.lb >= 0), np.maximum(push, 0.0), 0.0)
        reach = float(np.sum(push * np.where(np.isfinite(self.ub), self.ub, 0.0)))
        self.push = push * (PUSH * push_scale / reach) if reach > 0 else push
        self.push_reach = float(np.sum(self.push * np.where(np.isfinite(self.ub), self.ub, 0.0)))
        self.idx = np.arange(n, dtype=np.int32)

    def reduced(self, y: np.ndarray) -> np.ndarray:
        red = self.cost.copy()
        np.add.at(red, self.link_col, -y[self.link_pos] * self.link_val)
        return red

    def price(self, y: np.ndarray, time_limit_s: float | None) -> tuple[np.ndarray | None, float]:
        """The family plan of least reduced cost at multipliers y, and a proven lower bound on that least
        reduced cost (-inf when the MILP gives none)."""
        red = self.reduced(y)
        self.h.changeColsCost(self.n, self.idx, red + self.push)
        self.h.setOptionValue("time_limit", float(time_limit_s) if time_limit_s is not None else INF)
        self.h.run()
        status = self.h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise Infeasible(self.block.family)
        info = self.h.getInfo()
        if info.primal_solution_status != 2:
            return None, -math.inf
        x = np.array(self.h.getSolution().col_value)
        bound = float(info.mip_dual_bound)
        if not math.isfinite(bound):
            return x, -math.inf
        return x, bound - self.push_reach

    def complete(self, fixed: dict[int, float]) -> np.ndarray | None:
        """The family point with the given (global index -> value) variables fixed, the rest at their least pushed
        values (tight latencies): turns a heuristic plan into a column."""
        local = {g: j for j, g in enumerate(self.block.variables)}
        idx = np.array([local[g] for g in fixed if g in local], dtype=np.int32)
        vals = np.array([fixed[g] for g in fixed if g in local], dtype=float)
        if len(idx):
            self.h.changeColsBounds(len(idx), idx, vals, vals)
        self.h.changeColsCost(self.n, self.idx, self.push + 1e-9)
        self.h.setOptionValue("time_limit", INF)
        self.h.run()
        ok = self.h.getInfo().primal_solution_status == 2
        x = np.array(self.h.getSolution().col_value) if ok else None
        if len(idx):
            self.h.changeColsBounds(len(idx), idx, self.lb[idx], np.where(np.isfinite(self.ub[idx]), self.ub[idx], INF))
        return x

    def column(self, block_index: int, x: np.ndarray) -> Column:
        x = np.where(np.abs(x - np.round(x)) < 1e-7, np.round(x), x)
        contrib = self.link_val * x[self.link_col]
        link: dict[int, float] = {}
        for p, v in zip(self.link_pos.tolist(), contrib.tolist(), strict=True):
            if v != 0.0:
                link[p] = link.get(p, 0.0) + v
        return Column(block_index, x, float(self.cost @ x), link)


class Infeasible(Exception):
    """A family has no plan at all (its block alone is infeasible)."""


@dataclass
class MasterLp:
    """The restricted master LP on HiGHS: linking rows, one convexity row per family, the master variables
    (relaxed), artificial slacks at a high price (so it is always feasible) and the columns."""

    h: highspy.Highs
    n_link: int
    n_blocks: int
    columns: list[Column] = field(default_factory=list)

    @classmethod
    def build(cls, model: LinearModel, part: Partition, penalty: float) -> MasterLp:
        h = new_highs()
        n_link, n_blocks = len(part.linking_rows), len(part.blocks)
        lower = [row_bounds(model.rows[k])[0] for k in part.linking_rows] + [1.0] * n_blocks
        upper = [row_bounds(model.rows[k])[1] for k in part.linking_rows] + [1.0] * n_blocks
        h.addRows(
            len(lower),
            np.array(lower, dtype=float),
            np.array(upper, dtype=float),
            0,
            np.array([], dtype=np.int32),
            np.array([], dtype=np.int32),
            np.array([], dtype=float),
        )
        entries: dict[int, list[tuple[int, float]]] = {i: [] for i in part.master_vars}
        for p, k in enumerate(part.linking_rows):
            for i, c in model.rows[k].coeffs.items():
                if i in entries:
                    entries[i].append((p, c))
        for i in part.master_vars:
            v = model.vars[i]
            rows = entries[i]
            h.addCol(
                model.objective.get(i, 0.0),
                v.lb,
                INF if math.isinf(v.ub) else v.ub,
                len(rows),
                np.array([p for p, _ in rows], dtype=np.int32),
                np.array([c for _, c in rows], dtype=float),
            )
        for p, k in enumerate(part.linking_rows):  # artificials: relax each row at a high price
            sense = model.rows[k].sense
            for sign in (1.0, -1.0):
                if (sense == "<=" and sign > 0) or (sense == ">=" and sign < 0):
                    continue
                h.addCol(penalty, 0.0, INF, 1, np.array([p], dtype=np.int32), np.array([sign]))
        for b in range(n_blocks):
            h.addCol(penalty, 0.0, INF, 1, np.array([n_link + b], dtype=np.int32), np.array([1.0]))
        return cls(h, n_link, n_blocks)

    def add(self, col: Column) -> None:
        rows = sorted(col.link)
        idx = np.array([*rows, self.n_link + col.block], dtype=np.int32)
        vals = np.array([col.link[p] for p in rows] + [1.0], dtype=float)
        self.h.addCol(col.cost, 0.0, INF, len(idx), idx, vals)
        self.columns.append(col)

    def solve(self) -> tuple[float, np.ndarray, np.ndarray]:
        """LP value, duals of the linking rows, duals of the convexity rows."""
        self.h.run()
        sol = self.h.getSolution()
        duals = np.array(sol.row_dual)
        return float(self.h.getInfo().objective_function_value), duals[: self.n_link], duals[self.n_link :]


@dataclass
class Bounder:
    """The parts of L(y) outside the families: the master variables' box and the rows' right-hand sides."""

    lo: np.ndarray
    hi: np.ndarray
    master_cost: np.ndarray
    master_lb: np.ndarray
    master_ub: np.ndarray
    entries_pos: np.ndarray
    entries_var: np.ndarray
    entries_val: np.ndarray
    constant: float

    @classmethod
    def of(cls, model: LinearModel, part: Partition) -> Bounder:
        lo = np.array([row_bounds(model.rows[k])[0] for k in part.linking_rows], dtype=float)
        hi = np.array([row_bounds(model.rows[k])[1] for k in part.linking_rows], dtype=float)
        where = {i: j for j, i in enumerate(part.master_vars)}
        pos, var, val = [], [], []
        for p, k in enumerate(part.linking_rows):
            for i, c in model.rows[k].coeffs.items():
                j = where.get(i)
                if j is not None:
                    pos.append(p)
                    var.append(j)
                    val.append(c)
        mv = [model.vars[i] for i in part.master_vars]
        return cls(
            lo,
            hi,
            np.array([model.objective.get(i, 0.0) for i in part.master_vars]),
            np.array([v.lb for v in mv]),
            np.array([v.ub for v in mv]),
            np.array(pos, dtype=np.int64),
            np.array(var, dtype=np.int64),
            np.array(val, dtype=float),
            model.objective_constant,
        )

    def clip(self, y: np.ndarray) -> np.ndarray:
        """Multipliers with the sign their rows allow (≥ rows non-negative, ≤ rows non-positive)."""
        y = np.where(np.isfinite(self.lo), y, np.minimum(y, 0.0))
        return np.where(np.isfinite(self.hi), y, np.maximum(y, 0.0))

    def outside(self, y: np.ndarray) -> float:
        red = self.master_cost.copy()
        np.add.at(red, self.entries_var, -y[self.entries_pos] * self.entries_val)
        red = np.where(np.abs(red) < 1e-12, 0.0, red)
        box = np.where(red > 0, red * self.master_lb, np.where(red < 0, red * self.master_ub, 0.0))
        rhs = np.where(y > 0, y * np.where(np.isfinite(self.lo), self.lo, 0.0), 0.0) + np.where(
            y < 0, y * np.where(np.isfinite(self.hi), self.hi, 0.0), 0.0
        )
        total = float(np.sum(box) + np.sum(rhs))
        return total + self.constant if math.isfinite(total) else -math.inf


@dataclass
class Generation:
    """What column generation ends with."""

    bound: float  # proven lower bound on the model's optimum
    lp_value: float  # the last restricted master LP value
    iterations: int
    converged: bool
    columns: list[Column]
    start_columns: list[int]  # the start plan's column per family (empty when there was none or it failed)


def generate_columns(
    model: LinearModel,
    part: Partition,
    start: dict[int, float] | None,
    deadline: float,
    tolerance: float,
    push_scale: float,
    initial_y: dict[int, float],
    progress: Progress | None = None,
    max_iterations: int = 200,
    quick: QuickPrice | None = None,
) -> Generation:
    """Column generation from a start plan's columns (and a cheapest-plan column per family) until no column
    prices out or the Lagrangian bound is within `tolerance` of the master LP value."""
    link_pos = {k: p for p, k in enumerate(part.linking_rows)}
    block_links: list[dict[int, int]] = [{} for _ in part.blocks]
    for k in part.linking_rows:
        for i in model.rows[k].coeffs:
            b = part.owner.get(i)
            if b is not None:
                block_links[b][k] = link_pos[k]
    pricers = [Pricer(model, b, block_links[n], push_scale) for n, b in enumerate(part.blocks)]
    bounder = Bounder.of(model, part)
    penalty = max(1e6, 1e3 * push_scale)
    master = MasterLp.build(model, part, penalty)
    seen: set[bytes] = set()

    def add(block: int, x: np.ndarray | None) -> bool:
        if x is None:
            return False
        col = pricers[block].column(block, x)
        key = block.to_bytes(4, "little") + np.round(col.values, 7).tobytes()
        if key in seen:
            return False
        seen.add(key)
        master.add(col)
        return True

    start_columns: list[int] = []
    if start is not None:
        for n, p in enumerate(pricers):
            if add(n, p.complete({g: v for g, v in start.items() if part.owner.get(g) == n})):
                start_columns.append(len(master.columns) - 1)
        if len(start_columns) != len(pricers):
            start_columns = []
    best = -math.inf

    def lagrangian(y: np.ndarray) -> tuple[float, list[np.ndarray | None]]:
        """L(y) and each family's priced plan; past the deadline the remaining families go unpriced (no plan, and
        the round proves nothing: -inf)."""
        xs: list[np.ndarray | None] = []
        total = bounder.outside(y)
        for p in pricers:
            left = deadline - time.perf_counter()
            if left <= 0:
                xs.append(None)
                total = -math.inf
                continue
            x, lb = p.price(y, max(0.05, left))
            xs.append(x)
            total += lb
        return total, xs

    # A first multiplier guess (`initial_y`, row index -> multiplier): each fleet row at minus its cheapest device
    # price (what a device costs at least), every other row free. Its plans are each family's cheapest ignoring
    # latency, and its L(y) a first bound.
    y0 = bounder.clip(np.array([initial_y.get(k, 0.0) for k in part.linking_rows]))
    bound0, xs = lagrangian(y0)
    best = max(best, bound0)
    for n, x in enumerate(xs):
        add(n, x)
    iterations, converged, lp_value, quick_rounds = 0, False, math.inf, 0
    centre, centre_bound = y0, bound0
    while iterations < max_iterations and time.perf_counter() < deadline:
        iterations += 1
        lp_value, y_lp, sigma = master.solve()
        y_lp = bounder.clip(y_lp)
        if progress is not None:
            progress(None, best)
        if lp_value - best <= tolerance * max(abs(lp_value), 1.0):
            converged = True
            break
        if quick is not None and quick_rounds < max_iterations:
            # Cheap columns first: while the fast pricer finds plans of negative reduced cost, no exact round.
            found = False
            for n, p in enumerate(pricers):
                option = quick(n, p, p.reduced(y_lp))
                if option is not None and option[0] - sigma[n] < -1e-9 * max(abs(lp_value), 1.0):
                    found = add(n, p.complete(option[1])) or found
            if found:
                quick_rounds += 1
                continue
        # Wentges smoothing: price between the best multipliers so far and the master's; fall back to the master's
        # duals when the smoothed point prices out nothing.
        added = False
        for alpha in (0.5, 0.0):
            y = bounder.clip(alpha * centre + (1 - alpha) * y_lp)
            bound, xs = lagrangian(y)
            if bound > centre_bound:
                centre, centre_bound = y, bound
            best = max(best, bound)
            for n, x in enumerate(xs):
                if x is None:
                    continue
                col = pricers[n].column(n, x)
                rc = col.cost - sum(y_lp[p] * v for p, v in col.link.items()) - sigma[n]
                if rc < -1e-9 * max(abs(lp_value), 1.0) and add(n, x):
                    added = True
            if added or time.perf_counter() >= deadline:
                break
        if not added:
            converged = lp_value - best <= tolerance * max(abs(lp_value), 1.0)
            lp_value, _, _ = master.solve()
            break
    return Generation(best, lp_value, iterations, converged, master.columns, start_columns)
