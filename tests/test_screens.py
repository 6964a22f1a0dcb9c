"""Terminal screens: nothing is cut at 80 columns, and the solve screen's planner figures (USD/request per workflow,
what binds the plan, purchases) are right by hand."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from hetplace.catalogs.loader import load_catalog
from hetplace.costmodels.tco import SECONDS_PER_YEAR
from hetplace.optimizer.solve import SolveOutcome, solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import Plan, PoolAssignment
from hetplace.reports.fit_table import Col, FitTable
from hetplace.reports.plan_facts import (
    bindings,
    device_costs,
    device_utilisation,
    pool_costs,
    pool_sizing,
    purchases,
    workflow_costs,
)
from hetplace.reports.plan_screen import fleet_table, plan_screen
from tests.conftest import FIXTURES, REPO, SMALL_OPTIMUM_USD_PER_YEAR, solved_plan, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"


def _render(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def _run80(*args: str) -> str:
    """The CLI in a real 80×50 pseudo-terminal (what a user sees), its screen with colours stripped."""
    if sys.platform == "win32":
        pytest.skip("needs a POSIX pseudo-terminal")
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the tty's size decides
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "hetplace.cli", *args], stdout=slave, stderr=subprocess.DEVNULL, env=env, cwd=REPO
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) in (0, 1)
    text = b"".join(chunks).decode()
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r\n", "\n")


def _assert_fits_80(out: str) -> None:
    assert "…" not in out, out
    wide = [line for line in out.splitlines() if len(line) > 80]
    assert not wide, wide


# ── FitTable ─────────────────────────────────────────────────────────────────────────────────────────────────────

_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.:", min_size=1, max_size=30)
_NUMBER = st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda x: f"{x:,.2f}")
_WORDS = st.lists(_ID, min_size=1, max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(_ID, _NUMBER, _NUMBER, _WORDS), min_size=1, max_size=6),
    width=st.integers(min_value=40, max_value=200),
)
def test_fit_table_never_cuts_an_id_or_number(rows: list[tuple[str, str, str, str]], width: int) -> None:
    """At any width, every id and number appears whole on one line and nothing is cut with "…"; free text keeps
    every word whole; no line is wider than the terminal."""
    table = FitTable("t", [Col("id"), Col("a", True), Col("b", True), Col("note", wrap=True)], rows)
    out = _render(table, width)
    assert "…" not in out
    assert all(len(line) <= width for line in out.splitlines())
    lines = out.splitlines()
    for ident, a, b, note in rows:
        for token in (ident, a, b, *note.split()):
            assert any(token in line for line in lines), (token, out)


def test_fit_table_layouts_by_hand() -> None:
    rows = [["retrieval:small-agent.search", "1,671.6", "a long note that can wrap"]]
    table = FitTable("", [Col("pool"), Col("items/s", True), Col("note", wrap=True)], rows)
    # natural: 28 + 7 + 25 = 60 plus 2 dividers × 3 = 66 columns
    assert table.widths_for(66) == [28, 7, 25]
    # narrower: the note wraps down to its longest word ("note" header 4, "wrap" 4, "long" 4 → "note"… 4 wide)
    assert table.widths_for(50) == [28, 7, 50 - 6 - 28 - 7]
    # below ids + numbers + the longest word: the stacked layout
    assert table.widths_for(44) is None
    stacked = _render(table, 44)
    assert stacked.splitlines()[0] == "retrieval:small-agent.search"
    assert "items/s 1,671.6" in stacked


def test_fit_table_prints_square_brackets_literally() -> None:
    """A what-if selector path and a diagnosis in brackets are data, not rich markup."""
    spec = "hardware.purchasable[device=h100-sxm].capex_usd"
    cols = [Col(spec), Col("status", wrap=True)]
    table = FitTable("What [if]", cols, [["[1]", "x [b] y"]], caption="[c] note", label_heading=True)
    for width in (120, 50):  # a table, then the stacked layout
        out = _render(table, width)
        for text in (spec, "What [if]", "[1]", "x [b] y", "[c] note"):
            assert text in out, (text, out)


# ── the CLI at 80 columns ────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("kind", ["devices", "models"])
def test_catalog_list_fits_80_columns(kind: str) -> None:
    out = _run80("catalog", "list", kind)
    _assert_fits_80(out)
    catalog = load_catalog()
    ids = list(catalog.devices if kind == "devices" else catalog.models)
    for entry_id in ids:
        assert re.search(rf"(^|\s){re.escape(entry_id)}(\s|$)", out, re.M), entry_id
    if kind == "devices":
        for device in catalog.devices.values():
            if device.capex_usd is not None:
                assert f"{device.capex_usd:,.0f}" in out, device.id


def test_analyze_workflow_fits_80_columns() -> None:
    """Every (step, device) row of the chat workflow keeps its device id, latency and price whole."""
    out = _run80("analyze", "--workflow", "chat")
    _assert_fits_80(out)
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "hetplace.cli", "analyze", "--workflow", "chat", "--json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        ).stdout
    )
    for step in data["steps"]:
        for row in step["devices"]:
            assert re.search(rf"(^|\s){re.escape(row['device'])}(\s|$)", out, re.M), row["device"]
            if "latency_s" in row:
                latency = format(row["latency_s"], ",.3f")
                assert re.search(rf"(^|\s){re.escape(latency)}(\s|$)", out, re.M), row


def test_solve_screen_fits_80_columns() -> None:
    out = _run80("solve", str(SMALL), "--no-baselines")
    _assert_fits_80(out)
    for token in (
        "18,561 USD/year",
        "embed:bge-large-en-v1.5",
        "retrieval:small-agent.search",
        "llama-3.1-8b:decode",  # the CLI breaks the TCO tie toward speed: disaggregated, 6.45 s
        "xeon-6980p",
        "1,227.7",
        "0.000196",  # USD/request of the one workflow: 18,561.24 / (3 × 31,536,000)
        "49,840",  # purchases: 4 × 12,460
    ):
        assert token in out, token
    assert "What binds the plan" in out and "Assumptions:" in out
    assert "service times (no queueing, not percentiles)" in " ".join(out.split())


def test_whatif_table_fits_80_columns_with_a_diagnosis() -> None:
    out = _run80("whatif", str(SMALL), "--sweep", "limits.power_cap_kw=0.2,100", "--workers", "1")
    _assert_fits_80(out)
    flat = " ".join(out.split())
    assert "infeasible" in flat and "0.9 kW" in flat  # the diagnosis, wrapped but whole
    assert "18,561" in out


# ── the planner's figures ────────────────────────────────────────────────────────────────────────────────────────


def test_device_costs_add_up_to_the_tco_by_hand(
    small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    plan = solved_plan(small_plans["highs"])
    costs = device_costs(small_resolved, plan)
    # l4: 2 owned (sunk), 72 W each: energy 0.072 × 0.7 × 1.3 × 8760 × 0.08 + hosting 0.072 × 184 × 12, × 2
    l4 = 2 * (0.072 * 0.7 * 1.3 * 8760 * 0.08 + 0.072 * 184 * 12)
    assert costs["l4"] == pytest.approx(l4, rel=1e-9)
    assert costs["xeon-6980p"] == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR - l4, rel=1e-9)
    (p,) = purchases(small_resolved, plan)
    assert (p.device, p.count, p.unit_usd, p.total_usd, p.nodes) == ("xeon-6980p", 4, 12_460, 49_840, 2)
    assert p.total_usd == plan.tco.purchases_usd


def test_identical_workflows_share_their_pools_by_rate(tmp_path: Path) -> None:
    """Two copies of the small workflow at 3 and 6 req/s share every pool 1 : 2 — except retrieval, whose index is
    each workflow's own pool — so each carries a third (two thirds) of the shared cost plus its own index."""
    wf = yaml.safe_load((SMALL.parent / "small-agent-workflow.yaml").read_text())
    write_yaml(tmp_path / "a.yaml", wf)
    write_yaml(tmp_path / "b.yaml", {**wf, "id": "small-agent-b", "arrival_rate_rps": 6})
    data = yaml.safe_load(SMALL.read_text())
    data["workflows"] = [{"path": "a.yaml"}, {"path": "b.yaml"}]
    data["hardware"]["purchasable"][1]["max_count"] = 16  # room for three times the tools
    resolved = load_scenario(write_yaml(tmp_path / "s.yaml", data))
    plan = solved_plan(solve_scenario(resolved, "highs", baselines=False))
    costs = {c.workflow: c for c in workflow_costs(resolved, plan)}
    total = plan.tco.total_usd_per_year
    assert sum(c.usd_per_year for c in costs.values()) == pytest.approx(total, rel=1e-12)
    pools = pool_costs(resolved, plan)
    assert sum(pools.values()) == pytest.approx(total, rel=1e-12)
    own_a, own_b = pools["retrieval:small-agent.search"], pools["retrieval:small-agent-b.search"]
    shared = total - own_a - own_b
    assert costs["small-agent"].usd_per_year == pytest.approx(shared / 3 + own_a, rel=1e-9)
    assert costs["small-agent-b"].usd_per_year == pytest.approx(2 * shared / 3 + own_b, rel=1e-9)
    a = costs["small-agent"]
    assert a.usd_per_request == pytest.approx(a.usd_per_year / (3 * SECONDS_PER_YEAR), rel=1e-12)
    assert a.share == pytest.approx(a.usd_per_year / total, rel=1e-12)


def _pool(pool: str, replicas: int, per_replica: float, demand: float) -> PoolAssignment:
    return PoolAssignment(
        pool=pool,
        phase="decode",
        model="llama-3.1-8b",
        device="l4",
        replicas=replicas,
        devices=replicas,
        throughput=per_replica * replicas,
        throughput_unit="decode_tokens",
        demand=demand,
        utilisation=demand / (per_replica * replicas),
    )


def test_pool_sizing_by_hand(small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]) -> None:
    """Cap 0.7. a: 3 × 100/s carrying 150 — two replicas give 140 < 150, so load sized it. b: 3 × 100/s carrying
    130 ≤ 140 — one replica could go, so it is not. c: one replica at 68 % ≥ 95 % of the cap. d: one at 50 %."""
    plan = solved_plan(small_plans["highs"]).model_copy(
        update={
            "pools": [
                _pool("a", 3, 100, 150),
                _pool("b", 3, 100, 130),
                _pool("c", 1, 100, 68),
                _pool("d", 1, 100, 50),
            ]
        }
    )
    sizing = {s.pool: s for s in pool_sizing(small_resolved, plan)}
    assert {p: s.at_cap for p, s in sizing.items()} == {"a": True, "b": False, "c": True, "d": False}
    assert sizing["a"].utilisation == pytest.approx(0.5) and sizing["b"].replicas == 3


def test_bindings_of_the_small_plan(small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]) -> None:
    plan = solved_plan(small_plans["highs"])
    b = bindings(small_resolved, plan)
    # slack 8 − 7.92 s is 1 % of the SLA: within the 2 % reported as binding
    assert len(b.sla) == 1 and "binds" in b.sla[0] and "(1.0%)" in b.sla[0]
    assert b.availability == ["xeon-6980p: purchase limit reached (4 of max_count 4)"]
    assert b.limits == ["power cap: 2.0 of 100.0 kW (2%) — not binding"]  # 2.144 kW × 0.7 × 1.3 = 1.95 kW
    # an H100 bought: 27,000 / 4 + 0.7 kW × 0.7 × 1.3 × 8,760 h × 0.08 + 0.7 kW × 184 × 12 = 8,742.40 USD/year;
    # the smallest purchase is a node of 8
    h100 = 27_000 / 4 + 0.7 * 0.7 * 1.3 * 8760 * 0.08 + 0.7 * 184 * 12
    (line,) = [x for x in b.not_bought if x.startswith("h100-sxm")]
    assert f"{h100:,.0f} USD/year per device" in line and f"{8 * h100:,.0f} USD/year" in line
    assert "alone costs 79,012 USD/year" in line  # the H100 baseline of this plan


def test_a_device_capped_below_one_node_can_never_be_bought(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL.read_text())
    data["workflows"][0]["path"] = str(SMALL.parent / "small-agent-workflow.yaml")
    data["hardware"]["purchasable"][0]["max_count"] = 4  # h100-sxm: nodes of 8
    resolved = load_scenario(write_yaml(tmp_path / "s.yaml", data))
    plan = solved_plan(solve_scenario(resolved, "highs", baselines=False))
    (line,) = [x for x in bindings(resolved, plan).not_bought if x.startswith("h100-sxm")]
    assert "can never be bought: max_count 4 < one node of 8" in line


def test_terminal_and_report_utilisation_agree(
    small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    plan: Plan = solved_plan(small_plans["highs"])
    util = device_utilisation(plan)
    out = _render(fleet_table(plan), 160)
    for device, u in util.items():
        row = next(line for line in out.splitlines() if line.startswith(device))
        assert row.rstrip().endswith(f"{u:.0%}"), row
    # the xeon sockets: 1 + 2 devices at 68 % and 1 tool device at 0 % over 4 in use
    xeon = [a for a in plan.pools if a.device == "xeon-6980p"]
    assert util["xeon-6980p"] == pytest.approx(sum(a.devices * a.utilisation for a in xeon) / 4)


def test_plan_screen_renders_a_robust_plan(small_resolved: ResolvedScenario) -> None:
    """The robust parts of the screen (band, nominal and slow-end latencies) render at 80 columns too."""
    resolved = ResolvedScenario(
        small_resolved.scenario.model_copy(update={"robust": True}),
        small_resolved.workflows,
        small_resolved.catalog,
        small_resolved.source,
        small_resolved.base_dir,
    )
    plan = solved_plan(solve_scenario(resolved, "highs", baselines=False))
    out = _render(plan_screen(resolved, plan, "optimal"), 80)
    _assert_fits_80(out)
    assert "slow end" in out and "nominal s" in out


def test_owned_types_not_used_at_all_are_named_with_their_resale(
    small_resolved: ResolvedScenario, small_plans: dict[str, SolveOutcome]
) -> None:
    """The plan's fleet lists only types in use; the screen and the report name owned types left entirely idle
    (the "keep or sell" answer), with the resale value the scenario states."""
    from hetplace.reports.plan_facts import idle_owned_line

    plan = solved_plan(small_plans["highs"])
    assert idle_owned_line(small_resolved, plan) is None  # its owned L4s are in use
    no_l4 = plan.model_copy(update={"fleet": [e for e in plan.fleet if e.device != "l4"]})
    assert idle_owned_line(small_resolved, no_l4) == "Owned and not used at all (candidates to sell or retire): 4 l4."
    scenario = small_resolved.scenario.model_copy(deep=True)
    scenario.hardware.owned[0].residual_value_usd = 2000.0
    priced = replace(small_resolved, scenario=scenario)
    assert idle_owned_line(priced, no_l4) == (
        "Owned and not used at all (candidates to sell or retire): 4 l4 (resale 2,000 each, 8,000 USD)."
    )
