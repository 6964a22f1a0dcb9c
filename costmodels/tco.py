"""Total cost of ownership per device-year, and per request / per token.

A device in service costs, per year:
    capex / amortisation_years            (bought devices; owned ones are sunk unless `sunk` is false)
  + residual_value / amortisation_years   (owned devices kept instead of sold: the resale forgone, annualised)
  + TDP · load · PUE · 8760 h · $/kWh     (energy)
  + TDP · $/kW-month · 12                 (hosting: colocation rent per kW of IT load)
A rented device costs its on-demand $/hour · 8760 h, energy and hosting included in the price.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_YEAR = 8760.0
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0


@dataclass(frozen=True)
class EconomicsInputs:
    energy_usd_per_kwh: float
    pue: float
    hosting_usd_per_kw_month: float
    amortisation_years: float
    avg_load_fraction: float


DEFAULT_ECONOMICS = EconomicsInputs(
    energy_usd_per_kwh=0.08,  # US average industrial electricity price (EIA)
    pue=1.3,  # between the ~1.56 industry average (Uptime Institute 2024) and ~1.1 hyperscale
    hosting_usd_per_kw_month=184.0,  # CBRE North America Data Center Trends H2 2024, 250-500 kW
    amortisation_years=4.0,
    avg_load_fraction=0.7,
)
"""The one place the economic defaults live; scenarios (problems/schema.py Economics) default to these."""


@dataclass(frozen=True)
class DeviceYearCost:
    capex_usd: float
    energy_usd: float
    hosting_usd: float
    rental_usd: float

    @property
    def total_usd(self) -> float:
        return self.capex_usd + self.energy_usd + self.hosting_usd + self.rental_usd


def facility_kw(tdp_w: float, econ: EconomicsInputs) -> float:
    """Facility power one device draws at average load, cooling and distribution (PUE) included."""
    return tdp_w / 1000.0 * econ.avg_load_fraction * econ.pue


def energy_usd_per_year(tdp_w: float, econ: EconomicsInputs) -> float:
    """Energy at average load, facility overhead (PUE) included."""
    return facility_kw(tdp_w, econ) * HOURS_PER_YEAR * econ.energy_usd_per_kwh


def hosting_usd_per_year(tdp_w: float, econ: EconomicsInputs) -> float:
    return tdp_w / 1000.0 * econ.hosting_usd_per_kw_month * 12.0


def bought_device_year(capex_usd: float, tdp_w: float, econ: EconomicsInputs) -> DeviceYearCost:
    return DeviceYearCost(
        capex_usd / econ.amortisation_years, energy_usd_per_year(tdp_w, econ), hosting_usd_per_year(tdp_w, econ), 0.0
    )


def owned_device_year(
    tdp_w: float,
    econ: EconomicsInputs,
    sunk: bool = True,
    capex_usd: float | None = None,
    residual_value_usd: float = 0.0,
) -> DeviceYearCost:
    """An owned device kept in service: energy + hosting, plus the annualised resale value forgone and, when its
    capex is not treated as sunk, its amortised purchase price."""
    capex = residual_value_usd / econ.amortisation_years
    if not sunk:
        if capex_usd is None:
            raise ValueError("an owned device that is not sunk needs a capex_usd")
        capex += capex_usd / econ.amortisation_years
    return DeviceYearCost(capex, energy_usd_per_year(tdp_w, econ), hosting_usd_per_year(tdp_w, econ), 0.0)


def rented_device_year(usd_per_hour: float) -> DeviceYearCost:
    return DeviceYearCost(0.0, 0.0, 0.0, usd_per_hour * HOURS_PER_YEAR)


def usd_per_request(fleet_usd_per_year: float, requests_per_s: float) -> float:
    return fleet_usd_per_year / (requests_per_s * SECONDS_PER_YEAR)


def usd_per_million_tokens(fleet_usd_per_year: float, tokens_per_s: float) -> float:
    return fleet_usd_per_year / (tokens_per_s * SECONDS_PER_YEAR) * 1e6
