"""Diagnosis of running out of devices: which device types' availability binds, and how many more would do.

When every pool has configs, every SLA can be met and each limit alone can be met, a scenario can still be
infeasible because the offered devices are too few. `availability_causes` re-solves the scenario with unlimited
extra devices of every offered type (each extra device counted, power cap and budgets left out) and minimises how
many extra devices it takes; the types that get extras are the ones whose availability binds. The count is the
fewest extra devices of any mix, so it is a lower bound on what any fix needs (whole purchase nodes, the power cap
or the budgets can only need more); ties between mixes are broken towards the cheaper device.

`node_limited_purchases` names purchasable devices whose `max_count` is below one node (never bought: purchases
come in whole nodes) or not a whole number of nodes (the rest can never be bought).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetplace.common.enums import SolverStatus
from hetplace.optimizer.backends import solve
from hetplace.optimizer.formulation import LIMITS, DeviceOffer, build_formulation, device_offers, economics_of
from hetplace.optimizer.pools import Pool
from hetplace.optimizer.presolve import prune_by_critical_path, prune_dominated
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.schema import UNLIMITED_COUNT, RentableDevices

TIME_LIMIT_S = 60.0
LISTED = 4  # device types named per list in a diagnosis line; the rest are counted
TIE_BREAK_PER_USD = 1e-9  # × USD/year of one more device: far below one device, so the count comes first


@dataclass(frozen=True)
class Shortfall:
    """One device type in the fewest-extra-devices plan: its extra devices (0 = fully used, none extra)."""

    device: str
    extra: int
    available: int  # owned + purchasable in whole nodes + rentable, as offered


@dataclass(frozen=True)
class Extras:
    """The fewest extra devices that make the scenario feasible (power cap and budgets left out)."""

    status: SolverStatus  # optimal: `total` is the least; feasible: `total` suffice, `bound` are needed
    binding: list[Shortfall]  # types with extras first (most first), then types used to their limit
    bound: int | None  # proven lower bound on the total

    @property
    def total(self) -> int:
        return sum(s.extra for s in self.binding)


def usable_counts(resolved: ResolvedScenario) -> dict[str, int]:
    """Devices of each offered type a plan can have in service: owned + purchasable in whole nodes + rentable."""
    hw = resolved.scenario.hardware
    out: dict[str, int] = {}
    for o in hw.owned:
        out[o.device] = out.get(o.device, 0) + o.count
    for p in hw.purchasable:
        dpn = resolved.catalog.device(p.device).devices_per_node
        most = p.max_count if p.max_count is not None else UNLIMITED_COUNT
        out[p.device] = out.get(p.device, 0) + most // dpn * dpn
    for r in hw.rentable:
        out[r.device] = out.get(r.device, 0) + (r.max_count if r.max_count is not None else UNLIMITED_COUNT)
    return out


def node_limited_purchases(resolved: ResolvedScenario) -> list[str]:
    """Purchasable entries whose max_count is not whole nodes: below one node nothing can be bought."""
    out = []
    for i, p in enumerate(resolved.scenario.hardware.purchasable):
        dpn = resolved.catalog.device(p.device).devices_per_node
        if p.max_count is None or p.max_count % dpn == 0:
            continue
        where = f"hardware.purchasable[{i}].max_count"
        if p.max_count < dpn:
            out.append(
                f"{p.device}: {where} {p.max_count} is below one node of {dpn} devices and purchases come in whole "
                f"nodes, so none can be bought (allow {dpn}, or rent it)"
            )
        else:
            usable = p.max_count // dpn * dpn
            out.append(f"{p.device}: {where} {p.max_count} is not whole nodes of {dpn}; only {usable} can be bought")
    return out


def _with_unlimited_extras(resolved: ResolvedScenario) -> ResolvedScenario:
    """The scenario with every offered device type also rentable without limit (prices irrelevant: the extras'
    objective replaces the TCO)."""
    hw = resolved.scenario.hardware
    rentable = {r.device: r for r in hw.rentable}
    devices = dict.fromkeys(e.device for g in (hw.owned, hw.purchasable, hw.rentable) for e in g)
    extra = [
        RentableDevices(device=d, max_count=None, usd_per_hour=rentable[d].usd_per_hour if d in rentable else None)
        for d in devices
    ]
    scenario = resolved.scenario.model_copy(update={"hardware": hw.model_copy(update={"rentable": extra})})
    return ResolvedScenario(
        scenario, resolved.workflows, resolved.catalog, resolved.source, resolved.base_dir, resolved.calibration
    )


def _one_more_usd(offer: DeviceOffer) -> float:
    """What one more device of this type costs a year at the cheapest offered source (for breaking ties)."""
    year = offer.cheapest_year_usd
    return year if math.isfinite(year) else 0.0


def fewest_extra_devices(resolved: ResolvedScenario, time_limit_s: float = TIME_LIMIT_S) -> Extras:
    """The fewest extra devices that make the scenario feasible, power cap and budgets left out, and the types at
    their limit in that plan. No binding types: more devices alone do not help (or no plan was found in time)."""
    available = usable_counts(resolved)
    hw = resolved.scenario.hardware
    rent_max = {r.device: (r.max_count if r.max_count is not None else UNLIMITED_COUNT) for r in hw.rentable}

    def prune(pools: list[Pool], offers: dict[str, DeviceOffer]) -> int:
        return prune_by_critical_path(pools, resolved.workflows) + prune_dominated(pools)

    f = build_formulation(_with_unlimited_extras(resolved), prune=prune, relax=frozenset(LIMITS))
    if any(not p.configs for p in f.pools):
        return Extras(SolverStatus.infeasible, [], None)
    m = f.model
    m.objective = {}
    extras: dict[str, int] = {}
    prices = _original_prices(resolved)
    for dev_id, fv in f.fleet_vars.items():
        if fv.rent_devices is None:
            continue
        e = m.add_var(f"extra[{dev_id}]", 0, UNLIMITED_COUNT, True)
        extras[dev_id] = e
        m.add_row(f"extra_rent[{dev_id}]", {fv.rent_devices: 1.0, e: -1.0}, "<=", float(rent_max.get(dev_id, 0)))
        m.add_objective(e, 1.0 + TIE_BREAK_PER_USD * prices.get(dev_id, 0.0))
    res = solve(m, "highs", time_limit_s=time_limit_s, gap=1e-6)
    bound = math.ceil(res.best_bound - 1e-6) if res.best_bound is not None else None
    if res.values is None:
        return Extras(res.status, [], bound)
    values = res.values
    binding = []
    for dev_id, e in extras.items():
        fv = f.fleet_vars[dev_id]
        dpn = f.offers[dev_id].device.devices_per_node
        in_use = sum(
            round(values[i]) * k
            for i, k in ((fv.own_devices, 1), (fv.buy_nodes, dpn), (fv.rent_devices, 1))
            if i is not None
        )
        extra = round(values[e])
        if extra > 0 or (available.get(dev_id, 0) > 0 and in_use >= available[dev_id]):
            binding.append(Shortfall(dev_id, extra, available.get(dev_id, 0)))
    binding.sort(key=lambda s: (-s.extra, s.device))
    return Extras(res.status, binding, bound)


def _original_prices(resolved: ResolvedScenario) -> dict[str, float]:
    """USD/year of one more device of each offered type at its cheapest source as offered."""
    return {d: _one_more_usd(o) for d, o in device_offers(resolved, economics_of(resolved)).items()}


def availability_causes(resolved: ResolvedScenario, time_limit_s: float = TIME_LIMIT_S) -> list[str]:
    """The diagnosis lines for running out of devices; empty when more devices alone would not help."""
    x = fewest_extra_devices(resolved, time_limit_s)
    short = [s for s in x.binding if s.extra > 0]
    if not short:
        return []
    named = [f"{s.extra} more {s.device} ({s.available} available)" for s in short[:LISTED]]
    rest = short[LISTED:]
    if rest:
        named.append(f"{len(rest)} more types ({sum(s.extra for s in rest)} devices)")
    more = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]
    full = [f"{s.device} ({s.available})" for s in x.binding if s.extra == 0]
    if len(full) > LISTED:
        full = [*full[:LISTED], f"{len(full) - LISTED} more types"]
    also = f"; {', '.join(full)} {'is' if len(full) == 1 else 'are'} used to the last device too" if full else ""
    if x.status == SolverStatus.optimal:
        need = f"at least {x.total} more devices are needed, e.g. {more}{also}"
    else:
        at_least = f"at least {x.bound} more devices are needed" if x.bound is not None else "more devices are needed"
        need = (
            f"{at_least} (the search stopped at {time_limit_s:g} s; without the limits {x.total} are enough, e.g. "
            f"{more}){also}"
        )
    return [
        f"availability binds: {need}. (Fewest extra devices of any mix, re-solved with unlimited extras of every "
        "offered type, power cap and budgets left out: a lower bound; whole purchase nodes, the power cap or the "
        "budgets may need more.)"
    ]
