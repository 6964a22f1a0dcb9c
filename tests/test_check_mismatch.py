"""`hetplace check` with a plan that does not belong to the scenario (input error, exit 2, never a traceback), and
every figure a plan reports held to its recomputation (issue 15, item 1).

The small plan's figures are derived by hand in tests/conftest.py (SMALL_OPTIMUM_USD_PER_YEAR): capex 12,460,
energy 1,367.288832, hosting 4,733.952 USD/year, 4 Xeon sockets bought at 12,460 USD; 3 req/s; LLM tokens per
request (1,200 + 60) + (2,400 + 150) = 3,810; the tool pool needs 3 × 0.2 = 0.6 CPU-s/s of a 128-core socket.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.solve import formulate
from hetplace.problems.loader import ResolvedScenario, default_scenario_path, load_scenario
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, SMALL, SMALL_OPTIMUM_USD_PER_YEAR, read_yaml, solved_plan, write_yaml

runner = CliRunner()
SECONDS_PER_YEAR = 8760 * 3600
SMALL_REQUESTS_PER_YEAR = 3 * SECONDS_PER_YEAR
SMALL_TOKENS_PER_YEAR = 3 * 3810 * SECONDS_PER_YEAR

Change = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def small_plan_data(small_plans: dict[str, Any]) -> dict[str, Any]:
    return solved_plan(small_plans["highs"]).model_dump(mode="json")


def _tampered(data: dict[str, Any], change: Change) -> Plan:
    out = copy.deepcopy(data)
    change(out)
    return Plan.model_validate(out)


def _write_plan(tmp_path: Path, data: dict[str, Any], change: Change | None = None) -> Path:
    out = copy.deepcopy(data)
    if change is not None:
        change(out)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(out))
    return path


def _by(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    return next(x for x in items if all(x[k] == v for k, v in match.items()))


def _small_copy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The small scenario (same id) with its hardware changed, beside a copy of its workflow file."""
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL)
    change(data)
    return write_yaml(tmp_path / "scenario.yaml", data)


# ---- Plans that do not belong to the scenario: exit 2 naming what differs ----------------------------------


def test_a_plan_of_another_scenario_is_an_input_error(tmp_path: Path, small_plan_data: dict[str, Any]) -> None:
    plan = _write_plan(tmp_path, small_plan_data)
    result = runner.invoke(app, ["check", str(default_scenario_path()), str(plan)])
    assert result.exit_code == 2, result.output
    assert "scenario: the plan was made for scenario 'small-agent', this scenario is 'default'" in result.stderr
    assert "the scenario has no workflow 'small-agent'" in result.stderr
    assert "Traceback" not in result.output


def test_a_scenario_without_a_device_the_plan_uses(tmp_path: Path, small_plan_data: dict[str, Any]) -> None:
    def no_xeon(d: dict[str, Any]) -> None:
        d["hardware"]["purchasable"] = [{"device": "h100-sxm", "max_count": 16}, {"device": "epyc-9654"}]

    scenario = _small_copy(tmp_path, no_xeon)
    result = runner.invoke(app, ["check", str(scenario), str(_write_plan(tmp_path, small_plan_data))])
    assert result.exit_code == 2, result.output
    xeon_fleet = next(i for i, e in enumerate(small_plan_data["fleet"]) if e["device"] == "xeon-6980p")
    assert (
        f"fleet[{xeon_fleet}].device: device 'xeon-6980p' is not in the scenario's hardware (owned, purchasable, "
        "rentable)" in result.stderr
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["pools"][0].update(device="h900"), "pools[0].device: unknown device 'h900' (not in the catalog)"),
        (lambda d: d["fleet"][0].update(device="h900"), "fleet[0].device: unknown device 'h900' (not in the catalog)"),
        (
            lambda d: _by(d["pools"], model="llama-3.1-8b").update(model="llama-3.1-70b"),
            "serves model 'llama-3.1-8b', the plan says llama-3.1-70b",
        ),
        (
            lambda d: _by(d["pools"], pool="tool:cpu").update(pool="llama-3.1-70b:decode"),
            "the scenario has no pool 'llama-3.1-70b:decode'",
        ),
        (lambda d: d["steps"][0].update(step="ghost"), "steps[0].step: workflow 'small-agent' has no step 'ghost'"),
        (
            lambda d: d.update(scenario="other"),
            "the plan was made for scenario 'other', this scenario is 'small-agent'",
        ),
    ],
)
def test_what_the_scenario_does_not_have_is_named(
    tmp_path: Path, small_plan_data: dict[str, Any], change: Change, expected: str
) -> None:
    result = runner.invoke(app, ["check", str(SMALL), str(_write_plan(tmp_path, small_plan_data, change))])
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    # The library call raises the same input error instead of a KeyError or StopIteration.
    with pytest.raises(InputError) as err:
        check_plan(load_scenario(SMALL), _tampered(small_plan_data, change))
    assert expected in str(err.value)


# ---- Every reported figure is recomputed: each tampered field is caught -----------------------------------

TAMPERED: list[tuple[str, Change, list[str]]] = [
    (
        "capex halved",
        lambda d: d["tco"].update(capex_usd_per_year=6230.0),
        ["tco.capex_usd_per_year: plan reports 6230, recomputed 12460"],
    ),
    (
        "energy zero",
        lambda d: d["tco"].update(energy_usd_per_year=0.0),
        ["tco.energy_usd_per_year: plan reports 0, recomputed 1367.29"],
    ),
    (
        "hosting doubled",
        lambda d: d["tco"].update(hosting_usd_per_year=2 * 4733.952),
        ["tco.hosting_usd_per_year: plan reports 9467.9, recomputed 4733.95"],
    ),
    (
        "rental invented",
        lambda d: d["tco"].update(rental_usd_per_year=100.0),
        ["tco.rental_usd_per_year: plan reports 100, recomputed 0"],
    ),
    (
        "usd per request halved",
        lambda d: d["tco"].update(usd_per_request=SMALL_OPTIMUM_USD_PER_YEAR / SMALL_REQUESTS_PER_YEAR / 2),
        ["tco.usd_per_request: plan reports 9.80955e-05, recomputed 0.000196191"],
    ),
    (
        "usd per million tokens doubled",
        lambda d: d["tco"].update(usd_per_million_tokens=2 * SMALL_OPTIMUM_USD_PER_YEAR / SMALL_TOKENS_PER_YEAR * 1e6),
        ["tco.usd_per_million_tokens: plan reports 0.102987, recomputed 0.0514937"],
    ),
    (
        "purchases halved",
        lambda d: d["tco"].update(purchases_usd=2 * 12_460.0),
        ["tco.purchases_usd: plan reports 24920, recomputed 49840"],
    ),
    (
        "nodes",
        lambda d: _by(d["fleet"], device="xeon-6980p").update(nodes=3),
        ["fleet xeon-6980p: plan reports 3 nodes, recomputed 2"],
    ),
    (
        "power",  # 2 L4s × 72 W × 0.7 × 1.3
        lambda d: _by(d["fleet"], device="l4").update(power_kw=1.0),
        ["fleet l4: plan reports 1 kW, recomputed 0.13104"],
    ),
    (
        "utilisation",  # 0.6 CPU-s/s on 128 cores
        lambda d: _by(d["pools"], pool="tool:cpu").update(utilisation=0.5),
        ["pool tool:cpu on xeon-6980p tp=1 batch=1: plan reports utilisation 0.5, recomputed 0.0046875"],
    ),
    (
        "demand",
        lambda d: _by(d["pools"], pool="tool:cpu").update(demand=1.2),
        ["pool tool:cpu on xeon-6980p tp=1 batch=1: plan reports demand 1.2/s, recomputed 0.6"],
    ),
    (
        "throughput",
        lambda d: _by(d["pools"], pool="tool:cpu").update(throughput=256.0),
        ["pool tool:cpu on xeon-6980p tp=1 batch=1: plan reports throughput 256/s, recomputed 128"],
    ),
    (
        "devices",
        lambda d: _by(d["pools"], pool="tool:cpu").update(devices=2),
        ["pool tool:cpu on xeon-6980p tp=1 batch=1: plan reports 2 devices, replicas × tp = 1"],
    ),
    (
        "step latency",  # the tool call's fixed 0.8 s
        lambda d: _by(d["steps"], step="lookup").update(latency_s=0.4),
        ["step small-agent.lookup: plan reports latency 0.4 s, recomputed 0.8"],
    ),
    (
        "SLA",
        lambda d: d["workflows"][0].update(sla_s=16.0),
        ["workflow small-agent: plan reports SLA 16 s, scenario 8"],
    ),
    (
        "arrival rate",
        lambda d: d["workflows"][0].update(arrival_rate_rps=6.0),
        ["workflow small-agent: plan reports 6 req/s, scenario 3"],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in TAMPERED], ids=[n for n, _, _ in TAMPERED])
def test_each_tampered_figure_is_a_violation(
    small_resolved: ResolvedScenario, small_plan_data: dict[str, Any], change: Change, expected: list[str]
) -> None:
    assert check_plan(small_resolved, _tampered(small_plan_data, change)) == expected


def test_tampered_timing_figures(small_resolved: ResolvedScenario, small_plan_data: dict[str, Any]) -> None:
    """Start, slack and the mean critical path, against the plan's own (checker-recomputed) critical path."""
    path = small_plan_data["workflows"][0]["critical_path_s"]
    plan_latency = _by(small_plan_data["steps"], step="plan")["latency_s"]

    def change(d: dict[str, Any]) -> None:
        _by(d["steps"], step="lookup").update(start_s=0.0)  # it waits for the plan step
        d["workflows"][0].update(slack_s=3.0)
        d.update(mean_critical_path_s=1.0)

    assert check_plan(small_resolved, _tampered(small_plan_data, change)) == [
        f"step small-agent.lookup: plan reports start 0 s, recomputed {plan_latency:.6g}",
        f"workflow small-agent: plan reports slack 3 s, recomputed {8 - path:.6g}",
        f"mean_critical_path_s: plan reports 1 s, recomputed {path:.6g}",
    ]


def test_the_issue_case_exits_1(tmp_path: Path, small_plan_data: dict[str, Any]) -> None:
    """Halved $/request, halved capex/yr, zero energy and halved purchases with the total untouched: exit 1."""

    def change(d: dict[str, Any]) -> None:
        t = d["tco"]
        t.update(
            usd_per_request=t["usd_per_request"] / 2,
            capex_usd_per_year=t["capex_usd_per_year"] / 2,
            energy_usd_per_year=0.0,
            purchases_usd=t["purchases_usd"] / 2,
        )

    result = runner.invoke(app, ["check", str(SMALL), str(_write_plan(tmp_path, small_plan_data, change))])
    assert result.exit_code == 1, result.output
    for field in ("capex_usd_per_year", "energy_usd_per_year", "usd_per_request", "purchases_usd"):
        assert f"violation: tco.{field}" in result.stderr
    assert "tco: plan reports" not in result.stderr  # the total is untouched


def test_untampered_plans_pass(tmp_path: Path, small_plan_data: dict[str, Any]) -> None:
    result = runner.invoke(app, ["check", str(SMALL), str(_write_plan(tmp_path, small_plan_data))])
    assert result.exit_code == 0, result.output


def test_the_default_scenarios_budget_plan_passes_and_its_tampering_is_caught() -> None:
    """The default scenario's budget-heuristic plan (every pool kind, owned, bought and CPU devices, without a long
    solve) passes every recomputed figure; halving its $/1M tokens is caught."""
    from hetplace.optimizer.assemble import assemble_plan
    from hetplace.optimizer.backends import solve

    resolved = load_scenario(default_scenario_path())
    f = formulate(resolved)
    start = budget_plan(f)
    assert start is not None
    fixed = copy.deepcopy(f.model)
    for i, v in start.items():
        fixed.vars[i].lb = fixed.vars[i].ub = v
    plan = assemble_plan(f, solve(fixed, "highs"), resolved.scenario.id)
    assert check_plan(resolved, plan) == []
    data = plan.model_dump(mode="json")
    data["tco"]["usd_per_million_tokens"] /= 2
    assert [v for v in check_plan(resolved, Plan.model_validate(data)) if v.startswith("tco.")] == [
        f"tco.usd_per_million_tokens: plan reports {plan.tco.usd_per_million_tokens / 2:.6g}, recomputed "
        f"{plan.tco.usd_per_million_tokens:.6g}"
    ]
