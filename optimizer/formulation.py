"""Build the fleet-planning MILP from a scenario, in small named steps (PyPSA style).

Variables
  r_c ∈ ℤ≥0   replicas of config c            x_c ∈ {0,1}  config c in use (its latency counts)
  own_d, rent_d ∈ ℤ≥0, buy_d = node_d · devices_per_node with node_d ∈ ℤ≥0  (purchases come in whole nodes)
  L_{p,s} ≥ 0  per-execution latency of step s in pool p      S_s ≥ 0  start time of step s
Constraints
  capacity   Σ_c min(θ_c / N_c, 1) r_c ≥ 1,  N_c = λ_p / min(u_c, cap_p)   (u_c: a co-located config's load level,
             else 1; cap_p = max_utilisation, or 1 for a pool that only serves percentile SLAs)
             an LLM model's traffic splits between disaggregated (prefill + decode pools) and co-located serving:
             shares s_route ∈ [0,1] with Σ s = 1; each pool covers its route's share s·λ
  link       r_c ≤ U_c x_c,  U_c = min(⌈N_c / θ_c⌉, ⌊available_d / k_c⌋)   (tight big-M)
  choose     Σ_c x_c ≥ 1 per pool; a queueing pool (percentile SLAs) runs one config: Σ_c x_c ≤ 1, r_c ≥ n_c x_c
             with n_c its least stable replica count (and U_c at least its curves' end)
  KV dtype   with more than one KV-cache dtype allowed, a model's prefill and decode configs agree on one:
             binary k_{m,z}, Σ_z k_{m,z} ≤ 1 and x_c ≤ k_{m,kv(c)} (the KV transfer is priced in that dtype)
  latency    L_{p,s} ≥ (ℓ_{s,c} + transfer_{s,c}) x_c; in a queueing pool ℓ includes the curve's last value and,
             per chord j of the step's replica curve (queueing delay at the percentile, co-located stall),
             L_{p,s} ≥ (ℓ + transfer + a_j) x_c + b_j r_c
  fleet      Σ_c k_c r_c ≤ own_d + buy_d + rent_d;  own_d ≤ owned, buy_d ≤ max, rent_d ≤ max
  duration   D_s ≥ Σ_{p ∈ route} L_{p,s} for each route serving s (one route: D_s is that sum)
  DAG        S_v ≥ S_u + repeat_u · D_u on every edge;  S_s + repeat_s · D_s ≤ SLA
  power      Σ_d (own_d + buy_d) · TDP · load · PUE ≤ cap;   budgets on purchases and on annual TCO
Objective: annual TCO = Σ own_d·c_own + buy_d·c_buy + rent_d·c_rent (owned capex sunk by default; an owned device
left unused is retired and costs nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hetplace.catalogs.loader import load_engines
from hetplace.catalogs.schema import Device
from hetplace.costmodels.error_band import engine_params_by_device, error_band, slow_factor
from hetplace.costmodels.tco import (
    DeviceYearCost,
    EconomicsInputs,
    bought_device_year,
    facility_kw,
    owned_device_year,
    rented_device_year,
)
from hetplace.optimizer.cuts import Cut, capacity_mir, mir_multipliers, node_use, step_floor
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.pools import (
    DISAGGREGATED,
    Config,
    Pool,
    StepRef,
    build_pools,
    coverage_load,
    drop_unusable_routes,
    model_kv_dtypes,
    routes_by_family,
)
from hetplace.problems.loader import ResolvedScenario, purchase_price_usd, rental_usd_per_hour
from hetplace.problems.schema import UNLIMITED_COUNT, Workflow

TIME_RESOLUTION_S = 1e-5  # CP-SAT counts latencies in units of 10 µs
SHARE_RESOLUTION = 1e-4  # CP-SAT counts traffic shares in units of 0.01 %


NO_COST = DeviceYearCost(0.0, 0.0, 0.0, 0.0)


@dataclass
class DeviceOffer:
    """How many devices of one type can be owned, bought and rented, and what one costs per year in service by
    each source, kept in its parts (capex, energy, hosting, rental) for the plan's cost breakdown."""

    device: Device
    owned: int = 0
    owned_year: DeviceYearCost = NO_COST  # one owned device kept in service
    buy_max: int = 0
    bought_year: DeviceYearCost = NO_COST
    capex_usd: float = 0.0  # purchase price of one device
    rent_max: int = 0
    rented_year: DeviceYearCost = NO_COST

    @property
    def owned_cost(self) -> float:
        """USD per owned device-year in service."""
        return self.owned_year.total_usd

    @property
    def buy_cost(self) -> float:
        """USD per bought device-year."""
        return self.bought_year.total_usd

    @property
    def rent_cost(self) -> float:
        """USD per rented device-year."""
        return self.rented_year.total_usd

    @property
    def available(self) -> int:
        return self.owned + self.buy_max + self.rent_max

    @property
    def cheapest_year_usd(self) -> float:
        """The cheapest way to have one more device of this type for a year (owned if any are owned): every device
        in use costs at least this, which makes it the price to rank configs by."""
        prices = [
            p
            for p, n in ((self.owned_cost, self.owned), (self.buy_cost, self.buy_max), (self.rent_cost, self.rent_max))
            if n
        ]
        return min(prices) if prices else float("inf")


@dataclass(frozen=True)
class FleetVars:
    """Indices of one device type's fleet variables; None where the scenario offers no such source."""

    own_devices: int | None  # owned devices kept in service
    buy_nodes: int | None  # whole nodes bought
    rent_devices: int | None  # devices rented


@dataclass(frozen=True)
class ConfigVars:
    """Indices of one config's variables."""

    replicas: int  # r_c, replicas in use
    in_use: int  # x_c, 1 when the config is in use (its latency counts)


@dataclass
class Formulation:
    model: LinearModel
    pools: list[Pool]
    offers: dict[str, DeviceOffer]
    workflows: list[Workflow]
    econ: EconomicsInputs
    max_utilisation: float
    config_vars: dict[str, ConfigVars] = field(default_factory=dict)  # by config key
    latency_vars: dict[tuple[str, StepRef], int] = field(default_factory=dict)
    start_vars: dict[StepRef, int] = field(default_factory=dict)
    fleet_vars: dict[str, FleetVars] = field(default_factory=dict)  # by device id
    dropped_configs: int = 0
    power_coeffs: dict[int, float] = field(default_factory=dict)  # facility kW per fleet variable
    capex_coeffs: dict[int, float] = field(default_factory=dict)  # up-front USD per fleet variable
    share_vars: dict[str, dict[str, int]] = field(default_factory=dict)  # family -> route -> traffic share
    kv_vars: dict[str, dict[str, int]] = field(default_factory=dict)  # family -> KV dtype of its disaggregated route
    duration_terms: dict[StepRef, dict[int, float]] = field(default_factory=dict)  # one execution, as a sum
    tco_objective: dict[int, float] = field(default_factory=dict)
    tighten: bool = True  # valid strengthening rows (benchmarks switch them off to measure what they buy)
    cuts: frozenset[str] = frozenset()  # cut families added (optimizer/cuts.py; with tighten only), see CUTS
    engine: str | None = None  # the scenario's serving engine (menus priced with its terms), None = roofline
    error_band: dict[str, float] | None = None  # robust planning: the band each offered device was priced at

    def served_demand(self, pool: Pool, values: list[float]) -> float:
        """The part of a pool's demand its route carries in a solution."""
        shares = self.share_vars.get(pool.family)
        if shares is None:
            return pool.demand
        return pool.demand * min(1.0, max(0.0, values[shares[pool.route]]))


def economics_of(resolved: ResolvedScenario) -> EconomicsInputs:
    e = resolved.scenario.economics
    return EconomicsInputs(
        e.energy_usd_per_kwh, e.pue, e.hosting_usd_per_kw_month, e.amortisation_years, e.avg_load_fraction
    )


def device_offers(resolved: ResolvedScenario, econ: EconomicsInputs) -> dict[str, DeviceOffer]:
    """Per device: how many can be owned/bought/rented and what each costs per year."""
    hw = resolved.scenario.hardware
    offers: dict[str, DeviceOffer] = {}

    def offer(dev_id: str) -> DeviceOffer:
        return offers.setdefault(dev_id, DeviceOffer(resolved.catalog.device(dev_id)))

    for o in hw.owned:
        dev = resolved.catalog.device(o.device)
        off = offer(o.device)
        off.owned = o.count
        off.owned_year = owned_device_year(dev.tdp_w, econ, o.sunk, dev.capex_usd, o.residual_value_usd)
    for p in hw.purchasable:
        off = offer(p.device)
        off.capex_usd = float(purchase_price_usd(p, resolved.catalog) or 0.0)
        off.buy_max = p.max_count if p.max_count is not None else UNLIMITED_COUNT
        off.bought_year = bought_device_year(off.capex_usd, off.device.tdp_w, econ)
    for q in hw.rentable:
        off = offer(q.device)
        off.rent_max = q.max_count if q.max_count is not None else UNLIMITED_COUNT
        price = float(rental_usd_per_hour(q, resolved.catalog) or 0.0)
        off.rented_year = rented_device_year(price)
    return offers


def define_fleet_variables(f: Formulation) -> None:
    m = f.model
    for dev_id, off in f.offers.items():
        dpn = off.device.devices_per_node
        own = m.add_var(f"own[{dev_id}]", 0, off.owned, True) if off.owned else None
        nodes = (
            m.add_var(f"buy_nodes[{dev_id}]", 0, math.floor(off.buy_max / dpn), True) if off.buy_max >= dpn else None
        )
        rent = m.add_var(f"rent[{dev_id}]", 0, off.rent_max, True) if off.rent_max else None
        f.fleet_vars[dev_id] = FleetVars(own, nodes, rent)
        if own is not None:
            m.add_objective(own, off.owned_cost)
        if nodes is not None:
            m.add_objective(nodes, off.buy_cost * dpn)
        if rent is not None:
            m.add_objective(rent, off.rent_cost)


def define_config_variables(f: Formulation) -> None:
    m = f.model
    for pool in f.pools:
        kept: list[Config] = []
        for cfg in pool.configs:
            u = coverage_load(pool, cfg)
            need = math.ceil(pool.demand / (u * cfg.throughput)) if cfg.throughput > 0 else 0
            reach = f.offers[cfg.device].available // cfg.tp
            bound = min(max(need, cfg.curve_end_replicas) if cfg.curves else need, reach)
            if bound <= 0 or bound < cfg.min_replicas:
                f.dropped_configs += 1
                continue
            r = m.add_var(f"r[{cfg.key}]", 0, bound, True)
            x = m.add_var(f"x[{cfg.key}]", 0, 1, True)
            f.config_vars[cfg.key] = ConfigVars(r, x)
            m.add_row(f"link[{cfg.key}]", {r: 1.0, x: -float(bound)}, "<=", 0.0)
            # A config in use has a replica (valid: x = 1 with no replica only adds latency). With `choose` this
            # makes the relaxation pay for at least one whole replica per pool instead of a sliver of one.
            if cfg.min_replicas > 1:  # a queueing config is only stable from its least stable replica count on
                m.add_row(f"used[{cfg.key}]", {r: 1.0, x: -float(cfg.min_replicas)}, ">=", 0.0)
            elif f.tighten:
                m.add_row(f"used[{cfg.key}]", {r: 1.0, x: -1.0}, ">=", 0.0)
            kept.append(cfg)
        pool.configs = kept


def coverage(f: Formulation, pool: Pool, c: Config) -> float:
    """A config's coefficient in its pool's capacity row: the share of the pool's need one replica covers (its
    throughput over the demand at the load it may carry), clipped at 1 in the tightened model."""
    share = c.throughput / (pool.demand / coverage_load(pool, c))
    return min(share, 1.0) if f.tighten else share


def define_capacity(f: Formulation) -> None:
    """Each family's traffic is split between its routes: with two routes, share variables s_route ∈ [0, 1]
    (summing to 1) give each route's fraction, and every pool covers its route's fraction of its demand.

    Rows are written with zero right-hand sides (Σθr − s·need ≥ 0, Σx − s ≥ 0) rather than with 1 − s, so CP-SAT's
    conservative rounding of the share coefficient costs nothing when a route carries all or none of the traffic."""
    m = f.model
    for family, routes in routes_by_family(f.pools).items():
        shares: dict[str, int] = {}
        if len(routes) > 1:
            shares = {r: m.add_var(f"share[{family},{r}]", 0.0, 1.0, False, SHARE_RESOLUTION) for r in routes}
            m.add_row(f"split[{family}]", dict.fromkeys(shares.values(), 1.0), "==", 1.0)
            f.share_vars[family] = shares
        for route, pools in routes.items():
            for pool in pools:
                # Rows are in units of the need (coverage). One replica that alone covers the need counts as exactly
                # 1: valid for integer replicas, and it tightens the relaxation (a sliver of a big replica no longer
                # passes for capacity). Exact coefficients of 1 also survive CP-SAT's integer scaling unrounded.
                # Each config's need is the demand over the load its replicas may carry (its level, at most the cap).
                r_coeffs = {f.config_vars[c.key].replicas: coverage(f, pool, c) for c in pool.configs}
                x_coeffs = {f.config_vars[c.key].in_use: 1.0 for c in pool.configs}
                if pool.queueing and pool.configs:  # one M/G/c queue: homogeneous replicas
                    m.add_row(f"one_config[{pool.id}]", dict(x_coeffs), "<=", 1.0)
                if route not in shares:
                    m.add_row(f"capacity[{pool.id}]", r_coeffs, ">=", 1.0)
                    m.add_row(f"choose[{pool.id}]", x_coeffs, ">=", 1.0)
                else:
                    m.add_row(f"capacity[{pool.id}]", {**r_coeffs, shares[route]: -1.0}, ">=", 0.0)
                    m.add_row(f"choose[{pool.id}]", {**x_coeffs, shares[route]: -1.0}, ">=", 0.0)


def define_kv_agreement(f: Formulation, resolved: ResolvedScenario) -> None:
    """A disaggregated route's prefill and decode replicas share one KV-cache dtype: the prefill writes the cache
    the decode reads, and the transfer is priced in the decode config's dtype. With several KV dtypes allowed, a
    binary per (model, KV dtype) picks one; every prefill/decode config of another dtype is then out of use. The
    binaries exist for every allowed dtype (not only those left on the menus), so a restricted model has the same
    variables as the full one."""
    m = f.model
    allowed = resolved.scenario.allowed_kv_dtypes
    for family, routes in routes_by_family(f.pools).items():
        pools = routes.get(DISAGGREGATED, [])
        if not pools or pools[0].model is None:
            continue
        kvs = model_kv_dtypes(resolved.catalog.model(pools[0].model).kv_dtype, allowed)
        if len(kvs) < 2:
            continue
        pick = {kv.value: m.add_var(f"kv[{family},{kv.value}]", 0, 1, True) for kv in kvs}
        f.kv_vars[family] = pick
        m.add_row(f"kv_one[{family}]", dict.fromkeys(pick.values(), 1.0), "<=", 1.0)
        for pool in pools:
            for c in pool.configs:
                if c.kv_dtype is not None:
                    m.add_row(f"kv_agree[{c.key}]", {f.config_vars[c.key].in_use: 1.0, pick[c.kv_dtype]: -1.0}, "<=", 0)


def define_fleet_balance(f: Formulation) -> None:
    usage: dict[str, dict[int, float]] = {d: {} for d in f.offers}
    for pool in f.pools:
        for c in pool.configs:
            usage[c.device][f.config_vars[c.key].replicas] = float(c.tp)
    for dev_id, coeffs in usage.items():
        fv = f.fleet_vars[dev_id]
        row = dict(coeffs)
        dpn = f.offers[dev_id].device.devices_per_node
        for idx, k in ((fv.own_devices, 1.0), (fv.buy_nodes, float(dpn)), (fv.rent_devices, 1.0)):
            if idx is not None:
                row[idx] = row.get(idx, 0.0) - k
        f.model.add_row(f"fleet[{dev_id}]", row, "<=", 0.0)


def define_latency_and_sla(f: Formulation) -> None:
    m = f.model
    route_pools: dict[StepRef, dict[str, list[str]]] = {}
    worst_of: dict[tuple[str, StepRef], float] = {}
    for pool in f.pools:
        for ref in pool.steps:
            worst = max(c.latency_at(ref, c.min_replicas) for c in pool.configs) if pool.configs else 0.0
            worst_of[(pool.id, ref)] = worst
            lv = m.add_var(f"L[{pool.id},{ref.workflow}.{ref.step}]", 0, worst, False, TIME_RESOLUTION_S)
            f.latency_vars[(pool.id, ref)] = lv
            route_pools.setdefault(ref, {}).setdefault(pool.route, []).append(pool.id)
            for c in pool.configs:
                base = c.latency_s[ref] + c.extra_s.get(ref, 0.0)
                cv = f.config_vars[c.key]
                floor = c.floor_latency_s(ref)
                m.add_row(f"lat[{pool.id},{ref.step},{c.key}]", {lv: 1.0, cv.in_use: -floor}, ">=", 0.0)
                if c.curves:
                    # The extra at r replicas is at most the chord through the curve's points around r (beyond the
                    # curve's end, its last value: the row above); with the config not in use (r = 0) every chord
                    # row reads L ≥ 0.
                    for j, (at_zero, slope) in enumerate(c.curves[ref].chords()):
                        m.add_row(
                            f"queue[{pool.id},{ref.step},{c.key},{j}]",
                            {lv: 1.0, cv.in_use: -(base + at_zero), cv.replicas: -slope},
                            ">=",
                            0.0,
                        )
    # Duration of one execution: the route's pool latencies add up; with two routes, the slower route counts.
    duration = f.duration_terms
    for ref, routes in route_pools.items():
        if len(routes) == 1:
            duration[ref] = {f.latency_vars[(p, ref)]: 1.0 for p in next(iter(routes.values()))}
            continue
        worst = max(sum(worst_of[(p, ref)] for p in ps) for ps in routes.values())
        d = m.add_var(f"D[{ref.workflow}.{ref.step}]", 0, worst, False, TIME_RESOLUTION_S)
        for route, ps in routes.items():
            m.add_row(
                f"duration[{ref.workflow}.{ref.step},{route}]",
                {d: 1.0, **{f.latency_vars[(p, ref)]: -1.0 for p in ps}},
                ">=",
                0.0,
            )
        duration[ref] = {d: 1.0}
    for wf in f.workflows:
        sla = wf.sla.e2e_latency_s
        for step in wf.steps:
            ref = StepRef(wf.id, step.id)
            f.start_vars[ref] = m.add_var(f"S[{wf.id}.{step.id}]", 0, sla, False, TIME_RESOLUTION_S)
        for step in wf.steps:
            ref = StepRef(wf.id, step.id)
            dur = {i: c * step.repeat for i, c in duration.get(ref, {}).items()}
            m.add_row(f"sla[{wf.id}.{step.id}]", {f.start_vars[ref]: 1.0, **dur}, "<=", sla)
            for pred in step.after:
                pref = StepRef(wf.id, pred)
                pred_repeat = wf.step(pred).repeat
                row = {f.start_vars[ref]: 1.0, f.start_vars[pref]: -1.0}
                row.update({i: -c * pred_repeat for i, c in duration.get(pref, {}).items()})
                m.add_row(f"edge[{wf.id}.{pred}->{step.id}]", row, ">=", 0.0)


CUTS = ("capacity_mir", "step_floor", "node_use")  # cut families (optimizer/cuts.py)
# Off by default: none measurably sped HiGHS up on the default scenario, S and M (benchmarks/RESULTS.md, "Cuts");
# they stay built and tested, and benchmarks.run measures them ("all-cuts").
DEFAULT_CUTS: frozenset[str] = frozenset()
# CP-SAT counts a share in 1e-4 units and rounds each unit's coefficient in a row scaled to 1e-8 s: up to 1e-4 s in
# all; the step-floor cut gives that much away so the rounded row never asks more than the fastest config's latency
FLOOR_SLACK_S = 1e-4
MIR_PER_POOL = 5  # capacity MIR cuts per pool: multipliers of its cheapest configs per unit of coverage


def _add_cut(f: Formulation, name: str, cut: Cut, index: dict[str, int], rounding_room: bool = False) -> None:
    """Add `cut` as a ≥ row. `rounding_room`: lower its right-hand side by what CP-SAT's conservative integer
    rounding of the row can cost (backends.py: coefficients per unit of each variable rounded down after scaling
    the smallest to ≥ 1000, at most 1e9), so a plan on which the cut is tight stays feasible there. A MIR cut is
    often tight at the optimum; without this, CP-SAT found dearer plans on tiny scenarios (tests/test_cuts.py)."""
    coeffs = {index[term]: c for term, c in cut.coeffs.items()}
    rhs = cut.rhs
    if rounding_room and coeffs:
        units, per_unit = 1.0, []
        for i, c in coeffs.items():
            v = f.model.vars[i]
            res = 1.0 if v.integer else v.resolution
            per_unit.append(abs(c) * res)
            units += (v.ub - v.lb) / res
        scale = min(1000.0 / min(per_unit), 1e9)  # a lower bound on CP-SAT's scale: the loss is at most this large
        rhs -= units / max(scale, 1.0)
    f.model.add_row(name, coeffs, ">=", rhs)


def define_cuts(f: Formulation) -> None:
    """The cut families named in f.cuts (valid for the tightened model; see optimizer/cuts.py for why)."""
    if not f.tighten:
        return
    for pool in f.pools:
        if not pool.configs:
            continue
        share = f.share_vars.get(pool.family, {}).get(pool.route)
        terms = {f"r:{c.key}": f.config_vars[c.key].replicas for c in pool.configs}
        terms.update({f"x:{c.key}": f.config_vars[c.key].in_use for c in pool.configs})
        if share is not None:
            terms["share"] = share
        if "capacity_mir" in f.cuts:
            cover = {c.key: coverage(f, pool, c) for c in pool.configs}
            unit = {c.key: c.tp * f.offers[c.device].cheapest_year_usd for c in pool.configs}
            for j, lam in enumerate(mir_multipliers(cover, unit, MIR_PER_POOL)):
                _add_cut(f, f"mir[{pool.id},{j}]", capacity_mir(cover, lam, share is not None), terms, True)
        if "step_floor" in f.cuts:
            for ref in pool.steps:
                floors = {c.key: c.floor_latency_s(ref) for c in pool.configs}
                lv = {"L": f.latency_vars[(pool.id, ref)], **terms}
                cut = step_floor(floors, share is not None, FLOOR_SLACK_S if share is not None else 0.0)
                if cut.rhs > 0 or cut.coeffs.get("share", 0.0) < 0:
                    _add_cut(f, f"floor[{pool.id},{ref.workflow}.{ref.step}]", cut, lv)
        if "node_use" in f.cuts:
            for c in pool.configs:
                fv = f.fleet_vars[c.device]
                counts = (fv.own_devices, fv.buy_nodes, fv.rent_devices)
                sources = {f"src{j}": i for j, i in enumerate(counts) if i is not None}
                _add_cut(f, f"node_use[{c.key}]", node_use(list(sources), c.key), {**terms, **sources})


LIMITS = ("power_cap", "capex_budget", "annual_budget")


def define_limits(f: Formulation, resolved: ResolvedScenario, relax: frozenset[str] = frozenset()) -> None:
    """Power cap and budgets from the scenario, except those named in `relax` (see LIMITS). The per-variable
    power and capex coefficients are kept on the formulation either way, for diagnosis."""
    limits = resolved.scenario.limits
    m = f.model
    power: dict[int, float] = {}
    capex: dict[int, float] = {}
    for dev_id, fv in f.fleet_vars.items():
        own, nodes = fv.own_devices, fv.buy_nodes
        off = f.offers[dev_id]
        kw = facility_kw(off.device.tdp_w, f.econ)
        dpn = off.device.devices_per_node
        if own is not None:
            power[own] = kw
        if nodes is not None:
            power[nodes] = kw * dpn
            capex[nodes] = off.capex_usd * dpn
    f.power_coeffs = power
    f.capex_coeffs = capex
    if "power_cap" not in relax and limits.power_cap_kw is not None:
        m.add_row("power_cap", power, "<=", limits.power_cap_kw)
    if "capex_budget" not in relax and limits.capex_budget_usd is not None:
        m.add_row("capex_budget", capex, "<=", limits.capex_budget_usd)
    if "annual_budget" not in relax and limits.annual_budget_usd is not None:
        m.add_row("annual_budget", dict(m.objective), "<=", limits.annual_budget_usd)


def define_latency_objective(f: Formulation) -> None:
    """Replace the objective by the mean end-to-end latency over requests: makespan T_w ≥ S_s + repeat_s · D_s
    for every step, weighted by each workflow's share of arrivals. The TCO objective stays in `tco_objective`."""
    m = f.model
    total_rate = sum(wf.arrival_rate_rps for wf in f.workflows)
    m.objective = {}
    for wf in f.workflows:
        t = m.add_var(f"T[{wf.id}]", 0, wf.sla.e2e_latency_s, False, TIME_RESOLUTION_S)
        for step in wf.steps:
            ref = StepRef(wf.id, step.id)
            dur = {i: -c * step.repeat for i, c in f.duration_terms.get(ref, {}).items()}
            m.add_row(f"makespan[{wf.id}.{step.id}]", {t: 1.0, f.start_vars[ref]: -1.0, **dur}, ">=", 0.0)
        m.add_objective(t, wf.arrival_rate_rps / total_rate)


def queueing_cap(resolved: ResolvedScenario) -> float:
    """The flat utilisation cap of pools that only serve percentile SLAs: the queueing model sizes them, so the cap
    applies only when the scenario states `limits.max_utilisation`."""
    limits = resolved.scenario.limits
    return limits.max_utilisation if "max_utilisation" in limits.model_fields_set else 1.0


def build_formulation(
    resolved: ResolvedScenario,
    device_filter: set[str] | None = None,
    prune: Callable[[list[Pool], dict[str, DeviceOffer]], int] | None = None,
    relax: frozenset[str] = frozenset(),
    tighten: bool = True,
    cuts: frozenset[str] = DEFAULT_CUTS,
) -> Formulation:
    """The whole model. `device_filter` restricts accelerators to a subset (homogeneous baselines; CPUs stay
    available for tools); `prune` may drop configs that cannot change the optimum; `relax` leaves limits out
    (diagnosis measures the least power, purchases and TCO the demand needs); `tighten=False` leaves out the
    valid strengthening (r ≥ x rows, coverage clipped at 1, `cuts`) — the plain formulation benchmarks compare
    with; `cuts` names the cut families added to the tightened model (CUTS)."""
    econ = economics_of(resolved)
    offers = device_offers(resolved, econ)
    if device_filter is not None:
        offers = {d: o for d, o in offers.items() if d in device_filter or o.device.kind.value == "cpu"}
    u_max = resolved.scenario.limits.max_utilisation
    sc = resolved.scenario
    engine = engine_params_by_device(offers, sc.engine, load_engines(), resolved.calibration)
    slow = {d: slow_factor(d, resolved.calibration, True) for d in offers} if sc.robust else None
    pools = build_pools(
        resolved.workflows,
        resolved.catalog,
        sorted(offers),
        u_max,
        sc.allowed_weight_dtypes,
        sc.allowed_kv_dtypes,
        engine,
        slow,
        queueing_cap(resolved),
    )
    dropped = prune(pools, offers) if prune is not None else 0
    return formulation_from_pools(resolved, pools, offers, relax, tighten, dropped, cuts)


def formulation_from_pools(
    resolved: ResolvedScenario,
    pools: list[Pool],
    offers: dict[str, DeviceOffer],
    relax: frozenset[str] = frozenset(),
    tighten: bool = True,
    dropped_configs: int = 0,
    cuts: frozenset[str] = DEFAULT_CUTS,
) -> Formulation:
    """The model over given pools and menus (building the menus is the slow part; a restricted model reuses them)."""
    econ = economics_of(resolved)
    u_max = resolved.scenario.limits.max_utilisation
    f = Formulation(LinearModel(), pools, offers, resolved.workflows, econ, u_max, tighten=tighten, cuts=cuts)
    f.dropped_configs = dropped_configs
    f.engine = resolved.scenario.engine
    if resolved.scenario.robust:
        f.error_band = {d: error_band(d, resolved.calibration) for d in sorted(offers)}
    f.pools = drop_unusable_routes(pools)
    define_fleet_variables(f)
    define_config_variables(f)
    define_capacity(f)
    define_kv_agreement(f, resolved)
    define_fleet_balance(f)
    define_latency_and_sla(f)
    define_cuts(f)
    define_limits(f, resolved, relax)
    f.tco_objective = dict(f.model.objective)
    return f
