"""Re-placement on a fixed fleet: keep a plan's devices, place pools for a scenario's (new) demand.

The run-time side of planning: when load changes, the fleet stays and only the pools move. `fixed_fleet` turns a
scenario into one whose hardware is exactly the plan's devices in service — owned and bought ones as owned (no
purchases), each kept at the yearly cost it had in the plan (an owned device at its own terms; a bought one as an
owned device whose forgone resale value is its purchase price, which costs per year exactly what buying it did),
rented ones rentable up to the plan's count at the same price. Its optimum at the plan's own demand is therefore
the plan's TCO (the plan is feasible in it and the offer is a subset of the original one).

When the demand does not fit, `fleet_shortage` says what is short: it solves the same scenario with every device
type of the fleet also on offer without limit (bought, or rented where the type cannot be bought) and reports the
cheapest additions that make the demand fit.
"""

from __future__ import annotations

from dataclasses import replace

from hetplace.common.errors import InputError
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import ResolvedScenario, purchase_price_usd, rental_usd_per_hour
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Hardware, OwnedDevices, PurchasableDevices, RentableDevices


def fixed_fleet(resolved: ResolvedScenario, plan: Plan, plan_source: str) -> ResolvedScenario:
    """The scenario with its hardware replaced by the plan's devices in service (see module docstring). A device
    the plan names that the scenario's catalog does not know, or one the plan bought or rented that the scenario
    gives no price for, is an input error naming the plan file and field."""
    hw = resolved.scenario.hardware
    owned_terms = {o.device: o for o in hw.owned}
    buy_terms = {p.device: p for p in hw.purchasable}
    rent_terms = {r.device: r for r in hw.rentable}
    owned: list[OwnedDevices] = []
    rentable: list[RentableDevices] = []
    for i, e in enumerate(plan.fleet):
        if e.device not in resolved.catalog.devices:
            raise InputError.single(plan_source, f"fleet[{i}].device", f"unknown device '{e.device}'")
        dev = resolved.catalog.device(e.device)
        keep = e.owned_used + e.bought
        if keep:
            # one owned entry per device: the forgone resale value carries every device's yearly capex share
            forgone = 0.0
            if e.owned_used:
                o = owned_terms.get(e.device)
                if o is None:
                    raise InputError.single(plan_source, f"fleet[{i}].owned_used", f"the scenario owns no {e.device}")
                capex = 0.0 if o.sunk else float(dev.capex_usd or 0.0)
                forgone += e.owned_used * (o.residual_value_usd + capex)
            if e.bought:
                b = buy_terms.get(e.device)
                price = purchase_price_usd(b, resolved.catalog) if b is not None else dev.capex_usd
                if price is None:
                    raise InputError.single(plan_source, f"fleet[{i}].bought", f"no purchase price for {e.device}")
                forgone += e.bought * float(price)
            owned.append(OwnedDevices(device=e.device, count=keep, sunk=True, residual_value_usd=forgone / keep))
        if e.rented:
            r = rent_terms.get(e.device)
            price_h = rental_usd_per_hour(r, resolved.catalog) if r is not None else dev.cloud_usd_per_hour
            if price_h is None:
                raise InputError.single(plan_source, f"fleet[{i}].rented", f"no rental price for {e.device}")
            rentable.append(RentableDevices(device=e.device, max_count=e.rented, usd_per_hour=float(price_h)))
    hardware = Hardware(owned=owned, purchasable=[], rentable=rentable)
    scenario = resolved.scenario.model_copy(update={"hardware": hardware, "horizon": None})
    return replace(resolved, scenario=scenario)


def fleet_shortage(
    fixed: ResolvedScenario, backend: str = "highs", time_limit: float | None = None, gap: float = 1e-4
) -> list[str] | None:
    """What the fixed fleet lacks for the scenario's demand: the cheapest additions of its own device types that
    make the demand fit, one line per device type ("short of 8× mi300x: has 16, the demand needs 24"). None when
    even unlimited devices of those types cannot serve it (the ordinary diagnosis then applies)."""
    hw = fixed.scenario.hardware
    have: dict[str, int] = {o.device: o.count for o in hw.owned}
    for r in hw.rentable:
        have[r.device] = have.get(r.device, 0) + (r.max_count or 0)
    purchasable, rentable = [], list(hw.rentable)
    for dev_id in have:
        dev = fixed.catalog.device(dev_id)
        if dev.capex_usd is not None:
            purchasable.append(PurchasableDevices(device=dev_id))
        elif dev.cloud_usd_per_hour is not None and all(r.device != dev_id for r in rentable):
            rentable.append(RentableDevices(device=dev_id))
    widened = hw.model_copy(
        update={
            # the fleet's own devices cost nothing here, so every one is used before anything is added
            "owned": [o.model_copy(update={"residual_value_usd": 0.0}) for o in hw.owned],
            "purchasable": purchasable,
            "rentable": [r.model_copy(update={"max_count": None, "usd_per_hour": None}) for r in rentable],
        }
    )
    wide = replace(fixed, scenario=fixed.scenario.model_copy(update={"hardware": widened}))
    outcome = solve_scenario(wide, backend, time_limit, gap, 1, False)
    if outcome.plan is None:
        return None
    rented_before = {r.device: r.max_count or 0 for r in hw.rentable}
    lines = []
    for e in outcome.plan.fleet:
        added = e.bought + max(0, e.rented - rented_before.get(e.device, 0))
        if added > 0:
            dpn = fixed.catalog.device(e.device).devices_per_node
            nodes = f", bought in whole nodes of {dpn}" if e.bought and dpn > 1 else ""
            lines.append(
                f"fleet short of {added}× {e.device}: it has {have.get(e.device, 0)}; the cheapest plan that fits, "
                f"adding devices of the fleet's own types{nodes}, uses {e.owned_used + e.bought + e.rented}"
            )
    return lines
