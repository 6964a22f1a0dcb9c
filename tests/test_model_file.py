"""`hetplace solve --write-model`: the LP/MPS file parses back in other readers and has the solve's optimum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import highspy
import pulp
import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.linear import LinearModel
from hetplace.optimizer.model_file import writable_names, write_model
from tests.conftest import FIXTURES, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
CPU_CAP = "hetplace.optimizer.extension_examples:cpu_devices_at_most_2"
runner = CliRunner()


def _scenario(tmp_path: Path) -> Path:
    """The small scenario with the CPU cap (so the file must hold the user row to reach the solve's optimum)."""
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text())
    data["extra_constraints"] = CPU_CAP
    return write_yaml(tmp_path / "scenario.yaml", data)


def _highs_optimum(path: Path) -> float:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


@pytest.mark.parametrize("suffix", [".lp", ".mps"])
def test_written_model_has_the_solves_optimum(tmp_path: Path, suffix: str) -> None:
    scenario = _scenario(tmp_path)
    model_file = tmp_path / "out" / f"model{suffix}"
    result = runner.invoke(app, ["solve", str(scenario), "--json", "--no-baselines", "--write-model", str(model_file)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    # The capped optimum (tests/test_extensions.py, by hand): 27,110.632832 USD/year; the uncapped one is 18,561.24.
    assert plan["solver"]["objective"] == pytest.approx(27110.632832, rel=1e-9)
    assert _highs_optimum(model_file) == pytest.approx(plan["solver"]["objective"], rel=1e-7)
    assert "user_cpu_devices" in model_file.read_text()  # the user row is in the file, under its own name
    assert sorted(p.name for p in model_file.parent.iterdir()) == [model_file.name]  # no temp file left behind


def test_mps_parses_back_in_pulp_with_the_same_optimum(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    model_file = tmp_path / "model.mps"
    result = runner.invoke(app, ["solve", str(scenario), "--json", "--no-baselines", "--write-model", str(model_file)])
    assert result.exit_code == 0, result.output
    _, prob = pulp.LpProblem.fromMPS(str(model_file))
    prob.solve(pulp.HiGHS(msg=False))
    assert pulp.value(prob.objective) == pytest.approx(json.loads(result.stdout)["solver"]["objective"], rel=1e-7)


def test_unknown_suffix_or_objective_is_exit_2_before_any_solve(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    result = runner.invoke(app, ["solve", str(scenario), "--write-model", str(tmp_path / "model.txt")])
    assert result.exit_code == 2
    assert "unknown model format '.txt': use a .lp or .mps file name" in result.output
    result = runner.invoke(
        app, ["solve", str(scenario), "--objective", "min_latency", "--write-model", str(tmp_path / "m.lp")]
    )
    assert result.exit_code == 2
    assert "cannot be combined with --objective min_latency" in result.output
    assert not (tmp_path / "model.txt").exists() and not (tmp_path / "m.lp").exists()


def test_write_model_rejects_other_suffixes() -> None:
    with pytest.raises(ValueError, match=r"use a \.lp or \.mps file name"):
        write_model(LinearModel(), Path("model.json"))


def test_writable_names_by_hand() -> None:
    names = ["r[a-b|tp1]", "r[a_b|tp1]", "R[A-B|TP1]", "7up", "fleet[l4]", ""]
    assert writable_names(names, "v") == ["r_a_b_tp1", "r_a_b_tp1_2", "R_A_B_TP1_3", "v_7up", "fleet_l4", "v"]


def test_a_tiny_model_round_trips_by_hand(tmp_path: Path) -> None:
    """min 3x + 2y, x + y ≥ 4, x ≤ 3, y integer ≤ 2.5 → y = 2, x = 2: objective 10 (with a constant of 1: 11)."""
    m = LinearModel()
    x = m.add_var("x[a]", 0, 3)
    y = m.add_var("y[a]", 0, 2.5, integer=True)
    m.add_row("cover", {x: 1.0, y: 1.0}, ">=", 4.0)
    m.objective = {x: 3.0, y: 2.0}
    m.objective_constant = 1.0
    for suffix in (".lp", ".mps"):
        write_model(m, tmp_path / f"tiny{suffix}")
        assert _highs_optimum(tmp_path / f"tiny{suffix}") == pytest.approx(11.0)
