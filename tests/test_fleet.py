"""Re-placement on a fixed fleet (`hetplace solve SCENARIO --fleet PLAN`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.fleet import fixed_fleet, fleet_shortage
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.problems.plan import Plan
from tests.conftest import SMALL_OPTIMUM_USD_PER_YEAR, solved_plan, write_yaml

SMALL = Path(__file__).parent / "fixtures" / "scenarios" / "small-agent.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def small_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, Path]:
    plan = solved_plan(solve_scenario(load_scenario(SMALL), "highs", baselines=False))
    path = tmp_path_factory.mktemp("fleet") / "plan.json"
    path.write_text(plan.model_dump_json())
    return plan, path


def at_rate(tmp: Path, rate: float) -> Path:
    """The small scenario with its workflow's arrival rate overridden."""
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp / "small-agent-workflow.yaml")
    sc = yaml.safe_load(SMALL.read_text())
    sc["workflows"][0]["arrival_rate_rps"] = rate
    return write_yaml(tmp / "s.yaml", sc)


def test_fixed_fleet_holds_the_plans_devices_as_owned(small_plan: tuple[Plan, Path]) -> None:
    plan, path = small_plan
    fixed = fixed_fleet(load_scenario(SMALL), plan, str(path))
    hw = fixed.scenario.hardware
    # The plan keeps 2 owned L4s and bought 4 Xeon sockets (2 nodes): those 6, no purchases, nothing rented.
    assert {o.device: o.count for o in hw.owned} == {"l4": 2, "xeon-6980p": 4}
    assert hw.purchasable == [] and hw.rentable == []
    # A bought Xeon is owned with its purchase price as forgone resale value: the same capex per year.
    xeon = next(o for o in hw.owned if o.device == "xeon-6980p")
    assert xeon.sunk and xeon.residual_value_usd == pytest.approx(49_840 / 4)


def test_replacing_at_its_own_demand_costs_the_same(small_plan: tuple[Plan, Path]) -> None:
    plan, path = small_plan
    fixed = fixed_fleet(load_scenario(SMALL), plan, str(path))
    again = solved_plan(solve_scenario(fixed, "highs", baselines=False))
    assert again.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert again.tco.total_usd_per_year == pytest.approx(plan.tco.total_usd_per_year, rel=1e-9)
    assert all(e.bought == 0 and e.rented == 0 for e in again.fleet)
    used = {e.device: e.owned_used for e in again.fleet}
    assert used == {e.device: e.owned_used + e.bought for e in plan.fleet if e.owned_used + e.bought}
    assert check_plan(fixed, again) == []


def test_twice_the_demand_says_what_is_short(tmp_path: Path, small_plan: tuple[Plan, Path]) -> None:
    plan, path = small_plan
    fixed = fixed_fleet(load_scenario(at_rate(tmp_path, 6.0)), plan, str(path))
    assert solve_scenario(fixed, "highs", baselines=False).status == "infeasible"
    short = fleet_shortage(fixed)
    assert short is not None and len(short) >= 1
    assert all(line.startswith("fleet short of ") for line in short)
    assert any("xeon-6980p: it has 4" in line for line in short)


def test_cli_fleet_option(tmp_path: Path, small_plan: tuple[Plan, Path]) -> None:
    _, path = small_plan
    ok = runner.invoke(app, ["solve", str(SMALL), "--fleet", str(path), "--json"])
    assert ok.exit_code == 0, ok.output
    replaced = json.loads(ok.stdout)
    assert replaced["tco"]["total_usd_per_year"] == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-9)
    assert replaced["baselines"] == []
    short = runner.invoke(app, ["solve", str(at_rate(tmp_path, 6.0)), "--fleet", str(path)])
    assert short.exit_code == 1
    assert "fleet short of" in short.output and "xeon-6980p" in short.output


def test_cli_fleet_with_an_unknown_device_is_exit_2(tmp_path: Path, small_plan: tuple[Plan, Path]) -> None:
    plan, _ = small_plan
    data = plan.model_dump(mode="json")
    data["fleet"][0]["device"] = "no-such-gpu"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = runner.invoke(app, ["solve", str(SMALL), "--fleet", str(bad)])
    assert out.exit_code == 2
    assert "fleet[0].device" in out.output and "no-such-gpu" in out.output and "Traceback" not in out.output
