"""`report` simulates each scenario's plan (issue 16, part 1): the Simulation section's numbers are those of an
independent `simulate_plan` run with the same seed and duration, attainment is a share, the latency-CDF chart is
simulate's own PNG beside the pages, infeasible scenarios get no section, and `--no-simulate` leaves it out."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.solve import SolveOutcome
from hetplace.problems.loader import ResolvedScenario
from hetplace.simulate.run import SimOptions, simulate_plan
from tests.conftest import FIXTURES, SMALL, read_yaml, solved_plan, write_yaml
from tests.test_report import _html_tables, _md_tables, _num

runner = CliRunner()
DURATION_S = 300.0


def _cell_s(cell: str) -> float:
    """A latency cell back to seconds ('∞' = never finished)."""
    return math.inf if cell == "∞" else _num(cell)


def _infeasible_copy(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL)
    data["id"] = "small-tight"
    data["limits"]["power_cap_kw"] = 0.2  # the small plan draws about 2 kW
    return write_yaml(tmp_path / "tight.yaml", data)


def test_simulation_section_equals_an_independent_simulation(
    tmp_path: Path, small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    out = tmp_path / "report"
    tight = _infeasible_copy(tmp_path)
    res = runner.invoke(
        app,
        ["report", str(SMALL), str(tight), "--out", str(out), "--no-baselines", "--simulate-s", f"{DURATION_S:g}"],
    )
    assert res.exit_code == 1, res.output  # the infeasible copy; the report is written anyway
    md = (out / "report.md").read_text()
    assert md.count("### Simulation\n") == 1  # the infeasible scenario has no plan, so no simulation
    assert not (out / "small-tight" / "simulation").exists()
    assert "Poisson arrivals" in md and "seed 0" in md and f"{DURATION_S:g} s of" in md
    assert "critical paths of service times" in md

    from hetplace.optimizer.solve import solve_scenario

    plan = solved_plan(solve_scenario(small_resolved, "highs", baselines=False))  # as `report` solves: tie-broken
    sim = simulate_plan(small_resolved, plan, SimOptions(DURATION_S, seed=0))
    tables = _md_tables(md)
    (row,) = tables["Simulation"]
    (wf,) = sim.workflows
    assert row["workflow"] == wf.workflow and int(row["requests"].replace(",", "")) == wf.requests > 0
    assert int(row["unfinished"].replace(",", "")) == wf.unfinished
    for col, value in (("mean s", wf.mean_s), ("p50 s", wf.p50_s), ("p90 s", wf.p90_s), ("p99 s", wf.p99_s)):
        assert abs(_cell_s(row[col]) - value) <= 0.005, col  # printed to the hundredth of a second
    assert _num(row["SLA s"]) == 8  # the small scenario's SLA
    attained = _num(row["attainment"])
    assert 0 <= attained <= 1 and abs(attained - wf.attainment) <= 0.0005
    assert abs(_num(row["plan critical path s"]) - plan.workflows[0].critical_path_s) <= 0.005

    pools = {r["pool"]: r for r in tables["Simulation: pools"]}
    assert set(pools) == {p.pool for p in sim.pools} == {a.pool for a in plan.pools}
    for p in sim.pools:
        shown = pools[p.pool]
        assert (shown["kind"], int(shown["replicas"])) == (p.kind, p.replicas)
        assert abs(_num(shown["busy"]) - p.utilisation) <= 0.0005
        assert abs(_num(shown["load"]) - p.load) <= 0.0005
        assert abs(_cell_s(shown["p99 wait s"]) - p.wait_p99_s) <= 0.005

    # the HTML page shows the same two tables, and the CDF chart is simulate's PNG beside the pages
    html_tables = _html_tables((out / "report.html").read_text())
    for heading in ("Simulation", "Simulation: pools"):
        rows = tables[heading]
        assert html_tables[heading] == [list(rows[0])] + [list(r.values()) for r in rows]
    cdf = out / "small-agent" / "simulation" / "latency_cdf.png"
    assert cdf.read_bytes()[:4] == b"\x89PNG"
    assert "![Simulated latency CDF](small-agent/simulation/latency_cdf.png)" in md
    assert (out / "small-agent" / "simulation" / "simulation.json").is_file()  # simulate's results, for a reader


def test_no_simulate_leaves_the_section_out(tmp_path: Path) -> None:
    out = tmp_path / "report"
    res = runner.invoke(app, ["report", str(SMALL), "--out", str(out), "--no-baselines", "--no-simulate"])
    assert res.exit_code == 0, res.output
    for page in ("report.md", "report.html"):
        text = (out / page).read_text()
        assert "Simulation" not in text and "latency_cdf" not in text, page
    assert not (out / "small-agent" / "simulation").exists()


def test_simulate_s_must_be_positive(tmp_path: Path) -> None:
    out = tmp_path / "report"
    res = runner.invoke(app, ["report", str(SMALL), "--out", str(out), "--simulate-s", "0"])
    assert res.exit_code == 2
    assert not out.exists()
