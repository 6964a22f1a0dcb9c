"""Homogeneous baselines are honest (issue 15, item 12): the baseline's accelerator serves every LLM, embedding
and encoder step; CPU sockets serve only tool calls and retrieval. Before, the small scenario's "all-L4" baseline
ran the LLM on four Xeon sockets and was the heterogeneous plan itself (saving 0 %).

Costs derived by hand from the catalog and the scenario defaults (as in tests/conftest.py): a device on site costs
per kW of TDP 0.7 × 1.3 × 8,760 h × 0.08 USD/kWh = 637.728 USD/year of energy and 184 × 12 = 2,208 USD/year of
hosting; a Xeon 6980P socket is 500 W and 12,460 USD (4-year amortisation), an H100 SXM 700 W and 27,000 USD, a
rented A10G 1.006 USD/hour all in.
"""

from __future__ import annotations

from typing import Any

import pytest

from hetplace.catalogs.schema import DeviceKind
from hetplace.common.enums import Phase, SolverStatus
from hetplace.optimizer.assemble import assemble_plan
from hetplace.optimizer.baselines import cpus_for_tools_only
from hetplace.optimizer.solve import formulate, solve_model
from hetplace.problems.loader import ResolvedScenario
from tests.conftest import SMALL_OPTIMUM_USD_PER_YEAR, solved_plan

KW_YEAR_USD = 0.7 * 1.3 * 8760 * 0.08 + 184 * 12  # energy + hosting per kW of TDP on site
TWO_XEONS_USD = 2 * 12_460 / 4 + 2 * 0.5 * KW_YEAR_USD  # one dual-socket node: the tool call and retrieval
A10G_BASELINE_USD = 5 * 1.006 * 8760 + TWO_XEONS_USD  # 53,138.528: 5 rented A10Gs serve the LLM and the embedding
H100_BASELINE_USD = 8 * 27_000 / 4 + 8 * 0.7 * KW_YEAR_USD + TWO_XEONS_USD  # 79,011.8048: one bought 8-GPU node


def test_small_scenario_baselines_by_hand(small_plans: dict[str, Any]) -> None:
    plan = solved_plan(small_plans["highs"])
    by_device = {b.device: b for b in plan.baselines}
    assert by_device["l4"].status == SolverStatus.infeasible  # 4 owned L4s alone cannot serve the LLM in time
    assert by_device["a10g"].total_usd_per_year == pytest.approx(A10G_BASELINE_USD, rel=1e-9)
    assert by_device["h100-sxm"].total_usd_per_year == pytest.approx(H100_BASELINE_USD, rel=1e-9)
    for b in (by_device["a10g"], by_device["h100-sxm"]):
        assert b.saving_fraction == pytest.approx(1 - SMALL_OPTIMUM_USD_PER_YEAR / (b.total_usd_per_year or 0))


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_the_all_l4_baseline_is_infeasible_on_two_backends(small_resolved: ResolvedScenario, backend: str) -> None:
    f = formulate(small_resolved, {"l4"}, restrict=cpus_for_tools_only)
    if any(not p.configs for p in f.pools):
        return  # no config at all is infeasible too
    assert solve_model(small_resolved, f, backend, None, 1e-4, 1).status == SolverStatus.infeasible


@pytest.mark.parametrize("device", ["a10g", "h100-sxm"])
def test_baseline_plans_run_models_only_on_their_accelerator(small_resolved: ResolvedScenario, device: str) -> None:
    f = formulate(small_resolved, {device}, restrict=cpus_for_tools_only)
    res = solve_model(small_resolved, f, "highs", None, 1e-4, 1)
    plan = assemble_plan(f, res, small_resolved.scenario.id)
    for a in plan.pools:
        if a.phase in (Phase.tool, Phase.retrieval):
            assert a.device in (device, "xeon-6980p"), a.pool
        else:
            assert a.device == device, (a.pool, a.device)


def test_cpus_for_tools_only_keeps_cpus_for_tools_and_retrieval(small_resolved: ResolvedScenario) -> None:
    f = formulate(small_resolved, {"a10g"})  # unrestricted: the Xeon appears on the LLM menus
    cpu_on_models = [c for p in f.pools if p.phase not in (Phase.tool, Phase.retrieval) for c in p.configs]
    assert any(f.offers[c.device].device.kind == DeviceKind.cpu for c in cpu_on_models)
    g = formulate(small_resolved, {"a10g"}, restrict=cpus_for_tools_only)
    for pool in g.pools:
        kinds = {g.offers[c.device].device.kind for c in pool.configs}
        if pool.phase == Phase.tool:
            assert kinds == {DeviceKind.cpu}
        elif pool.phase == Phase.retrieval:
            assert DeviceKind.cpu in kinds
        else:
            assert DeviceKind.cpu not in kinds, pool.id
