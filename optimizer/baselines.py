"""Homogeneous baselines: the best fleet with one accelerator type, for every offered accelerator.

The baseline's accelerator serves every LLM, embedding and encoder step; the scenario's CPU sockets serve only
tool calls and retrieval (`cpus_for_tools_only`), so a "single-accelerator" fleet never runs a model on CPUs.

Cheap by construction, without changing any result:
- the menus are built once, by the main plan's build (`Menus`, captured before its pruning), and each baseline
  takes the configs of its devices from them, then prunes exactly as a build for those devices alone would — the
  same model, variable for variable (tests/test_baselines_fast.py compares them);
- before any MILP, a counting proof (`device_shortfall`): every pool served only by the accelerator needs at
  least a known number of its devices (the capacity row's best coverage per device, whole replicas), and when the
  sum exceeds what the scenario offers of that type, no plan exists. Only baselines the proof cannot settle are
  solved, by the same method as the plan.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hetplace.catalogs.schema import DeviceKind
from hetplace.common.enums import Phase, SolverStatus
from hetplace.optimizer.assemble import assemble_plan
from hetplace.optimizer.backends import SolveResult
from hetplace.optimizer.formulation import DeviceOffer, Formulation, formulation_from_pools
from hetplace.optimizer.pools import Pool, coverage_load, routes_by_family
from hetplace.optimizer.presolve import prune_by_critical_path, prune_dominated
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Baseline

CPU_BASELINE_PHASES = frozenset({Phase.tool, Phase.retrieval})


def cpus_for_tools_only(pools: list[Pool], offers: dict[str, DeviceOffer]) -> int:
    """Baselines: drop CPU configs from every pool but tool calls and retrieval (LLM, embedding and encoder pools
    stay on the baseline's accelerator). Returns the number of configs dropped."""
    dropped = 0
    for pool in pools:
        if pool.phase in CPU_BASELINE_PHASES:
            continue
        kept = [c for c in pool.configs if offers[c.device].device.kind != DeviceKind.cpu]
        dropped += len(pool.configs) - len(kept)
        pool.configs = kept
    return dropped


@dataclass
class Menus:
    """Every pool with its whole menu on every offered device, as built before pruning (configs are shared, never
    changed; each user gets its own lists).

    Dominance (presolve.prune_dominated) compares configs of one device in one pool only, so it is applied once
    here, for every baseline; and it never drops a step's fastest config, so the critical-path prune that a build
    runs first keeps exactly the same configs after it (its margins come from the fastest configs)."""

    pools: list[Pool] = field(default_factory=list)
    offers: dict[str, DeviceOffer] = field(default_factory=dict)
    _undominated: list[Pool] | None = None
    _dominated: Counter[str] = field(default_factory=Counter)  # configs dominance drops, per device

    def keep(self, pools: list[Pool], offers: dict[str, DeviceOffer]) -> None:
        """A `prune` hook's first step: remember the menus before anything is dropped."""
        self.pools = [replace(p, configs=list(p.configs)) for p in pools]
        self.offers = dict(offers)
        self._undominated = None

    def undominated(self) -> tuple[list[Pool], Counter[str]]:
        """The menus without dominated configs, and how many dominance dropped per device (computed once)."""
        if self._undominated is None:
            pools = [replace(p, configs=list(p.configs)) for p in self.pools]
            prune_dominated(pools)
            self._dominated = Counter(c.device for p in self.pools for c in p.configs)
            self._dominated.subtract(c.device for p in pools for c in p.configs)
            self._undominated = pools
        return self._undominated, self._dominated

    def for_devices(self, device_ids: set[str]) -> tuple[list[Pool], dict[str, DeviceOffer], int]:
        """The menus a build for `device_ids` (plus every CPU) would make, configs of other devices left out, and
        dominated configs already dropped (with their number)."""
        offers = {d: o for d, o in self.offers.items() if d in device_ids or o.device.kind == DeviceKind.cpu}
        pools, dominated = self.undominated()
        dropped = sum(dominated[d] for d in offers)
        return [replace(p, configs=[c for c in p.configs if c.device in offers]) for p in pools], offers, dropped


def accelerator_ids(resolved: ResolvedScenario) -> list[str]:
    """Every offered accelerator (owned, purchasable or rentable), sorted: one baseline each."""
    hw = resolved.scenario.hardware
    return sorted(
        {
            e.device
            for g in (hw.owned, hw.purchasable, hw.rentable)
            for e in g
            if resolved.catalog.device(e.device).kind != DeviceKind.cpu
        }
    )


def baseline_formulation(resolved: ResolvedScenario, menus: Menus, dev_id: str) -> Formulation:
    """The baseline model for `dev_id` from shared menus: the same prune as `solve.formulate(resolved, {dev_id},
    restrict=cpus_for_tools_only)` on the same menus, so the same model."""
    pools, offers, dropped = menus.for_devices({dev_id})  # dominance applied (see Menus)
    dropped += prune_by_critical_path(pools, resolved.workflows) + cpus_for_tools_only(pools, offers)
    return formulation_from_pools(resolved, pools, offers, dropped_configs=dropped)


COUNT_TOLERANCE = 1e-6  # relative: a lower bound within this of a whole number rounds down, never up


def devices_needed(f: Formulation, dev_id: str) -> int:
    """A lower bound on the `dev_id` devices every feasible plan of `f` uses, from pools that only `dev_id` can
    serve. Per pool, replicas of config c cover a_c of the need each (the capacity row's coefficient) on k_c
    devices, so covering a share s takes at least s · min_c k_c / a_c devices; a family splits its traffic between
    routes (shares summing to 1), so it needs at least the least, over routes, of its route pools' sums. A pool of
    a single-route family covers all of its need with whole replicas: at least that many devices rounded up, and at
    least one replica. A pool with a config on another device counts 0. Devices come whole: the total is rounded
    up."""
    total = 0.0
    for routes in routes_by_family(f.pools).values():
        single = len(routes) == 1
        per_route = []
        for route_pools in routes.values():
            need = 0.0
            for pool in route_pools:
                if pool.demand <= 0 or not pool.configs or any(c.device != dev_id for c in pool.configs):
                    continue
                per_replica = [min(c.throughput * coverage_load(pool, c) / pool.demand, 1.0) for c in pool.configs]
                if min(per_replica) <= 0:
                    continue
                least = min(c.tp / a for c, a in zip(pool.configs, per_replica, strict=True))
                need += max(_whole(least), min(c.tp for c in pool.configs)) if single else least
            per_route.append(need)
        total += min(per_route, default=0.0)
    return _whole(total)


def _whole(devices: float) -> int:
    """The least whole number ≥ `devices`, with a relative tolerance that only ever rounds down (a bound within
    rounding error of a whole number is taken as that number)."""
    return math.ceil(devices * (1 - COUNT_TOLERANCE) - COUNT_TOLERANCE)


def devices_offered(offer: DeviceOffer) -> int:
    """The most devices of one type any plan can have: owned, whole purchase nodes and rentals."""
    dpn = offer.device.devices_per_node
    nodes = offer.buy_max // dpn if offer.buy_max >= dpn else 0
    return offer.owned + nodes * dpn + offer.rent_max


def device_shortfall(f: Formulation, dev_id: str) -> tuple[int, int] | None:
    """(needed, offered) when the pools only `dev_id` serves need more of it than the scenario offers: a proof
    that the model is infeasible. None when the count proves nothing."""
    offer = f.offers.get(dev_id)
    if offer is None:
        return None
    needed, offered = devices_needed(f, dev_id), devices_offered(offer)
    return (needed, offered) if needed > offered else None


def homogeneous_baselines(
    resolved: ResolvedScenario,
    menus: Menus,
    solve_one: Callable[[Formulation], SolveResult],
    plan_cost: float | None,
) -> list[Baseline]:
    """One Baseline per offered accelerator: infeasible when a pool has no config or the device count proves it
    (`device_shortfall`), else solved by `solve_one` (the plan's method and settings)."""
    out = []
    for dev_id in accelerator_ids(resolved):
        f = baseline_formulation(resolved, menus, dev_id)
        if any(not p.configs for p in f.pools) or device_shortfall(f, dev_id) is not None:
            out.append(
                Baseline(device=dev_id, status=SolverStatus.infeasible, total_usd_per_year=None, saving_fraction=None)
            )
            continue
        res = solve_one(f)
        if res.values is None:
            out.append(Baseline(device=dev_id, status=res.status, total_usd_per_year=None, saving_fraction=None))
            continue
        cost = assemble_plan(f, res, resolved.scenario.id).tco.total_usd_per_year
        saving = (cost - plan_cost) / cost if plan_cost is not None and cost > 0 else None
        out.append(Baseline(device=dev_id, status=res.status, total_usd_per_year=cost, saving_fraction=saving))
    return out
