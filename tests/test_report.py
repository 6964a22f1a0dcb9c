"""Batch report: pages reference only files that exist, numbers match the plan, bad input writes nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.reports.plan_charts import device_utilisation
from hetplace.reports.report import ScenarioSection, unique_folders, write_report
from tests.conftest import FIXTURES, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
runner = CliRunner()


def _referenced(page: Path) -> list[str]:
    text = page.read_text()
    if page.suffix == ".html":
        return re.findall(r'(?:src|href)="([^"]+)"', text)
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_pages_reference_only_existing_files(tmp_path: Path) -> None:
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text())
    data["horizon"] = {"periods": 2, "demand_growth_per_period": 0.5}
    with_horizon = write_yaml(tmp_path / "grow.yaml", data)
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        ["report", str(SMALL), str(with_horizon), "--out", str(out), "--sweep", "price:a10g=0.5,1", "--workers", "1"],
    )
    assert res.exit_code == 0, res.output
    for page in (out / "report.html", out / "report.md"):
        refs = _referenced(page)
        assert len(refs) == 2 * (5 + 2)  # two scenarios × (5 plan charts + TCO-vs-price + Pareto)
        for ref in refs:
            assert not ref.startswith(("http:", "https:", "/")), ref  # opens offline, folder can move
            assert (out / ref).is_file(), ref
            assert (out / ref).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "Purchase schedule" in html and html.count("Baselines") == 2
    assert (out / "small-agent-2" / "fleet.png").is_file()  # both scenarios have id small-agent


def test_report_numbers_come_from_the_plan(tmp_path: Path) -> None:
    resolved = load_scenario(SMALL)
    outcome = solve_scenario(resolved, baselines=False)
    pages = write_report([ScenarioSection(resolved, outcome.plan, outcome.status)], tmp_path)
    md = pages[1].read_text()
    assert f"{outcome.plan.tco.total_usd_per_year:,.0f} USD/year" in md
    for e in outcome.plan.fleet:
        util = device_utilisation(outcome.plan)[e.device]
        assert f"| {e.device} | {e.owned_used} | {e.owned_idle} | {e.bought} | {e.rented} | {util:.0%} |" in md


def test_device_utilisation_by_hand() -> None:
    resolved = load_scenario(SMALL)
    plan = solve_scenario(resolved, baselines=False).plan
    for device, util in device_utilisation(plan).items():
        pools = [a for a in plan.pools if a.device == device]
        entry = next(e for e in plan.fleet if e.device == device)
        expected = sum(a.devices * a.utilisation for a in pools) / (entry.owned_used + entry.bought + entry.rented)
        assert abs(util - expected) < 1e-12
        assert 0 <= util <= 1


def test_infeasible_scenarios_get_their_diagnosis_in_the_report(tmp_path: Path) -> None:
    resolved = load_scenario(SMALL)
    pages = write_report(
        [ScenarioSection(resolved, None, "infeasible", ["power cap 0.2 kW < minimum 0.9 kW"])], tmp_path
    )
    assert "Cause: power cap 0.2 kW &lt; minimum 0.9 kW" in pages[0].read_text()


def test_unique_folders() -> None:
    assert unique_folders(["a", "b", "a", "a"]) == ["a", "b", "a-2", "a-3"]


def test_report_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report"
    res = runner.invoke(app, ["report", str(SMALL), str(tmp_path / "missing.yaml"), "--out", str(out)])
    assert res.exit_code == 2
    assert not out.exists()
