"""Batch report: pages reference only files that exist, numbers match the plan, bad input writes nothing."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.optimizer.solve import SolveOutcome
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import FleetEntry, PoolAssignment
from hetplace.reports.plan_charts import device_utilisation, fleet_chart
from hetplace.reports.plan_facts import UTILISATION_DEFINITION
from hetplace.reports.report import ScenarioSection, unique_folders, write_report
from tests.conftest import FIXTURES, SMALL_FLEET, SMALL_OPTIMUM_USD_PER_YEAR, present, solved_plan, write_yaml

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
        assert len(refs) == 2 * (5 + 1 + 2)  # two scenarios × (5 plan charts + latency CDF + TCO-vs-price + Pareto)
        for ref in refs:
            assert not ref.startswith(("http:", "https:", "/")), ref  # opens offline, folder can move
            assert (out / ref).is_file(), ref
            assert (out / ref).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "Purchase schedule" in html and html.count("Baselines") == 2
    assert (out / "small-agent-2" / "fleet.png").is_file()  # both scenarios have id small-agent


def _md_tables(md: str) -> dict[str, list[dict[str, str]]]:
    """Every Markdown table, keyed by the heading above it, as rows of {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = ""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("|") and not lines[i - 1].startswith("|"):  # a header row
            head = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for r in lines[i + 2 :]:
                if not r.startswith("|"):
                    break
                rows.append(dict(zip(head, (c.strip() for c in r.strip("|").split("|")), strict=True)))
            tables[heading] = rows
    return tables


def _html_cells(page: str) -> list[list[str]]:
    """Every table row of an HTML page, header rows included, as lists of unescaped cells."""
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    return [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)] for r in rows]


def _num(cell: str) -> float:
    """'18,561' → 18561.0, '51%' → 0.51, '0.0%' → 0.0."""
    return float(cell.replace(",", "").rstrip("%")) / (100 if cell.endswith("%") else 1)


def test_report_numbers_come_from_the_plan(
    tmp_path: Path, small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    """Numbers read back out of the Markdown agree, as numbers, with quantities derived without the report code:
    the hand-derived optimum, per-request and per-token prices from the scenario's rates, the plan's pools."""
    outcome = small_plans["highs"]
    plan = solved_plan(outcome)
    pages = write_report([ScenarioSection(small_resolved, plan, outcome.status)], tmp_path)
    md = pages[1].read_text()
    head = re.search(
        r"optimal: ([\d,]+) USD/year, ([\d.]+) USD/request, ([\d.]+) USD per 1M tokens; "
        r"purchases up front ([\d,]+) USD",
        md,
    )
    assert head is not None, md
    total, per_request, per_m_tokens, purchases = (_num(g) for g in head.groups())
    assert abs(total - SMALL_OPTIMUM_USD_PER_YEAR) <= 0.5  # printed to the dollar
    # 3 requests/s all year; each request reads and writes 1,200 + 60 + 2,400 + 150 = 3,810 LLM tokens
    requests_per_year = 3 * 8760 * 3600
    assert abs(per_request - SMALL_OPTIMUM_USD_PER_YEAR / requests_per_year) <= 0.5e-5
    assert abs(per_m_tokens - SMALL_OPTIMUM_USD_PER_YEAR / (requests_per_year * 3810 / 1e6)) <= 0.5e-4
    assert purchases == 4 * 12_460  # four Xeon 6980P sockets at the catalog price

    tables = _md_tables(md)
    fleet = {r["device"]: r for r in tables["Fleet"]}
    counts = {d: tuple(int(r[c]) for c in ("owned used", "bought", "rented")) for d, r in fleet.items()}
    assert counts == SMALL_FLEET
    assert int(fleet["l4"]["owned idle"]) == 2 and int(fleet["xeon-6980p"]["owned idle"]) == 0  # 4 owned, 2 used
    util = device_utilisation(plan)
    for device, row in fleet.items():
        # the devices in use are the devices the pools occupy
        assert sum(counts[device]) == sum(a.devices for a in plan.pools if a.device == device), device
        shown = _num(row["utilisation"])
        assert abs(shown - util[device]) <= 0.005 and shown <= small_resolved.scenario.limits.max_utilisation

    (wf,) = tables["Workflows"]
    assert (_num(wf["req/s"]), _num(wf["SLA s"])) == (3, 8)
    assert abs(_num(wf["critical path s"]) - plan.workflows[0].critical_path_s) <= 0.005
    assert abs(_num(wf["slack s"]) - (8 - _num(wf["critical path s"]))) <= 0.01  # slack = SLA − critical path

    baselines = {r["single-accelerator fleet"]: r for r in tables["Baselines"]}
    assert set(baselines) == {b.device for b in plan.baselines} == {"l4", "a10g", "h100-sxm"}
    for b in (b for b in plan.baselines if b.total_usd_per_year is not None):
        shown_tco = _num(baselines[b.device]["TCO USD/year"])
        assert abs(shown_tco - present(b.total_usd_per_year)) <= 0.5
        # the saving, recomputed from the two printed totals (rounding moves it by < 0.01 %)
        saves = _num(baselines[b.device]["heterogeneous plan saves"])
        assert abs(saves - (1 - SMALL_OPTIMUM_USD_PER_YEAR / shown_tco)) <= 0.0006
    # 4 owned L4s cannot serve the LLM alone (CPUs serve only tools and retrieval in baselines: tests/test_baselines.py)
    assert (baselines["l4"]["status"], baselines["l4"]["TCO USD/year"]) == ("infeasible", "—")

    # the HTML page shows the same tables, cell for cell
    md_rows: list[list[str]] = []
    for rows in tables.values():
        md_rows += [list(rows[0])] + [list(r.values()) for r in rows]
    assert _html_cells(pages[0].read_text()) == md_rows


def test_device_utilisation_by_hand(small_plans: dict[str, SolveOutcome]) -> None:
    # l4: 3 owned in use (1 more idle), pools of 2 devices at 60 % and 1 device at 30 % load:
    #     (2 × 0.6 + 1 × 0.3) / 3 = 1.5 / 3 = 0.5 (the idle one does not count: 1.5 / 4 would be 0.375)
    # a10g: 2 rented, one pool of 2 devices (tp 2) at 45 %: 0.9 / 2 = 0.45
    # h100-sxm: 2 owned, none in use: no entry (not 0)
    plan = solved_plan(small_plans["highs"]).model_copy(
        update={
            "fleet": [
                FleetEntry(device="l4", owned_used=3, owned_idle=1, bought=0, rented=0, nodes=1, power_kw=0.2),
                FleetEntry(device="a10g", owned_used=0, owned_idle=0, bought=0, rented=2, nodes=1, power_kw=0.5),
                FleetEntry(device="h100-sxm", owned_used=0, owned_idle=2, bought=0, rented=0, nodes=0, power_kw=0.0),
            ],
            "pools": [_pool("l4", 2, 1, 0.6), _pool("l4", 1, 1, 0.3), _pool("a10g", 1, 2, 0.45)],
        }
    )
    assert device_utilisation(plan) == pytest.approx({"l4": 0.5, "a10g": 0.45}, rel=1e-12)


def _pool(device: str, replicas: int, tp: int, utilisation: float) -> PoolAssignment:
    return PoolAssignment(
        pool="m:decode",
        phase="decode",
        model="llama-3.1-8b",
        device=device,
        tensor_parallel=tp,
        replicas=replicas,
        devices=replicas * tp,
        throughput=100.0,
        throughput_unit="decode_tokens",
        demand=100.0 * utilisation,
        utilisation=utilisation,
    )


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


def _html_tables(page: str) -> dict[str, list[list[str]]]:
    """Every HTML table keyed by the heading (h2/h3) above it, as rows of unescaped cells (header row first)."""
    out: dict[str, list[list[str]]] = {}
    heading = ""
    for m in re.finditer(r"<h[23]>(.*?)</h[23]>|<table>(.*?)</table>", page, re.S):
        if m.group(1) is not None:
            heading = html.unescape(m.group(1))
        else:
            out[heading] = _html_cells(m.group(2))
    return out


def test_report_page_has_what_a_buyer_signs_off(
    tmp_path: Path, small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    """Date and version, solver settings, the scenario's inputs, pools, steps, the numeric TCO breakdown and the
    purchase list, with figures equal to the plan's (and to hand-computed ones)."""
    outcome = small_plans["highs"]
    plan = solved_plan(outcome)
    section = ScenarioSection(small_resolved, plan, outcome.status, settings={"gap target": "0.0001"})
    page = write_report([section], tmp_path)[0].read_text()
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC by hetplace \S+; 1 scenario\(s\)\.", page)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    # every table sits in its own sideways-scrolling box, so the page never scrolls sideways on a phone
    assert page.count("<table>") == page.count('<div class="scroll"><table>') >= 12
    assert ".scroll{overflow-x:auto" in page
    tables = _html_tables(page)
    assert "Summary across scenarios" not in tables  # one scenario: no summary

    solver = dict(tables["Solver"][1:])
    assert solver["gap target"] == "0.0001" and solver["backend"] == "highs" and solver["status"] == "optimal"
    assert solver["proven gap"] == f"{present(plan.solver.gap):.2%}"

    (demand,) = tables["Inputs: demand and SLAs"][1:]
    assert demand == ["small-agent", "3", "8", "service time", "5"]  # no percentile: the critical-path SLA
    prices = {(r[0], r[1]): r for r in tables["Inputs: hardware and prices"][1:]}
    assert set(prices) == {
        ("l4", "owned"),
        ("h100-sxm", "purchasable"),
        ("xeon-6980p", "purchasable"),
        ("a10g", "rentable"),
    }
    assert prices[("xeon-6980p", "purchasable")][2:4] == ["≤ 4", "12,460 USD"]
    # one Xeon 6980P bought: 12,460 / 4 + 0.5 kW × 0.7 × 1.3 × 8,760 × 0.08 + 0.5 kW × 184 × 12 = 5,573.65 USD/year
    assert _num(prices[("xeon-6980p", "purchasable")][4]) == round(
        12_460 / 4 + 0.5 * 0.7 * 1.3 * 8760 * 0.08 + 0.5 * 184 * 12
    )
    econ = dict(tables["Inputs: economics and limits"][1:])
    assert (econ["PUE"], econ["max utilisation"], econ["power cap kW"]) == ("1.3", "0.7", "100")

    tco = {r[0]: _num(r[1]) for r in tables["TCO breakdown"][1:]}
    t = plan.tco
    assert tco == {
        "capex (amortised)": round(t.capex_usd_per_year),
        "energy": round(t.energy_usd_per_year),
        "hosting": round(t.hosting_usd_per_year),
        "rental": round(t.rental_usd_per_year),
        "total": round(t.total_usd_per_year),
    }
    assert tco["capex (amortised)"] == 12_460 and tco["total"] == round(SMALL_OPTIMUM_USD_PER_YEAR)
    unit = dict(tables["Unit costs"][1:])
    assert abs(_num(unit["per request"]) - SMALL_OPTIMUM_USD_PER_YEAR / (3 * 8760 * 3600)) <= 0.5e-6

    _, *bought, total = tables["Purchases"]
    assert bought == [["xeon-6980p", "4", "2", "12,460", "49,840"]]  # 4 sockets, nodes of 2
    assert total[0] == "total" and _num(total[-1]) == t.purchases_usd == 49_840

    pools = tables["Pools and replicas"]
    assert len(pools) - 1 == len(plan.pools)
    assert sum(int(r[7]) for r in pools[1:]) == sum(a.devices for a in plan.pools)
    steps = {(r[0], r[1]): r for r in tables["Steps"][1:]}
    assert set(steps) == {(s.workflow, s.step) for s in plan.steps}
    answer = next(s for s in plan.steps if s.step == "answer")
    assert steps[("small-agent", "answer")][4] == f"{answer.latency_s:,.3f}"
    assert steps[("small-agent", "answer")][8] == "co-located" and steps[("small-agent", "answer")][9] == "yes"
    (wf,) = tables["Workflows"][1:]
    assert abs(_num(wf[5]) - t.usd_per_request) <= 0.5e-6 and wf[6] == "100.0%"  # one workflow carries it all
    assert "What binds the plan" in page and "availability: xeon-6980p: purchase limit reached" in page
    assert page.count(html.escape(UTILISATION_DEFINITION.split(";")[0])) == 1  # utilisation defined once


def test_report_summary_across_scenarios(
    tmp_path: Path, small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    outcome = small_plans["highs"]
    sections = [
        ScenarioSection(small_resolved, solved_plan(outcome), outcome.status, folder="a"),
        ScenarioSection(small_resolved, None, "infeasible", ["power cap 0.2 kW < minimum 0.9 kW"], folder="b"),
    ]
    page = write_report(sections, tmp_path)[0].read_text()
    head, *rows = _html_tables(page)["Summary across scenarios"]
    assert head[:3] == ["scenario", "status", "TCO USD/year"]
    assert rows[0][:3] == ["a", "optimal", f"{SMALL_OPTIMUM_USD_PER_YEAR:,.0f}"] and rows[0][5] == "6"  # 2 L4 + 4 CPUs
    assert rows[1][:3] == ["b", "infeasible", "—"]
    assert page.count(html.escape(UTILISATION_DEFINITION)) == 1  # defined once for the whole page


def test_fleet_chart_ticks_are_whole_devices(tmp_path: Path, small_plans: dict[str, SolveOutcome]) -> None:
    ticks = fleet_chart(solved_plan(small_plans["highs"]), tmp_path / "fleet.png")
    assert ticks and all(t == int(t) for t in ticks)
    assert (tmp_path / "fleet.png").read_bytes()[:4] == b"\x89PNG"
