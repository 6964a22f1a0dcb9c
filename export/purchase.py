"""Purchase order for a plan: per device type what to buy (devices, whole nodes, unit price and where the price
comes from, capex), what to rent ($/h and the expected annual cost at the plan's full-year use), and which owned
devices stay in service or can be retired. With a schedule (`hetplace schedule --out`), the period each purchase
is delivered into; without one the plan is a single-period plan and everything is bought up front.

`purchase-order.csv` starts with `#` comment lines (the provenance header); read it with a CSV reader that skips
comments (pandas: `comment="#"`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from hetplace.catalogs.schema import Device
from hetplace.common.errors import InputError
from hetplace.export.plan_view import PlanView
from hetplace.problems.loader import purchase_price_usd, rental_usd_per_hour
from hetplace.problems.plan import SchedulePlan

HOURS_PER_YEAR = 8760
COLUMNS = [
    "device",
    "vendor",
    "bought",
    "bought_nodes",
    "devices_per_node",
    "unit_price_usd",
    "price_source",
    "capex_usd",
    "rented",
    "rental_usd_per_hour",
    "rental_usd_per_year",
    "owned_kept",
    "owned_retired",
    "delivery",
]


@dataclass(frozen=True)
class Line:
    device: Device
    bought: int
    unit_price_usd: float | None
    price_source: str
    rented: int
    rental_usd_per_hour: float | None
    owned_kept: int
    owned_retired: int
    delivery: str

    @property
    def capex_usd(self) -> float:
        return self.bought * (self.unit_price_usd or 0.0)

    @property
    def rental_usd_per_year(self) -> float:
        return self.rented * (self.rental_usd_per_hour or 0.0) * HOURS_PER_YEAR


def _price_source(view: PlanView, device: Device) -> str:
    hw = view.resolved.scenario.hardware
    for i, entry in enumerate(hw.purchasable):
        if entry.device == device.id and entry.capex_usd is not None:
            return f"scenario hardware.purchasable[{i}].capex_usd ({view.resolved.source})"
    basis = device.capex_basis.value if device.capex_basis else "unknown basis"
    est = "" if basis == "estimate" or "capex_usd" not in device.estimated_fields else ", estimated"
    return f"catalog devices/{device.id}.yaml capex_usd ({basis}{est}; see the entry's sources)"


def _delivery(schedule: SchedulePlan | None, device_id: str, bought: int) -> str:
    if schedule is None:
        return "up front (single-period plan)" if bought else ""
    parts = [f"period {p.period}: {p.bought[device_id]}" for p in schedule.periods if p.bought.get(device_id, 0) > 0]
    return "; ".join(parts)


def purchase_lines(view: PlanView, schedule: SchedulePlan | None) -> list[Line]:
    catalog = view.resolved.catalog
    hw = view.resolved.scenario.hardware
    buy = {e.device: e for e in hw.purchasable}
    rent = {e.device: e for e in hw.rentable}
    lines = []
    for f in view.plan.fleet:
        device = catalog.device(f.device)
        price = purchase_price_usd(buy[f.device], catalog) if f.device in buy else None
        rate = rental_usd_per_hour(rent[f.device], catalog) if f.device in rent else None
        lines.append(
            Line(
                device=device,
                bought=f.bought,
                unit_price_usd=price,
                price_source=_price_source(view, device) if f.bought else "",
                rented=f.rented,
                rental_usd_per_hour=rate if f.rented else None,
                owned_kept=f.owned_used,
                owned_retired=f.owned_idle,
                delivery=_delivery(schedule, f.device, f.bought),
            )
        )
    listed = {f.device for f in view.plan.fleet}
    for owned in hw.owned:  # owned devices the plan does not use at all are not in its fleet: all retired
        if owned.device not in listed:
            lines.append(Line(catalog.device(owned.device), 0, None, "", 0, None, 0, owned.count, ""))
    return lines


def check_schedule(view: PlanView, schedule: SchedulePlan, source: str) -> None:
    if schedule.scenario != view.header.scenario:
        raise InputError.single(
            source, "scenario", f"schedule is for scenario '{schedule.scenario}', not '{view.header.scenario}'"
        )


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def purchase_files(view: PlanView, schedule: SchedulePlan | None) -> dict[str, str]:
    lines = purchase_lines(view, schedule)
    buf = io.StringIO()
    for h in view.header.lines():
        buf.write(f"# {h}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for ln in lines:
        writer.writerow(
            [
                ln.device.id,
                ln.device.vendor,
                ln.bought,
                ln.bought // ln.device.devices_per_node,
                ln.device.devices_per_node,
                _fmt(ln.unit_price_usd, ".2f"),
                ln.price_source,
                f"{ln.capex_usd:.2f}",
                ln.rented,
                _fmt(ln.rental_usd_per_hour, ".4f"),
                f"{ln.rental_usd_per_year:.2f}",
                ln.owned_kept,
                ln.owned_retired,
                ln.delivery,
            ]
        )
    capex = sum(ln.capex_usd for ln in lines)
    rentals = sum(ln.rental_usd_per_year for ln in lines)
    md = ["# Purchase order", "", *[f"<!-- {h} -->" for h in view.header.lines()], ""]
    md.append(f"Scenario `{view.header.scenario}`; plan sha256 `{view.header.plan_sha256[:16]}…`.")
    md.append("")
    if schedule is None:
        md.append(
            "Single-period plan: everything below is bought up front; pass `--schedule` with a "
            "`hetplace schedule --out` file for delivery periods."
        )
    else:
        md.append(
            f"Delivery periods from the schedule ({len(schedule.periods)} periods of {schedule.period_years:g} years)."
        )
    md += [
        "",
        "## Buy",
        "",
        "| device | devices | nodes | unit price USD | capex USD | price source | delivery |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for ln in lines:
        if ln.bought:
            md.append(
                f"| {ln.device.id} | {ln.bought} | {ln.bought // ln.device.devices_per_node} | "
                f"{_fmt(ln.unit_price_usd, ',.0f')} | {ln.capex_usd:,.0f} | {ln.price_source} | {ln.delivery} |"
            )
    md += [
        "",
        f"**Total capex: {capex:,.0f} USD** (the plan's up-front purchases: {view.plan.tco.purchases_usd:,.0f} USD).",
        "",
        "## Rent",
        "",
    ]
    rented = [ln for ln in lines if ln.rented]
    if rented:
        md += ["| device | devices | USD per device-hour | expected USD per year |", "| --- | ---: | ---: | ---: |"]
        md += [
            f"| {ln.device.id} | {ln.rented} | {_fmt(ln.rental_usd_per_hour, ',.4f')} | {ln.rental_usd_per_year:,.0f} |"
            for ln in rented
        ]
        md += ["", f"Expected rental cost: {rentals:,.0f} USD per year (every rented device all year, 8,760 h)."]
    else:
        md.append("No rentals.")
    md += [
        "",
        "## Owned devices",
        "",
        "| device | kept in service | retired (unused by the plan) |",
        "| --- | ---: | ---: |",
    ]
    md += [
        f"| {ln.device.id} | {ln.owned_kept} | {ln.owned_retired} |"
        for ln in lines
        if ln.owned_kept or ln.owned_retired
    ]
    return {"purchase-order.csv": buf.getvalue(), "purchase-order.md": "\n".join(md) + "\n"}
