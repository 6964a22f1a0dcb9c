"""Multi-period capacity plans: one model over all periods, and the myopic period-by-period plan to compare.

Each period is the single-period model of a scaled scenario (arrival rates × (1 + growth)^t, prices × the
period's factor), its variables copied into one joint model with a `p<t>:` prefix. Purchases link the periods:

  H_{d,t} = H_{d,t−1} + N_{d,t},  N ≥ 0        nodes held in period t = held before + bought in t (no selling)

The period models' node variables become H_{d,t}. Costs over the horizon (each period lasting `period_years`):
owned and rented devices and the running cost (energy + hosting) of held nodes per period, and a purchase in
period τ amortised for the periods it is held inside the horizon: N_{d,τ} · price_{d,τ} · (T − τ) · period_years /
amortisation_years. So buying early costs more amortisation, buying late needs the capacity to wait.

The capex budget bounds all purchases over the horizon; the annual budget is not applied per period.
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplace.common.errors import InputError
from hetplace.costmodels.tco import energy_usd_per_year, hosting_usd_per_year
from hetplace.optimizer.assemble import assemble_plan, solver_report
from hetplace.optimizer.backends import SolveResult, solve
from hetplace.optimizer.extensions import apply_extensions, load_extensions, record_extensions
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.solve import formulate
from hetplace.problems.loader import ResolvedScenario, purchase_price_usd, rental_usd_per_hour
from hetplace.problems.plan import PeriodPlan, SchedulePlan
from hetplace.problems.schema import Horizon


@dataclass
class _Joint:
    model: LinearModel
    periods: list[tuple[ResolvedScenario, Formulation, int]]  # scaled scenario, its formulation, variable offset
    new_nodes: dict[tuple[str, int], int]  # (device, period) -> N variable
    capex_per_node: dict[tuple[str, int], float]
    user_rows: list[str]  # the scenario's extra_constraints, applied to every period's model


def horizon_of(resolved: ResolvedScenario) -> Horizon:
    """The scenario's horizon; a scenario without one cannot be planned over periods (an input error)."""
    h = resolved.scenario.horizon
    if h is None:
        raise InputError.single(
            resolved.source, "horizon", "missing: add horizon: {periods: 4, period_years: 0.25, ...} to plan periods"
        )
    return h


def scaled_scenario(resolved: ResolvedScenario, t: int) -> ResolvedScenario:
    """Period t's scenario: demand grown, prices moved by the horizon's factors."""
    h = horizon_of(resolved)
    growth = (1.0 + h.demand_growth_per_period) ** t
    hw = resolved.scenario.hardware
    purchasable = []
    for p in hw.purchasable:
        factor = h.price_factors.get(p.device, [1.0] * h.periods)[t]
        price = purchase_price_usd(p, resolved.catalog)
        purchasable.append(p.model_copy(update={"capex_usd": None if price is None else price * factor}))
    rentable = []
    for q in hw.rentable:
        factor = h.price_factors.get(q.device, [1.0] * h.periods)[t]
        price = rental_usd_per_hour(q, resolved.catalog)
        rentable.append(q.model_copy(update={"usd_per_hour": None if price is None else price * factor}))
    scenario = resolved.scenario.model_copy(
        update={"hardware": hw.model_copy(update={"purchasable": purchasable, "rentable": rentable})}
    )
    workflows = [wf.model_copy(update={"arrival_rate_rps": wf.arrival_rate_rps * growth}) for wf in resolved.workflows]
    return ResolvedScenario(
        scenario, workflows, resolved.catalog, resolved.source, resolved.base_dir, resolved.calibration
    )


def _check_horizon(resolved: ResolvedScenario) -> None:
    h = horizon_of(resolved)
    priced = {p.device for p in resolved.scenario.hardware.purchasable} | {
        q.device for q in resolved.scenario.hardware.rentable
    }
    for device in h.price_factors:
        if device not in priced:
            raise InputError.single(
                resolved.source, f"horizon.price_factors.{device}", "device is neither purchasable nor rentable"
            )


def build_joint(resolved: ResolvedScenario, periods: int | None = None) -> _Joint:
    """The joint model over the first `periods` periods (all by default)."""
    h = horizon_of(resolved)
    total_periods = h.periods
    count = total_periods if periods is None else periods
    m = LinearModel()
    extensions = load_extensions(resolved)
    joint = _Joint(m, [], {}, {}, [])
    for t in range(count):
        rs = scaled_scenario(resolved, t)
        f = formulate(rs, relax=frozenset({"capex_budget", "annual_budget"}))
        joint.user_rows = apply_extensions(f, extensions, resolved.source)  # each period's model gets the user rows
        offset = len(m.vars)
        for v in f.model.vars:
            m.add_var(f"p{t}:{v.name}", v.lb, v.ub, v.integer, v.resolution)
        for r in f.model.rows:
            m.add_row(f"p{t}:{r.name}", {i + offset: c for i, c in r.coeffs.items()}, r.sense, r.rhs)
        held_vars = {fv.buy_nodes for fv in f.fleet_vars.values() if fv.buy_nodes is not None}
        for i, c in f.model.objective.items():
            if i not in held_vars:
                m.add_objective(i + offset, c * h.period_years)
        for dev_id, fv in f.fleet_vars.items():
            nodes = fv.buy_nodes
            if nodes is None:
                continue
            off = f.offers[dev_id]
            dpn = off.device.devices_per_node
            running = energy_usd_per_year(off.device.tdp_w, f.econ) + hosting_usd_per_year(off.device.tdp_w, f.econ)
            m.add_objective(nodes + offset, running * dpn * h.period_years)
            n = m.add_var(f"p{t}:new_nodes[{dev_id}]", 0, f.model.vars[nodes].ub, True)
            joint.new_nodes[(dev_id, t)] = n
            joint.capex_per_node[(dev_id, t)] = off.capex_usd * dpn
            amortised = (total_periods - t) * h.period_years / f.econ.amortisation_years
            m.add_objective(n, off.capex_usd * dpn * amortised)
            link = {nodes + offset: 1.0, n: -1.0}
            if t > 0:
                prev_f, prev_off = joint.periods[t - 1][1], joint.periods[t - 1][2]
                prev_nodes = prev_f.fleet_vars[dev_id].buy_nodes
                if prev_nodes is not None:  # every period offers the same devices; none held before otherwise
                    link[prev_nodes + prev_off] = -1.0
            m.add_row(f"p{t}:hold[{dev_id}]", link, "==", 0.0)
        joint.periods.append((rs, f, offset))
    budget = resolved.scenario.limits.capex_budget_usd
    if budget is not None:
        m.add_row("capex_budget", {n: joint.capex_per_node[k] for k, n in joint.new_nodes.items()}, "<=", budget)
    return joint


def _period_result(res: SolveResult, values: list[float], f: Formulation, offset: int) -> SolveResult:
    part = values[offset : offset + len(f.model.vars)]
    return SolveResult(
        res.backend, res.status, None, None, res.wall_time_s, part, res.time_limit_s, res.threads,
        termination=res.termination,
    )  # fmt: skip


def _assemble(resolved: ResolvedScenario, joint: _Joint, res: SolveResult, values: list[float]) -> list[PeriodPlan]:
    """One plan per period from the joint solution `values` (those of `res`)."""
    h = horizon_of(resolved)
    out = []
    for t, (_scaled, f, offset) in enumerate(joint.periods):
        part = _period_result(res, values, f, offset)
        plan = assemble_plan(f, part, resolved.scenario.id)
        record_extensions(plan, joint.user_rows)
        cost: float = sum(
            c * values[i] for i, c in joint.model.objective.items() if joint.model.vars[i].name.startswith(f"p{t}:")
        )
        # Replace the purchase term (charged once, for all remaining periods) by this period's amortisation share.
        bought: dict[str, int] = {}
        held: dict[str, int] = {}
        for (dev_id, tau), n in joint.new_nodes.items():
            dpn = f.offers[dev_id].device.devices_per_node
            count = round(values[n])
            share = h.period_years / f.econ.amortisation_years * joint.capex_per_node[(dev_id, tau)] * count
            if tau == t:
                cost -= (h.periods - t) * share
                if count:
                    bought[dev_id] = count * dpn
            if tau <= t:
                cost += share
                if count:
                    held[dev_id] = held.get(dev_id, 0) + count * dpn
        growth = (1.0 + h.demand_growth_per_period) ** t
        out.append(PeriodPlan(period=t, demand_factor=growth, cost_usd=cost, bought=bought, held=held, plan=plan))
    return out


def greedy_total(
    resolved: ResolvedScenario, backend: str, time_limit_s: float | None, gap: float, threads: int
) -> tuple[float | None, float]:
    """The myopic planner: plan period 0 as a one-period plan (a purchase charged one period's amortisation), then
    each next period the same way with the earlier decisions fixed (purchases stay). Returns the horizon cost of
    that sequence under the joint model's accounting, and the wall time. With constant demand and prices it buys
    what the joint plan buys; it loses when demand grows or prices move."""
    fixed: list[float] = []
    wall = 0.0
    h = horizon_of(resolved)
    objective: float | None = None
    for t in range(h.periods):
        joint = build_joint(resolved, t + 1)
        m = joint.model
        for i, value in enumerate(fixed):  # earlier decisions stay; their times are free to re-settle
            if m.vars[i].integer:
                m.vars[i].lb = m.vars[i].ub = value
        econ_years = joint.periods[t][1].econ.amortisation_years
        for (dev_id, tau), n in joint.new_nodes.items():
            if tau == t:  # myopic: this period's share only (the last period's true coefficient anyway)
                m.objective[n] = joint.capex_per_node[(dev_id, t)] * h.period_years / econ_years
        result = solve(m, backend, time_limit_s, gap, threads)
        wall += result.wall_time_s
        if result.values is None:
            return None, wall
        fixed = [float(round(v)) if m.vars[i].integer else v for i, v in enumerate(result.values)]
        objective = result.objective
    return objective, wall


def solve_schedule(
    resolved: ResolvedScenario,
    backend: str = "highs",
    time_limit_s: float | None = None,
    gap: float = 1e-4,
    threads: int = 1,
    greedy: bool = True,
) -> tuple[str, SchedulePlan | None]:
    """(status, schedule). Status as for `solve`: optimal | feasible | infeasible | no_solution."""
    _check_horizon(resolved)
    joint = build_joint(resolved)
    res = solve(joint.model, backend, time_limit_s, gap, threads)
    values, total = res.values, res.objective
    if values is None or total is None:
        return res.status, None
    periods = _assemble(resolved, joint, res, values)
    greedy_cost, greedy_wall = greedy_total(resolved, backend, time_limit_s, gap, threads) if greedy else (None, None)
    excess = (greedy_cost - total) / total if greedy_cost is not None and total else None
    solver = solver_report(res)
    solver.extra_constraints = joint.user_rows
    schedule = SchedulePlan(
        scenario=resolved.scenario.id,
        period_years=horizon_of(resolved).period_years,
        periods=periods,
        total_usd=total,
        purchases_usd=sum(joint.capex_per_node[k] * round(values[n]) for k, n in joint.new_nodes.items()),
        greedy_total_usd=greedy_cost,
        greedy_excess_fraction=excess,
        solver=solver,
        greedy_wall_time_s=greedy_wall,
    )
    return res.status, schedule
