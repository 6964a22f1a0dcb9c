"""Fast pricing between exact rounds: each family's best plan with one config per pool on one route, scored with
numpy at the master's duals.

Device prices are linear, and a disaggregated route's latency cost is the prefill's plus the decode's, so a
route's best single-config plan is the best config of each pool (per KV dtype, since the two must agree) — no
pairs to enumerate. A plan found here is a true family plan (its latencies are recomputed by the block), so it is
a valid column; it proves nothing, so the bound still comes from the exact pricing rounds (colgen.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hetplace.optimizer.decomposition.colgen import Pricer
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.heuristic import _Menu
from hetplace.optimizer.pools import DISAGGREGATED, StepRef, routes_by_family


@dataclass
class _PoolArrays:
    replicas_var: np.ndarray  # global index of each config's r
    in_use_var: np.ndarray  # global index of each config's x
    replicas: np.ndarray  # replicas each config needs alone
    latency_s: np.ndarray  # configs × the pool's steps, transfer included
    latency_var: list[int]  # global index of L per step
    kv: np.ndarray
    steps: list[StepRef]


@dataclass
class _Route:
    name: str
    pools: list[_PoolArrays]
    share_var: int | None


class QuickPricer:
    def __init__(self, f: Formulation, families: list[str]) -> None:
        by_family = routes_by_family(f.pools)
        self.durations: list[dict[StepRef, int]] = []  # family -> its split-duration variable per step
        self.routes: list[list[_Route]] = []
        self.kv_vars: list[dict[str, int]] = []
        self.all_vars: list[list[int]] = []  # the integer plan variables to fix
        latency_vars = set(f.latency_vars.values())
        for family in families:
            routes = []
            fixed: list[int] = []
            for route, pools in by_family[family].items():
                arrays = []
                for pool in pools:
                    menu = _Menu.of(pool)
                    cv = [f.config_vars[c.key] for c in pool.configs]
                    arrays.append(
                        _PoolArrays(
                            np.array([v.replicas for v in cv], dtype=np.int64),
                            np.array([v.in_use for v in cv], dtype=np.int64),
                            np.array(menu.replicas, dtype=float),
                            menu.latency_s,
                            [f.latency_vars[(pool.id, ref)] for ref in pool.steps],
                            menu.kv_dtypes,
                            list(pool.steps),
                        )
                    )
                    fixed += [v.replicas for v in cv] + [v.in_use for v in cv]
                share = f.share_vars.get(family, {}).get(route)
                if share is not None:
                    fixed.append(share)
                routes.append(_Route(route, arrays, share))
            steps = {ref for ps in by_family[family].values() for p in ps for ref in p.steps}
            self.durations.append(
                {
                    ref: next(iter(f.duration_terms[ref]))
                    for ref in steps
                    if len(f.duration_terms.get(ref, {})) == 1 and next(iter(f.duration_terms[ref])) not in latency_vars
                }
            )
            kv = f.kv_vars.get(family, {})
            fixed += list(kv.values())
            self.routes.append(routes)
            self.kv_vars.append(kv)
            self.all_vars.append(fixed)

    def best(self, n: int, pricer: Pricer, red: np.ndarray) -> tuple[float, dict[int, float]] | None:
        """The family's cheapest single-config plan at these reduced costs (block-local `red`): its reduced cost
        (before the convexity dual) and the integer values that fix it."""
        local = pricer.local

        def r(g: int) -> float:
            return float(red[local[g]])

        best: tuple[float, dict[int, float]] | None = None
        dur = self.durations[n]
        for route in self.routes[n]:
            per_pool = []
            for p in route.pools:
                cost = red[[local[g] for g in p.replicas_var]] * p.replicas + red[[local[g] for g in p.in_use_var]]
                for k, ref in enumerate(p.steps):
                    w = r(p.latency_var[k]) + (r(dur[ref]) if ref in dur else 0.0)
                    if w:
                        cost = cost + w * p.latency_s[:, k]
                per_pool.append(cost)
            share_cost = r(route.share_var) if route.share_var is not None else 0.0
            kvs = [""] if route.name != DISAGGREGATED or not self.kv_vars[n] else list(self.kv_vars[n])
            for kv in kvs:
                total = share_cost + (r(self.kv_vars[n][kv]) if kv else 0.0)
                picks = []
                for p, cost in zip(route.pools, per_pool, strict=True):
                    usable = (p.kv == kv) if kv else np.ones(len(cost), dtype=bool)
                    if not usable.any():
                        total = math.inf
                        break
                    i = int(np.argmin(np.where(usable, cost, np.inf)))
                    total += float(cost[i])
                    picks.append((p, i))
                if not math.isfinite(total) or (best is not None and total >= best[0]):
                    continue
                values = dict.fromkeys(self.all_vars[n], 0.0)
                for p, i in picks:
                    values[int(p.replicas_var[i])] = float(p.replicas[i])
                    values[int(p.in_use_var[i])] = 1.0
                if route.share_var is not None:
                    values[route.share_var] = 1.0
                if kv:
                    values[self.kv_vars[n][kv]] = 1.0
                best = (total, values)
        return best
