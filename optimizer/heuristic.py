"""A fast primal heuristic: split each workflow's SLA into per-step latency budgets, then plan every model family on
its own as the cheapest single-config choice that meets its steps' budgets.

Why: on large models (hundreds of pools) HiGHS's own heuristics find poor plans late. Budgets decouple the pools:
with every step within its budget, every path of a workflow is within its SLA, so the per-family choices together
form a feasible plan, found in about a second. The plan is handed to the solver as a start (only the integer replica
and in-use values plus the route shares; the solver completes the rest), so it can only help: the optimum is that
of the full model.

Budgets: a workflow's steps run at their fastest possible durations scaled by one factor per workflow, the largest
that keeps its longest path within the SLA. Tool calls take a fixed time on every CPU, so only steps whose duration
depends on the hardware (LLM, embedding, conversion, retrieval) are scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hetplace.optimizer.formulation import DeviceOffer, Formulation
from hetplace.optimizer.pools import DISAGGREGATED, Config, Pool, StepRef, coverage_load, routes_by_family
from hetplace.optimizer.presolve import fastest_step_durations, path_margins
from hetplace.problems.dag import longest_paths
from hetplace.problems.schema import ToolStep, Workflow


def _longest_path_s(wf: Workflow, duration_s: dict[StepRef, float]) -> float:
    """The workflow's critical path with each step taking `duration_s` (all of its repeats)."""
    return longest_paths(wf, {s.id: duration_s[StepRef(wf.id, s.id)] for s in wf.steps}).critical_path_s


def step_budgets(workflows: list[Workflow], fastest_s: dict[StepRef, float]) -> dict[StepRef, float]:
    """Per step: the most one execution may take (see module docstring). Bisection on the scale factor; a workflow
    that cannot meet its SLA even at the fastest gets factor 1 (the solver will report it)."""
    budgets: dict[StepRef, float] = {}
    for wf in workflows:
        fixed = {s.id: isinstance(s, ToolStep) for s in wf.steps}

        def path_at(scale: float, wf: Workflow = wf, fixed: dict[str, bool] = fixed) -> float:
            return _longest_path_s(
                wf,
                {
                    StepRef(wf.id, s.id): s.repeat * fastest_s[StepRef(wf.id, s.id)] * (1.0 if fixed[s.id] else scale)
                    for s in wf.steps
                },
            )

        lo, hi = 1.0, 1.0
        while path_at(hi * 2) <= wf.sla.e2e_latency_s and hi < 1e6:
            hi *= 2
        hi *= 2
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if path_at(mid) <= wf.sla.e2e_latency_s else (lo, mid)
        for s in wf.steps:
            ref = StepRef(wf.id, s.id)
            budgets[ref] = fastest_s[ref] * (1.0 if fixed[s.id] else lo * (1 - 1e-9))
    return budgets


@dataclass
class _Source:
    """One way to have devices of a type (owned, bought, rented): its price and how many are left."""

    usd_per_device_year: float
    devices_left: int


@dataclass(frozen=True)
class _Taken:
    """Devices taken from one source of the ledger (what `release` gives back)."""

    device: str
    source: int  # index into the device's sources
    devices: int


@dataclass(frozen=True)
class ConfigReplicas:
    config: Config
    replicas: int

    @property
    def devices(self) -> int:
        return self.config.tp * self.replicas


@dataclass(frozen=True)
class Choice:
    """One config per pool of a route, with its yearly cost and its worst duration/budget ratio over the steps."""

    usd_per_year: float
    budget_ratio: float
    configs: list[ConfigReplicas]
    route: str = ""


@dataclass
class _Ledger:
    """Devices still available per source, used cheapest first (owned devices usually are, unless their resale
    value makes them dearer than new ones), so every limit is kept."""

    offers: dict[str, DeviceOffer]

    def __post_init__(self) -> None:
        self.left: dict[str, list[_Source]] = {}  # device -> its sources in order of use
        for d, o in self.offers.items():
            whole_nodes = o.buy_max // o.device.devices_per_node * o.device.devices_per_node  # purchases: nodes
            sources = [(o.owned_cost, o.owned), (o.buy_cost, whole_nodes), (o.rent_cost, o.rent_max)]
            self.left[d] = [_Source(price, n) for price, n in sorted(sources)]

    def cost_usd(self, device: str, count: int) -> float:
        """Yearly cost of `count` more devices (inf when fewer are left)."""
        return float(self.costs_usd(device, np.array([count]))[0])

    def costs_usd(self, device: str, counts: np.ndarray) -> np.ndarray:
        """`cost_usd` for an array of counts."""
        rest = counts.astype(float)
        cost = np.zeros(len(rest))
        for source in self.left[device]:
            used = np.minimum(rest, source.devices_left)
            cost += np.where(used > 0, used * source.usd_per_device_year, 0.0)
            rest = rest - used
        return np.where(rest > 0, math.inf, cost)

    def take(self, device: str, count: int) -> list[_Taken]:
        """Use `count` devices in order of price; returns what to give back to release them."""
        taken = []
        for k, source in enumerate(self.left[device]):
            used = min(count, source.devices_left)
            source.devices_left -= used
            count -= used
            if used:
                taken.append(_Taken(device, k, used))
        return taken

    def take_choice(self, choice: Choice) -> list[_Taken]:
        return [t for c in choice.configs for t in self.take(c.config.device, c.devices)]

    def release(self, taken: list[_Taken]) -> None:
        for t in taken:
            self.left[t.device][t.source].devices_left += t.devices


def _replicas(pool: Pool, c: Config) -> int:
    """Replicas of `c` alone that carry the pool's demand at the load they may run at (a queueing config: at least
    its least stable count)."""
    return max(c.min_replicas, math.ceil(pool.demand / coverage_load(pool, c) / c.throughput - 1e-9))


@dataclass
class _Menu:
    """A pool's configs as arrays: latency per served step, replicas needed alone, devices they take."""

    pool: Pool
    latency_s: np.ndarray  # configs × pool.steps
    replicas: list[int]
    devices: np.ndarray
    device_count: np.ndarray
    kv_dtypes: np.ndarray  # each config's KV-cache dtype ("" without a KV cache)

    @classmethod
    def of(cls, pool: Pool) -> _Menu:
        reps = [_replicas(pool, c) for c in pool.configs]
        lat = np.array(
            [[c.latency_at(r, n) for r in pool.steps] for c, n in zip(pool.configs, reps, strict=True)]
        ).reshape(len(pool.configs), len(pool.steps))
        devices = np.array([c.device for c in pool.configs])
        count = np.array([c.tp * n for c, n in zip(pool.configs, reps, strict=True)])
        kv = np.array([c.kv_dtype or "" for c in pool.configs])
        return cls(pool, lat, reps, devices, count, kv)

    def costs_usd(self, ledger: _Ledger) -> np.ndarray:
        """Yearly cost of each config's replicas from the ledger (inf where too few devices are left)."""
        cost = np.empty(len(self.replicas))
        for device in set(self.devices.tolist()):
            idx = np.flatnonzero(self.devices == device)
            cost[idx] = ledger.costs_usd(device, self.device_count[idx])
        return cost


def _pick(cost: np.ndarray, ratio: np.ndarray, closest: bool) -> int | None:
    """Index of the cheapest option within budget (ratio ≤ 1), or with `closest` of the cheapest among those with the
    smallest worst duration/budget ratio. Options without enough devices (cost inf) never count."""
    usable = np.isfinite(cost)
    if closest:
        if not usable.any():
            return None
        best = ratio[usable].min()
        usable &= ratio <= best * (1 + 1e-9) + 1e-12
    else:
        usable &= ratio <= 1 + 1e-9
    if not usable.any():
        return None
    return int(np.argmin(np.where(usable, cost, np.inf)))


def _cheapest(
    menus: list[_Menu], budgets: dict[StepRef, float], ledger: _Ledger, closest: bool = False
) -> Choice | None:
    """The cheapest choice of one config per pool of a route within the budgets (the route's pool latencies add
    up), or with `closest` the one nearest to them (see `_pick`)."""
    budget = np.maximum(np.array([budgets[r] for r in menus[0].pool.steps]), 1e-12)
    costs = [m.costs_usd(ledger) for m in menus]
    if len(menus) == 1:
        (m,), (cost,) = menus, costs
        ratio = (m.latency_s / budget[None, :]).max(axis=1)
        i = _pick(cost, ratio, closest)
        if i is None:
            return None
        return Choice(float(cost[i]), float(ratio[i]), [ConfigReplicas(m.pool.configs[i], m.replicas[i])])
    a, b = menus
    ratio = ((a.latency_s[:, None, :] + b.latency_s[None, :, :]) / budget[None, None, :]).max(axis=2)
    total = costs[0][:, None] + costs[1][None, :]
    # Both pools on one device type draw on the same owned devices and limits: price those pairs together.
    for device in set(a.devices.tolist()) & set(b.devices.tolist()):
        ia, ib = np.flatnonzero(a.devices == device), np.flatnonzero(b.devices == device)
        joint = ledger.costs_usd(device, (a.device_count[ia][:, None] + b.device_count[ib][None, :]).ravel())
        total[np.ix_(ia, ib)] = joint.reshape(len(ia), len(ib))
    # A disaggregated route's prefill and decode store the KV cache in one dtype (formulation's kv rows): pairs
    # that disagree are no option.
    total[a.kv_dtypes[:, None] != b.kv_dtypes[None, :]] = np.inf
    k = _pick(total.ravel(), ratio.ravel(), closest)
    if k is None:
        return None
    i, j = (int(n) for n in np.unravel_index(k, total.shape))
    choice = [ConfigReplicas(a.pool.configs[i], a.replicas[i]), ConfigReplicas(b.pool.configs[j], b.replicas[j])]
    return Choice(float(total[i, j]), float(ratio[i, j]), choice)


def _best_choice(
    routes: dict[str, list[_Menu]], budgets: dict[StepRef, float], ledger: _Ledger, closest: bool = False
) -> Choice | None:
    """The cheapest choice over the family's routes; with `closest`, the one nearest its budgets, then cheapest."""
    best: tuple[float, float] | None = None
    out: Choice | None = None
    for route, menus in routes.items():
        if any(not m.pool.configs for m in menus):
            continue
        found = _cheapest(menus, budgets, ledger, closest)
        if found is None:
            continue
        key = (found.budget_ratio, found.usd_per_year) if closest else (found.usd_per_year, 0.0)
        if best is None or key < best:
            best, out = key, replace(found, route=route)
    return out


def _family_durations(choice: Choice) -> dict[StepRef, float]:
    """Per step of the family: one execution's duration under the chosen configs (a route's pools add up)."""
    out: dict[StepRef, float] = {}
    for c in choice.configs:
        for ref in c.config.latency_s:
            out[ref] = out.get(ref, 0.0) + c.config.latency_at(ref, c.replicas)
    return out


def _slack_budgets(
    family_steps: list[StepRef], workflows: dict[str, Workflow], durations: dict[StepRef, float]
) -> dict[StepRef, float]:
    """Budgets for one family's steps with every other step held at its current duration: each step may grow by
    its path slack shared evenly among the family's steps in the same workflow, so that even a path through all of
    them stays within the SLA."""
    touched = [workflows[w] for w in dict.fromkeys(r.workflow for r in family_steps)]
    repeat = {StepRef(w.id, s.id): s.repeat for w in touched for s in w.steps}
    margin = path_margins(touched, {ref: n * durations.get(ref, 0.0) for ref, n in repeat.items()})
    per_workflow = {w.id: sum(1 for r in family_steps if r.workflow == w.id) for w in touched}
    return {
        r: durations[r] + max(0.0, margin[r] - repeat[r] * durations[r]) / (per_workflow[r.workflow] * repeat[r])
        for r in family_steps
    }


def _meets_slas(workflows: list[Workflow], durations: dict[StepRef, float]) -> bool:
    return all(
        _longest_path_s(wf, {(r := StepRef(wf.id, s.id)): s.repeat * durations.get(r, 0.0) for s in wf.steps})
        <= wf.sla.e2e_latency_s * (1 + 1e-9)
        for wf in workflows
    )


LOCAL_SEARCH_ROUNDS = 3


def budget_plan(f: Formulation) -> dict[int, float] | None:
    """Values for the replica, in-use and share variables of a feasible plan, or None when none was found.

    Families are planned largest first, so they get the owned devices; if that runs out of some device, again with
    the families that can use the fewest device types first. Then a few rounds re-plan each family within the slack
    the others leave (a choice is only replaced by a cheaper one, and the current choice always fits its budgets,
    so every round keeps the plan feasible)."""
    budgets = step_budgets(f.workflows, fastest_step_durations(f.pools, f.workflows))
    families = routes_by_family(f.pools)
    menus = {
        fam: {route: [_Menu.of(p) for p in ps] for route, ps in routes.items()}
        for fam, routes in families.items()
    }

    def size(fam: str) -> float:
        """Devices the family needs at its most device-efficient configs (fractional)."""
        pools = [p for ps in families[fam].values() for p in ps]
        return max((min((p.demand / c.throughput * c.tp for c in p.configs), default=0.0) for p in pools), default=0.0)

    def device_types(fam: str) -> int:
        return len({d for ms in menus[fam].values() for m in ms for d in m.devices.tolist()})

    largest_first = sorted(families, key=lambda fam: -size(fam))
    constrained_first = sorted(families, key=lambda fam: (device_types(fam), -size(fam)))
    for order in (largest_first, constrained_first):
        plan = _plan_in_order(f, order, families, menus, budgets)
        if plan is not None:
            return plan
    return None


def _plan_in_order(
    f: Formulation,
    order: list[str],
    families: dict[str, dict[str, list[Pool]]],
    menus: dict[str, dict[str, list[_Menu]]],
    budgets: dict[StepRef, float],
) -> dict[int, float] | None:
    ledger = _Ledger(f.offers)
    chosen: dict[str, Choice] = {}
    taken: dict[str, list[_Taken]] = {}
    durations: dict[StepRef, float] = {}
    for family in order:
        # A family that cannot meet its budgets (its configs are not fastest on all its steps at once) takes the
        # choice nearest to them; the whole plan is then checked against every SLA below.
        best = _best_choice(menus[family], budgets, ledger) or _best_choice(menus[family], budgets, ledger, True)
        if best is None:
            return None
        chosen[family] = best
        taken[family] = ledger.take_choice(best)
        durations.update(_family_durations(best))
    workflows = {w.id: w for w in f.workflows}
    if not _meets_slas(f.workflows, durations):
        return None
    for _ in range(LOCAL_SEARCH_ROUNDS):
        improved = False
        for family in order:
            current = chosen[family]
            ledger.release(taken[family])
            steps = next(iter(families[family].values()))[0].steps
            slack = _slack_budgets(steps, workflows, durations)
            best = _best_choice(menus[family], slack, ledger)
            # price the current choice with the same ledger, so the comparison is like for like
            now = sum(ledger.cost_usd(c.config.device, c.devices) for c in current.configs)
            if best is not None and best.usd_per_year < now - 1e-6:
                chosen[family] = best
                durations.update(_family_durations(best))
                improved = True
            taken[family] = ledger.take_choice(chosen[family])
        if not improved:
            break
    values: dict[int, float] = {}
    for pool in f.pools:
        for c in pool.configs:
            v = f.config_vars[c.key]
            values[v.replicas] = values[v.in_use] = 0.0
    for family, choice in chosen.items():
        for cr in choice.configs:
            v = f.config_vars[cr.config.key]
            values[v.replicas], values[v.in_use] = float(cr.replicas), 1.0
        for name, share in f.share_vars.get(family, {}).items():
            values[share] = 1.0 if name == choice.route else 0.0
        kv_used = {cr.config.kv_dtype for cr in choice.configs if choice.route == DISAGGREGATED}
        for kv, var in f.kv_vars.get(family, {}).items():
            values[var] = 1.0 if kv in kv_used else 0.0
    return values
