"""The routing table every format ships: for each workflow step, the pools that serve it, each route's share of
the step's traffic (an LLM may be split between co-located and disaggregated serving) and each deployment unit's
weight within its pool (its share of the pool's demand)."""

from __future__ import annotations

from typing import Any

from hetplace.export.plan_view import SINGLE, PlanView


def routing_table(view: PlanView) -> list[dict[str, Any]]:
    shares = view.route_shares()
    units_by_pool: dict[str, list] = {}
    for u in view.units:
        units_by_pool.setdefault(u.pool, []).append(u)
    rows = []
    for step in view.plan.steps:
        routes: dict[str, dict[str, Any]] = {}  # route name → {"route", "share", "pools"}
        for pool_id in step.pool.split("+"):
            units = units_by_pool.get(pool_id, [])
            if not units:
                continue
            first = units[0]
            family = shares.get(first.model.id, {}) if first.model is not None and first.route != SINGLE else {}
            route = routes.setdefault(
                first.route, {"route": first.route, "share": round(family.get(first.route, 1.0), 6), "pools": []}
            )
            route["pools"].append(
                {
                    "pool": pool_id,
                    "phase": first.phase.value,
                    "units": [{"name": u.name, "weight": round(u.demand_share, 6)} for u in units],
                }
            )
        rows.append({"workflow": step.workflow, "step": step.step, "routes": [routes[r] for r in sorted(routes)]})
    return rows
