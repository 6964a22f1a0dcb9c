"""A batch job can tell (issue 15, item 10): `report` exits 1 when a scenario in it is infeasible (the report is
still written, with the diagnosis), and `calibrate` warns when a device has too few rows to fit its three
parameters (and refuses a device whose rows are all held back)."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from hetplace.cli import app
from tests.conftest import FIXTURES, SMALL, read_yaml, write_yaml

runner = CliRunner()
GEMM_SAMPLE = FIXTURES / "measurements" / "vidur_gemm_fp16_sample.csv"


def _small_with_power_cap(tmp_path: Path, cap_kw: float) -> Path:
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL)
    data["id"] = "small-tight"
    data["limits"]["power_cap_kw"] = cap_kw
    return write_yaml(tmp_path / "tight.yaml", data)


def test_report_exits_1_when_a_scenario_is_infeasible(tmp_path: Path) -> None:
    tight = _small_with_power_cap(tmp_path, 0.2)  # the small plan draws 1.95 kW
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(SMALL), str(tight), "--out", str(out), "--no-baselines"])
    assert result.exit_code == 1, result.output
    assert f"{tight}: infeasible" in result.stderr
    page = (out / "report.md").read_text()
    assert "power cap 0.2 kW < minimum" in page  # written anyway, with the diagnosis


def test_report_exits_0_when_every_scenario_has_a_plan(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(SMALL), "--out", str(tmp_path / "r"), "--no-baselines"])
    assert result.exit_code == 0, result.output


def _gemm_rows(tmp_path: Path, h100_rows: int) -> Path:
    lines = GEMM_SAMPLE.read_text().splitlines()
    a100 = [r for r in lines[1:] if r.startswith("a100-80gb-sxm,")][:60]
    h100 = [r for r in lines[1:] if r.startswith("h100-sxm,")][:h100_rows]
    path = tmp_path / "gemm.csv"
    path.write_text("\n".join([lines[0], *a100, *h100]) + "\n")
    return path


def test_calibrate_warns_about_a_device_with_two_rows(tmp_path: Path) -> None:
    csv = _gemm_rows(tmp_path, 2)
    result = runner.invoke(app, ["calibrate", str(csv), "--holdout", "0", "--out", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    assert "warning: h100-sxm has 2 fit row(s) (2 in the file): too few to fit three parameters" in result.stderr
    assert "a100-80gb-sxm has" not in result.stderr  # 60 rows: no warning
    assert (tmp_path / "c.yaml").is_file()


def test_calibrate_with_three_rows_does_not_warn(tmp_path: Path) -> None:
    csv = _gemm_rows(tmp_path, 3)
    result = runner.invoke(app, ["calibrate", str(csv), "--holdout", "0", "--out", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def test_calibrate_refuses_a_device_with_every_row_held_back(tmp_path: Path) -> None:
    csv = _gemm_rows(tmp_path, 1)
    # Seed 0 holds back the last row at 90 % (rng(0).random(61)[60] < 0.9); the a100 keeps some of its 60.
    result = runner.invoke(app, ["calibrate", str(csv), "--holdout", "0.9", "--out", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2, result.output
    assert "h100-sxm: all 1 row(s) are held back" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.yaml").exists()
