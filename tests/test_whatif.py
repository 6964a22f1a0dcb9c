"""What-if sweeps: overrides, ready-made questions, directions of change, failures, executors, CLI outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hetplace.optimizer.solve as solve_module
from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.common.io import load_mapping
from hetplace.problems.loader import load_scenario
from hetplace.whatif.executors import run_points
from hetplace.whatif.overrides import OverrideError, apply_override, set_path
from hetplace.whatif.sweep import Axis, SolveOptions, build_tasks, parse_axis, solve_point
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, present

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
runner = CliRunner()


def test_set_path_walks_keys_and_list_selectors() -> None:
    data = {"hardware": {"purchasable": [{"device": "h100-sxm", "max_count": 16}, {"device": "b200"}]}, "limits": {}}
    set_path(data, "hardware.purchasable[device=h100-sxm].capex_usd", 20000)
    set_path(data, "hardware.purchasable[1].max_count", 8)
    set_path(data, "limits.power_cap_kw", 500)
    assert data["hardware"]["purchasable"] == [
        {"device": "h100-sxm", "max_count": 16, "capex_usd": 20000},
        {"device": "b200", "max_count": 8},
    ]
    assert data["limits"] == {"power_cap_kw": 500}
    with pytest.raises(OverrideError, match="no item with device=mi300x"):
        set_path(data, "hardware.purchasable[device=mi300x].capex_usd", 1)
    with pytest.raises(OverrideError, match="index 5 out of range"):
        set_path(data, "hardware.purchasable[5].max_count", 1)


def test_questions_scale_from_the_scenario_or_the_catalog() -> None:
    base = load_scenario(SMALL)
    data = load_mapping(SMALL)
    cheaper = apply_override(data, base, "price:a10g", 0.5)  # the scenario rents a10g at the catalog price
    rent = next(q for q in cheaper["hardware"]["rentable"] if q["device"] == "a10g")
    assert rent["usd_per_hour"] == pytest.approx(0.5 * present(base.catalog.device("a10g").cloud_usd_per_hour))
    busier = apply_override(data, base, "demand:*", 2)
    assert busier["workflows"][0]["arrival_rate_rps"] == pytest.approx(2 * base.workflows[0].arrival_rate_rps)
    looser = apply_override(data, base, "sla:small-agent", 1.5)
    assert looser["workflows"][0]["e2e_latency_s"] == pytest.approx(1.5 * base.workflows[0].sla.e2e_latency_s)
    retired = apply_override(data, base, "owned:l4", 0)
    assert retired["hardware"].get("owned") == []
    offered = apply_override(data, base, "offer:b200", 8)
    assert {"device": "b200", "max_count": 8} in offered["hardware"]["purchasable"]
    assert data == load_mapping(SMALL)  # overrides work on copies
    with pytest.raises(OverrideError, match="neither sells nor rents"):
        apply_override(data, base, "price:mi300x", 0.5)
    with pytest.raises(OverrideError, match="no workflow 'chat'"):
        apply_override(data, base, "demand:chat", 2)


def _sweep(*axes: str, workers: int = 1, executor: str = "process"):
    tasks = build_tasks(SMALL, [], [parse_axis(a) for a in axes], SolveOptions(gap=1e-6))
    return run_points(tasks, executor, workers)


def test_cheaper_device_gains_share_and_tco_follows_its_price() -> None:
    rows = _sweep("price:a10g=0.25,0.5,1,2")
    a10g = [r.devices.get("a10g", 0) for r in rows]
    tco = [r.total_usd_per_year for r in rows]
    assert all(r.status == "optimal" for r in rows)
    assert a10g == sorted(a10g, reverse=True) and a10g[0] > a10g[-1]  # cheaper → at least as many
    assert tco == sorted(tco)  # a dearer device never makes the optimum cheaper
    assert tco[-1] == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)  # a10g unused at 2× → the base optimum


def test_retiring_sunk_gpus_never_lowers_tco() -> None:
    keep, retire = _sweep("owned:l4=4,0")
    assert keep.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert retire.total_usd_per_year >= keep.total_usd_per_year * (1 - 1e-9)


def test_infeasible_points_are_reported_with_their_diagnosis() -> None:
    tight, base = _sweep("sla:*=0.02,1")
    assert tight.status == "infeasible" and tight.total_usd_per_year is None
    assert any("fastest possible critical path" in c for c in tight.diagnosis)
    assert base.status == "optimal"


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    real = solve_module.solve_scenario

    def flaky(resolved, *args, **kwargs):
        if resolved.scenario.limits.power_cap_kw == 50:
            raise RuntimeError("solver crashed")
        return real(resolved, *args, **kwargs)

    monkeypatch.setattr(solve_module, "solve_scenario", flaky)
    rows = _sweep("power_cap=50,100")  # in-process, so the patched function is the one called
    assert [r.status for r in rows] == ["error", "optimal"]
    assert rows[0].error == "RuntimeError: solver crashed"


def test_bad_overrides_fail_before_any_solve() -> None:
    with pytest.raises(InputError, match="no item with device=nope"):
        build_tasks(SMALL, [], [Axis("hardware.purchasable[device=nope].max_count", (1,))], SolveOptions())
    with pytest.raises(InputError, match="power_cap_kw"):  # the schema rejects a negative cap
        build_tasks(SMALL, [], [Axis("power_cap", (-5,))], SolveOptions())


def test_process_pool_and_ray_give_the_same_rows_as_one_process() -> None:
    # Two points over two workers: each executor starts two worker processes for them (the pool with spawn, Ray its
    # workers) and must return the rows in task order, identical to the in-process ones.
    axes = ("price:a10g=0.5,1",)
    serial = _sweep(*axes)
    assert serial[0].devices != serial[1].devices  # distinct rows, so swapping them would show
    pooled = _sweep(*axes, workers=2)
    on_ray = _sweep(*axes, workers=2, executor="ray")
    strip = [r.model_dump(exclude={"wall_time_s"}) for r in serial]
    assert [r.model_dump(exclude={"wall_time_s"}) for r in pooled] == strip
    assert [r.model_dump(exclude={"wall_time_s"}) for r in on_ray] == strip


def test_solve_point_matches_a_direct_solve(small_plans) -> None:
    (task,) = build_tasks(SMALL, [], [], SolveOptions())
    row = solve_point(task)
    direct = small_plans["highs"]  # solve_scenario on the same file, same default options
    assert row.total_usd_per_year == pytest.approx(direct.plan.tco.total_usd_per_year, rel=1e-12)
    assert row.params == {}


def test_cli_whatif_writes_rows_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    res = runner.invoke(
        app, ["whatif", str(SMALL), "--sweep", "price:a10g=0.5,1", "--set", "limits.power_cap_kw=80", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "points.csv").open()))
    assert [r["price:a10g"] for r in rows] == ["0.5", "1"]
    # The 80 kW cap does not bind (the optimum draws about 2 kW). A10G at half its catalog 1.006 USD/h: 2 rented,
    # 2 Xeon sockets bought, 2 owned L4s in use (1.144 kW of IT load, conftest's economics):
    # 2 × 0.503 × 8,760 + 2 × 12,460 / 4 + 1.144 kW × 0.91 × 8,760 h × 0.08 + 1.144 kW × 184 × 12 = 18,298.07.
    # At the catalog price the base optimum.
    assert [r["devices"] for r in rows] == ["a10g:2;l4:2;xeon-6980p:2", "l4:2;xeon-6980p:4"]
    half_price = 2 * 0.503 * 8760 + 2 * 12_460 / 4 + 1.144 * 0.7 * 1.3 * 8760 * 0.08 + 1.144 * 184 * 12
    assert float(rows[0]["total_usd_per_year"]) == pytest.approx(half_price, rel=1e-9)
    assert float(rows[1]["total_usd_per_year"]) == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert json.loads((out / "points.json").read_text())[1]["total_usd_per_year"] == pytest.approx(
        float(rows[1]["total_usd_per_year"])
    )
    for png in ("tco_vs_price_a10g.png", "pareto_latency_tco.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_whatif_bad_sweep_exits_2_naming_the_option(tmp_path: Path) -> None:
    res = runner.invoke(app, ["whatif", str(SMALL), "--sweep", "price:a10g", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "--sweep" in res.output and "SPEC=VALUE" in res.output
    assert not (tmp_path / "o").exists()
