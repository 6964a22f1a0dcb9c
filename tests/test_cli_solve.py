"""`hetplace solve` and `hetplace check` through CliRunner: plans, files, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, write_yaml

runner = CliRunner()
SMALL = FIXTURES / "scenarios" / "small-agent.yaml"


def run(*args: str):
    return runner.invoke(app, list(args))


def test_solve_json_is_a_valid_plan_and_checks_out(tmp_path: Path) -> None:
    out = tmp_path / "plan.yaml"
    result = run("solve", str(SMALL), "--json", "--no-baselines", "--out", str(out))
    assert result.exit_code == 0, result.output
    plan = Plan.model_validate(json.loads(result.stdout))
    assert plan.solver.status == "optimal" and plan.solver.gap <= 1e-4  # within the requested gap
    assert Plan.model_validate(yaml.safe_load(out.read_text())) == plan
    check = run("check", str(SMALL), str(out))
    assert check.exit_code == 0, check.output
    assert "plan is valid" in check.stdout


def test_solve_table_reports_saving_against_baselines() -> None:
    result = run("solve", str(SMALL), "--backend", "cbc")
    assert result.exit_code == 0, result.output
    assert "USD/year" in result.stdout and "Best homogeneous fleet" in result.stdout


def test_check_rejects_a_tampered_plan(tmp_path: Path) -> None:
    plan = json.loads(run("solve", str(SMALL), "--json", "--no-baselines").stdout)
    plan["tco"]["total_usd_per_year"] /= 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(plan))
    result = run("check", str(SMALL), str(bad), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False and any(v.startswith("tco:") for v in data["violations"])


def test_infeasible_scenario_exits_1_with_diagnosis(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL.read_text())
    data["workflows"][0]["path"] = str(SMALL.parent / "small-agent-workflow.yaml")
    data["workflows"][0]["e2e_latency_s"] = 0.5
    scenario = write_yaml(tmp_path / "tight.yaml", data)
    out = tmp_path / "plan.json"
    result = run("solve", str(scenario), "--no-baselines", "--out", str(out))
    assert result.exit_code == 1
    assert "fastest possible critical path" in result.stderr and "SLA 0.5 s" in result.stderr
    assert not out.exists()


def test_solve_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("id: x\nname: x\nworkflows: []\nhardware: {}\n")
    result = run("solve", str(bad))
    assert result.exit_code == 2 and "workflows" in result.stderr and "Traceback" not in result.output


def test_check_bad_plan_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"schema_version": "1", "fleet": []}')
    result = run("check", str(SMALL), str(bad))
    assert result.exit_code == 2 and "scenario" in result.stderr
