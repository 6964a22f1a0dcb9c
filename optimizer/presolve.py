"""Exact menu reductions before the model is built: drop configs that cannot appear in any optimal plan.

Every rule here keeps the optimum (tests compare pruned and unpruned solves):

- critical path: a config whose step latency, with the other pools of its route and every other step of the
  workflow at their fastest possible configs (over routes), already breaks the end-to-end SLA can never be in use;
- dominance: on the same device, config `o` dominates `c` when c's tensor-parallel degree is a multiple m of o's,
  m replicas of o deliver at least c's throughput, and o is at least as fast on every served step. Each replica of
  c can then be swapped for m replicas of o on the same devices without raising cost or any latency. Both must
  store the KV cache in the same dtype: a disaggregated route's prefill and decode configs agree on one, so a
  config of another KV dtype is no substitute. A co-located config at a lower load level counts for less capacity,
  so it dominates none at a higher level; queueing pools (percentile SLAs) are left whole, their latencies depend
  on the replica count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hetplace.optimizer.pools import Config, Pool, StepRef, coverage_load, routes_by_family
from hetplace.problems.dag import longest_paths
from hetplace.problems.schema import Workflow


@dataclass(frozen=True)
class FastestRoute:
    """A step's fastest possible execution over the routes that can serve it."""

    duration_s: float  # one execution (a route's pool latencies add up)
    device: str  # the device of its slowest part ("-" when no pool serves the step)


def step_latency(c: Config, ref: StepRef) -> float:
    """Per-execution latency of a served step on config c, transfer included."""
    return c.latency_s[ref] + c.extra_s.get(ref, 0.0)


def fastest_config(configs: list[Config], ref: StepRef) -> Config | None:
    """The config with the lowest latency on step `ref` (the first of equals; None without configs)."""
    best: Config | None = None
    best_s = 0.0
    for c in configs:
        t = step_latency(c, ref)
        if best is None or t < best_s:
            best, best_s = c, t
    return best


def _dominates(o: Config, c: Config, steps: list[StepRef]) -> bool:
    if o is c or c.tp % o.tp or o.kv_dtype != c.kv_dtype:
        return False
    ratio = c.tp // o.tp
    lat_o = [step_latency(o, r) for r in steps]
    lat_c = [step_latency(c, r) for r in steps]
    if o.throughput * ratio < c.throughput or any(a > b for a, b in zip(lat_o, lat_c, strict=True)):
        return False
    # Exact ties: keep one of the two, the one with the smaller tensor-parallel degree or earlier batch.
    strict = o.throughput * ratio > c.throughput or any(a < b for a, b in zip(lat_o, lat_c, strict=True))
    return strict or (o.tp, o.batch) < (c.tp, c.batch)


def dominated_mask(group: list[Config], coverage: list[float], steps: list[StepRef]) -> np.ndarray:
    """Which configs of one device's group some other config of the group dominates (`_dominates`, with at least
    its coverage load), all pairs at once: the pairwise test is what a sweep point's model build spends its time on.
    """
    n = len(group)
    tp = np.array([c.tp for c in group], dtype=np.int64)
    batch = np.array([c.batch for c in group], dtype=np.int64)
    thr = np.array([c.throughput for c in group], dtype=float)
    cov = np.array(coverage, dtype=float)
    kv = np.array([str(c.kv_dtype) for c in group], dtype=object)
    lat = np.array([[step_latency(c, r) for r in steps] for c in group], dtype=float).reshape(n, len(steps))
    # axis 0: the dominating o, axis 1: the dominated c
    divides = tp[None, :] % tp[:, None] == 0
    ratio = np.where(divides, tp[None, :] // tp[:, None], 0)
    scaled = thr[:, None] * ratio
    no_slower = (lat[:, None, :] <= lat[None, :, :]).all(axis=2)
    faster_somewhere = (lat[:, None, :] < lat[None, :, :]).any(axis=2)
    earlier = (tp[:, None] < tp[None, :]) | ((tp[:, None] == tp[None, :]) & (batch[:, None] < batch[None, :]))
    strict = (scaled > thr[None, :]) | faster_somewhere | earlier
    dominates = (
        divides
        & (kv[:, None] == kv[None, :])
        & (cov[:, None] >= cov[None, :])
        & (scaled >= thr[None, :])
        & no_slower
        & strict
    )
    np.fill_diagonal(dominates, False)
    return dominates.any(axis=0)


def prune_dominated(pools: list[Pool]) -> int:
    """Drop dominated configs (see module docstring). Returns how many were dropped."""
    dropped = 0
    for pool in pools:
        if pool.queueing:
            continue
        by_device: dict[str, list[Config]] = {}
        for c in pool.configs:
            by_device.setdefault(c.device, []).append(c)
        kept = []
        for group in by_device.values():
            mask = dominated_mask(group, [coverage_load(pool, c) for c in group], pool.steps)
            kept += [c for c, out in zip(group, mask, strict=True) if not out]
        dropped += len(pool.configs) - len(kept)
        pool.configs = kept
    return dropped


def fastest_pool_latencies(pools: list[Pool]) -> dict[tuple[str, StepRef], float]:
    """Per (pool, served step): the fastest per-execution latency any config of the pool offers."""
    return {
        (pool.id, ref): min((step_latency(c, ref) for c in pool.configs), default=float("inf"))
        for pool in pools
        for ref in pool.steps
    }


def fastest_routes(pools: list[Pool], workflows: list[Workflow]) -> dict[StepRef, FastestRoute]:
    """Per step: the fastest possible duration of one execution over the routes that can serve it (a route's
    pool latencies add up), and the device that dominates it. Steps no pool serves take 0 s."""
    best_config = {(pool.id, ref): fastest_config(pool.configs, ref) for pool in pools for ref in pool.steps}
    by_route: dict[StepRef, dict[tuple[str, str], list[tuple[float, str]]]] = {}
    for pool in pools:
        for ref in pool.steps:
            c = best_config[(pool.id, ref)]
            part = (step_latency(c, ref), c.device) if c is not None else (float("inf"), "-")
            by_route.setdefault(ref, {}).setdefault((pool.family, pool.route), []).append(part)
    out: dict[StepRef, FastestRoute] = {}
    for wf in workflows:
        for s in wf.steps:
            routes = by_route.get(StepRef(wf.id, s.id), {}).values()
            parts = min(routes, key=lambda ps: sum(t for t, _ in ps), default=[(0.0, "-")])
            out[StepRef(wf.id, s.id)] = FastestRoute(sum(t for t, _ in parts), max(parts)[1])
    return out


def fastest_step_durations(pools: list[Pool], workflows: list[Workflow]) -> dict[StepRef, float]:
    """Per step: the fastest possible duration of one execution (see `fastest_routes`)."""
    return {ref: r.duration_s for ref, r in fastest_routes(pools, workflows).items()}


def path_margins(workflows: list[Workflow], duration_s: dict[StepRef, float]) -> dict[StepRef, float]:
    """Per step: the SLA minus the longest path through the step excluding the step itself (earliest start plus
    longest tail), i.e. the most time all of the step's repeats may take."""
    margins: dict[StepRef, float] = {}
    for wf in workflows:
        times = longest_paths(wf, {s.id: duration_s[StepRef(wf.id, s.id)] for s in wf.steps})
        for s in wf.steps:
            margins[StepRef(wf.id, s.id)] = wf.sla.e2e_latency_s - times.start_s[s.id] - times.tail_s[s.id]
    return margins


def prune_by_critical_path(pools: list[Pool], workflows: list[Workflow]) -> int:
    """Drop configs that break an SLA even when every other step runs at its fastest. Returns how many."""
    durations = fastest_step_durations(pools, workflows)
    if any(d == float("inf") for d in durations.values()):
        return 0  # some step cannot be served at all: leave the menus whole for the diagnosis
    fastest = fastest_pool_latencies(pools)
    repeat = {StepRef(wf.id, s.id): s.repeat for wf in workflows for s in wf.steps}
    margin = path_margins(workflows, {ref: repeat[ref] * d for ref, d in durations.items()})
    partners: dict[str, list[Pool]] = {}  # pool id -> the other pools of its route
    for routes in routes_by_family(pools).values():
        for route_pools in routes.values():
            for pool in route_pools:
                partners[pool.id] = [p for p in route_pools if p is not pool]
    dropped = 0
    for pool in pools:
        kept = [
            c
            for c in pool.configs
            if all(
                repeat[r] * (step_latency(c, r) + sum(fastest[(p.id, r)] for p in partners[pool.id]))
                <= margin[r] + 1e-9
                for r in pool.steps
            )
        ]
        dropped += len(pool.configs) - len(kept)
        pool.configs = kept
    return dropped
