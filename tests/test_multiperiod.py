"""Multi-period plans: a hand-derived constant-demand case, foresight never loses to greedy, schedule bookkeeping."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.multiperiod import scaled_scenario, solve_schedule
from hetplace.problems.loader import load_scenario
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, present, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
SMALL_OPTIMUM = SMALL_OPTIMUM_USD_PER_YEAR  # the single-period optimum, derived by hand in conftest
runner = CliRunner()


def _with_horizon(tmp_path: Path, horizon: dict) -> Path:
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text())
    data["horizon"] = horizon
    return write_yaml(tmp_path / "scenario.yaml", data)


def test_constant_demand_costs_the_single_period_optimum_pro_rata(tmp_path: Path) -> None:
    """Same demand and prices every period: each period costs at least period_years × the one-period optimum, and
    buying that fleet at the start achieves it, so 4 quarters cost exactly one year of the optimum."""
    path = _with_horizon(tmp_path, {"periods": 4, "period_years": 0.25})
    status, schedule = solve_schedule(load_scenario(path))
    assert status == "optimal" and schedule is not None
    assert schedule.total_usd == pytest.approx(SMALL_OPTIMUM, rel=1e-6)
    assert [p.cost_usd for p in schedule.periods] == pytest.approx([SMALL_OPTIMUM / 4] * 4, rel=1e-6)
    assert schedule.greedy_excess_fraction == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("growth", "factors"),
    [(0.5, [1.0, 0.9, 0.8, 0.7]), (0.3, [1.0, 1.0, 1.2, 1.5]), (1.0, [1.0, 0.5, 0.5, 0.5])],
)
def test_planning_the_horizon_never_costs_more_than_greedy(tmp_path: Path, growth: float, factors: list) -> None:
    path = _with_horizon(
        tmp_path,
        {"periods": 4, "period_years": 0.25, "demand_growth_per_period": growth, "price_factors": {"a10g": factors}},
    )
    resolved = load_scenario(path)
    status, schedule = solve_schedule(resolved)
    assert status == "optimal" and schedule is not None
    assert present(schedule.greedy_total_usd) >= schedule.total_usd * (1 - 1e-6)
    assert sum(p.cost_usd for p in schedule.periods) == pytest.approx(schedule.total_usd, rel=1e-9)
    previous: dict[str, int] = {}
    for p in schedule.periods:  # purchases stay in the fleet
        assert all(p.held.get(d, 0) >= n for d, n in previous.items())
        assert p.demand_factor == pytest.approx((1 + growth) ** p.period)
        assert check_plan(scaled_scenario(resolved, p.period), p.plan) == []  # each period is a valid plan
        previous = p.held


def test_scaled_scenario_moves_demand_and_prices(tmp_path: Path) -> None:
    path = _with_horizon(
        tmp_path, {"periods": 3, "demand_growth_per_period": 0.2, "price_factors": {"h100-sxm": [1.0, 0.8, 0.5]}}
    )
    resolved = load_scenario(path)
    later = scaled_scenario(resolved, 2)
    assert later.workflows[0].arrival_rate_rps == pytest.approx(resolved.workflows[0].arrival_rate_rps * 1.44)
    base_price = present(resolved.catalog.device("h100-sxm").capex_usd)
    assert later.scenario.hardware.purchasable[0].capex_usd == pytest.approx(base_price * 0.5)


def test_schedule_cli(tmp_path: Path) -> None:
    path = _with_horizon(tmp_path, {"periods": 2, "demand_growth_per_period": 0.5})
    out = tmp_path / "schedule.json"
    res = runner.invoke(app, ["schedule", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "purchase schedule" in res.output and "period-by-period (greedy)" in res.output
    schedule = json.loads(out.read_text())
    p0, p1 = schedule["periods"]
    assert schedule["period_years"] == 0.25  # the default period
    # Period 0, base demand: the single-period optimal fleet (4 Xeon sockets bought), a quarter of its year.
    # Period 1, 1.5× demand: all 4 owned L4s in use, the 4 sockets bought before, and 1 A10G rented at its catalog
    # 1.006 USD/h: (4 × 12,460 / 4 + 2.288 kW × 0.91 × 8,760 h × 0.08 + 2.288 kW × 184 × 12 + 1.006 × 8,760) / 4,
    # with 2.288 kW = 4 × 72 W + 4 × 500 W of IT load (same economics as conftest's optimum).
    assert (p0["bought"], p1["bought"], p1["held"]) == ({"xeon-6980p": 4}, {}, {"xeon-6980p": 4})
    assert p0["cost_usd"] == pytest.approx(SMALL_OPTIMUM / 4, rel=1e-9)
    period_1 = (12_460 + 2.288 * 0.7 * 1.3 * 8760 * 0.08 + 2.288 * 184 * 12 + 1.006 * 8760) / 4
    assert p1["cost_usd"] == pytest.approx(period_1, rel=1e-9)
    assert schedule["total_usd"] == pytest.approx(SMALL_OPTIMUM / 4 + period_1, rel=1e-9)
    assert schedule["purchases_usd"] == 4 * 12_460
    printed = re.search(r"horizon cost ([\d,]+) USD", " ".join(res.output.split()))
    assert printed is not None and abs(float(printed[1].replace(",", "")) - schedule["total_usd"]) <= 0.5


def test_schedule_needs_a_horizon_and_offered_devices(tmp_path: Path) -> None:
    res = runner.invoke(app, ["schedule", str(SMALL)])
    assert res.exit_code == 2 and "horizon" in res.output
    path = _with_horizon(tmp_path, {"periods": 2, "price_factors": {"b200": [1.0, 0.9]}})
    res = runner.invoke(app, ["schedule", str(path)])
    assert res.exit_code == 2 and "horizon.price_factors.b200" in res.output
    path = _with_horizon(tmp_path, {"periods": 3, "price_factors": {"a10g": [1.0, 0.9]}})
    res = runner.invoke(app, ["schedule", str(path)])
    assert res.exit_code == 2 and "2 factors for 3 periods" in res.output


def test_foresight_buys_ahead_of_rising_prices(tmp_path: Path) -> None:
    """Only Xeon sockets to buy, their price doubling, tripling, quadrupling while demand grows 50 % a quarter:
    the joint plan buys ahead at today's price; the myopic one pays the later prices."""
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text())
    data["hardware"]["rentable"] = []
    data["hardware"]["purchasable"][1]["max_count"] = 64
    data["horizon"] = {
        "periods": 4,
        "demand_growth_per_period": 0.5,
        "price_factors": {"xeon-6980p": [1.0, 2.0, 3.0, 4.0]},
    }
    status, schedule = solve_schedule(load_scenario(write_yaml(tmp_path / "s.yaml", data)))
    assert status == "optimal" and schedule is not None
    assert present(schedule.greedy_excess_fraction) > 0.05
    first = schedule.periods[0].bought["xeon-6980p"]
    assert first > 4  # more than the 4 sockets period 0 needs on its own (its single-period plan)
