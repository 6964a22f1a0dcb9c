"""Robust planning (`solve --robust`, scenario `robust: true`) and the scenario's serving `engine`.

Hand-checked on the small scenario (tests/fixtures/scenarios/small-agent.yaml, SLA 8 s, 3 req/s): its nominal
optimum serves both LLM calls co-located on Xeon 6980P sockets with a critical path plan → lookup → answer of
1.9576 + 0.8 + 5.1597 = 7.917 s. At the default band of 25 % the two LLM steps take 1.25× as long and the tool
call does not (it is not a serving estimate): 1.25 × (1.9576 + 5.1597) + 0.8 = 9.697 s > 8 s, so the robust plan
must leave the co-located route. Disaggregated serving on the same sockets meets it (the KV transfer is a NIC bound
and is not scaled), so the robust optimum keeps the hand-derived fleet and its TCO, 18,561.24 USD/yr.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplace.catalogs.calibration_schema import DEFAULT_SERVING_ERROR_BAND
from hetplace.catalogs.loader import load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.costmodels.engine_terms import EngineArrays, ServingParams, serving_params
from hetplace.costmodels.llm_perf import evaluate_menu, evaluate_pass, phase_shape
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.roofline import DeviceArrays
from hetplace.optimizer.assemble import assemble_plan
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.pools import build_pools
from hetplace.optimizer.solve import ROBUST_NOTE, formulate, solve_model, solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import Plan, RobustReport
from tests.conftest import FIXTURES, SMALL_FLEET, SMALL_OPTIMUM_USD_PER_YEAR, read_yaml, solved_plan, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
OFFERED = ("a10g", "h100-sxm", "l4", "xeon-6980p")
runner = CliRunner()


def small_variant(tmp_path: Path, calibration: dict[str, Any] | None = None, **fields: Any) -> Path:
    """The small scenario with extra top-level fields (and a calibration file beside it), in tmp_path."""
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL) | fields
    if calibration is not None:
        write_yaml(tmp_path / "cal.yaml", calibration)
        data["calibration"] = "cal.yaml"
    return write_yaml(tmp_path / "small.yaml", data)


def calibration(bands: dict[str, float], serving: dict[str, Any] | None = None) -> dict[str, Any]:
    """A calibration file with no GEMM factors (devices keep their catalog priors), only serving data."""
    return {
        "measurements": "test",
        "method": "hand-set",
        "held_back_fraction": 0.0,
        "seed": 0,
        "devices": {},
        "serving": serving or {},
        "serving_error_band": bands,
    }


def solve(resolved: ResolvedScenario, robust: bool | None = None) -> Plan:
    if robust is not None:
        resolved.scenario = resolved.scenario.model_copy(update={"robust": robust})
    return solved_plan(solve_scenario(resolved, "highs", baselines=False))


def fleet_of(plan: Plan) -> dict[str, tuple[int, int, int]]:
    return {e.device: (e.owned_used, e.bought, e.rented) for e in plan.fleet}


@pytest.fixture(scope="module")
def nominal() -> Plan:
    return solve(load_scenario(SMALL))


@pytest.fixture(scope="module")
def colocated() -> Plan:
    """The small scenario's other optimal plan (co-located, 7.92 s): the min-TCO solve before ties are broken
    toward speed (solve_scenario returns the faster, disaggregated one at the same TCO)."""
    resolved = load_scenario(SMALL)
    f = formulate(resolved)
    return assemble_plan(f, solve_model(resolved, f, "highs", None, 1e-4, 1), resolved.scenario.id)


@pytest.fixture(scope="module")
def robust() -> Plan:
    return solve(load_scenario(SMALL), robust=True)


# ---- The hand-checked flip ---------------------------------------------------------------------------------


def test_nominal_small_plan_is_colocated_and_its_slow_end_breaks_the_sla(colocated: Plan, nominal: Plan) -> None:
    # min_tco breaks the tie toward the faster, disaggregated plan at the same TCO
    assert {a.phase for a in nominal.pools if a.model == "llama-3.1-8b"} == {"prefill", "decode"}
    assert nominal.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-12)
    assert nominal.workflows[0].critical_path_s == pytest.approx(6.453, abs=1e-3)
    nominal = colocated
    assert nominal.robust is None and nominal.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR)
    assert {a.phase for a in nominal.pools if a.model == "llama-3.1-8b"} == {"colocated"}
    lat = {s.step: s.latency_s for s in nominal.steps}
    assert lat["plan"] + lat["lookup"] + lat["answer"] == pytest.approx(nominal.workflows[0].critical_path_s)
    assert nominal.workflows[0].critical_path_s == pytest.approx(7.917, abs=1e-3)  # nominal: meets 8 s
    slow_end = (1 + DEFAULT_SERVING_ERROR_BAND) * (lat["plan"] + lat["answer"]) + lat["lookup"]
    assert slow_end == pytest.approx(9.697, abs=1e-3) and slow_end > 8.0


def test_robust_small_plan_leaves_the_colocated_route_at_the_same_tco(robust: Plan, nominal: Plan) -> None:
    small = load_scenario(SMALL)
    assert robust.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR, rel=1e-12)
    assert robust.tco.total_usd_per_year >= nominal.tco.total_usd_per_year
    assert fleet_of(robust) == SMALL_FLEET
    assert {a.phase for a in robust.pools if a.model == "llama-3.1-8b"} == {"prefill", "decode"}
    assert robust.robust is not None and robust.robust.error_band == dict.fromkeys(OFFERED, 0.25)
    steps = {s.step: s for s in robust.steps}
    for name in ("plan", "answer"):  # LLM steps: compute × 1.25, the KV transfer as it was
        s = steps[name]
        assert s.latency_nominal_s is not None
        assert s.latency_s == pytest.approx((s.latency_nominal_s - s.transfer_s) * 1.25 + s.transfer_s, rel=1e-12)
    for name in ("lookup", "embed", "search"):  # not the serving estimate: unchanged
        assert steps[name].latency_s == steps[name].latency_nominal_s
    wf = robust.workflows[0]
    assert wf.critical_path_s <= 8.0 < 1.25 * present_float(wf.critical_path_nominal_s)
    assert present_float(wf.critical_path_nominal_s) < wf.critical_path_s
    assert check_plan(small, robust) == []


def present_float(x: float | None) -> float:
    assert x is not None
    return x


def test_checker_flags_a_plan_labelled_robust_whose_slow_end_breaks_the_sla(colocated: Plan) -> None:
    nominal = colocated
    lat = {s.step: s.latency_s for s in nominal.steps}
    forged = nominal.model_copy(deep=True)
    forged.robust = RobustReport(error_band=dict.fromkeys(OFFERED, 0.25))
    for w in forged.workflows:
        w.critical_path_nominal_s = w.critical_path_s
    slow_end = 1.25 * (lat["plan"] + lat["answer"]) + lat["lookup"]
    problems = check_plan(load_scenario(SMALL), forged)
    assert f"workflow small-agent: critical path at the slow end of the error band {slow_end:.3f} s > SLA 8 s" in (
        problems
    )
    # The same plan, unlabelled, is valid: the checker holds a plan to the robust SLA only when it says so.
    assert check_plan(load_scenario(SMALL), nominal) == []


def test_checker_flags_a_robust_plan_with_the_wrong_band_or_a_nominal_plan_for_a_robust_scenario(
    robust: Plan, nominal: Plan
) -> None:
    wrong = robust.model_copy(deep=True)
    assert wrong.robust is not None
    wrong.robust.error_band["xeon-6980p"] = 0.1
    assert "robust: plan's error band for xeon-6980p is 0.1, the calibration gives 0.25" in check_plan(
        load_scenario(SMALL), wrong
    )
    asks = load_scenario(SMALL)
    asks.scenario = asks.scenario.model_copy(update={"robust": True})
    assert any(p.startswith("robust: the scenario asks for a robust plan") for p in check_plan(asks, nominal))


# ---- Bands from the calibration ----------------------------------------------------------------------------


def test_band_zero_reproduces_the_nominal_plan_exactly(tmp_path: Path, nominal: Plan) -> None:
    resolved = load_scenario(small_variant(tmp_path, calibration(dict.fromkeys(OFFERED, 0.0)), robust=True))
    plan = solve(resolved)
    assert plan.robust is not None and plan.robust.error_band == dict.fromkeys(OFFERED, 0.0)
    assert plan.tco == nominal.tco and plan.fleet == nominal.fleet and plan.pools == nominal.pools
    assert [s.latency_s for s in plan.steps] == [s.latency_s for s in nominal.steps]
    assert [s.latency_nominal_s for s in plan.steps] == [s.latency_s for s in nominal.steps]
    assert [w.critical_path_s for w in plan.workflows] == [w.critical_path_s for w in nominal.workflows]
    assert check_plan(resolved, plan) == []


def test_devices_missing_from_the_calibration_get_the_default_band(tmp_path: Path) -> None:
    resolved = load_scenario(small_variant(tmp_path, calibration({"l4": 0.1, "xeon-6980p": 0.05}), robust=True))
    plan = solve(resolved)
    assert plan.robust is not None
    assert plan.robust.error_band == {"a10g": 0.25, "h100-sxm": 0.25, "l4": 0.1, "xeon-6980p": 0.05}
    # 1.05 × (1.9576 + 5.1597) + 0.8 = 8.273 s > 8 s still: co-located is still out at the CPUs' 5 % band.
    assert {a.phase for a in plan.pools if a.model == "llama-3.1-8b"} == {"prefill", "decode"}
    assert check_plan(resolved, plan) == []


def test_slow_end_divides_every_llm_throughput_and_multiplies_its_latency(small_resolved: ResolvedScenario) -> None:
    """Pools level: f = 1.25 on every LLM config (÷ throughput, × latency, KV transfer kept); others untouched."""
    args = (small_resolved.workflows, small_resolved.catalog, sorted(OFFERED), 0.7)
    plain = {p.id: p for p in build_pools(*args)}
    slow = {p.id: p for p in build_pools(*args, slow_factor=dict.fromkeys(OFFERED, 1.25))}
    assert plain.keys() == slow.keys()
    for pid, p in plain.items():
        q = slow[pid]
        assert [c.key for c in p.configs] == [c.key for c in q.configs]
        llm = p.model == "llama-3.1-8b"
        for c, d in zip(p.configs, q.configs, strict=True):
            assert d.throughput == (c.throughput / 1.25 if llm else c.throughput)
            assert d.latency_s == ({r: t * 1.25 for r, t in c.latency_s.items()} if llm else c.latency_s)
            assert d.extra_s == c.extra_s and d.nominal_latency_s == (c.latency_s if llm else None)


def test_robust_costs_more_when_capacity_binds(tmp_path: Path) -> None:
    """At 6 req/s the LLM capacity binds: derated throughput needs more devices (the nominal plan rents 2 A10G,
    the robust one more accelerators in all); both plans check out against their own reading."""
    data = read_yaml(FIXTURES / "scenarios" / "small-agent-workflow.yaml") | {"arrival_rate_rps": 6}
    path = small_variant(tmp_path)
    write_yaml(tmp_path / "small-agent-workflow.yaml", data)
    nominal6 = solve(load_scenario(path))
    robust6 = solve(load_scenario(path), robust=True)
    devices = lambda p: sum(sum(v) for d, v in fleet_of(p).items() if d != "xeon-6980p")  # noqa: E731
    assert robust6.tco.total_usd_per_year > nominal6.tco.total_usd_per_year
    assert devices(robust6) > devices(nominal6)
    assert check_plan(load_scenario(path), nominal6) == []
    assert check_plan(load_scenario(path), robust6) == []


# ---- The scenario's engine ---------------------------------------------------------------------------------

XEON_TERMS = {"step_overhead_s": 0.004, "decode_attention_eta": 0.5}


def test_engine_menus_price_what_analyze_prices(small_resolved: ResolvedScenario) -> None:
    """evaluate_menu with per-device terms = evaluate_pass with EngineArrays of those terms (analyze's path)."""
    cat = small_resolved.catalog
    model, dev = cat.model("llama-3.1-8b"), cat.device("h100-sxm")
    params = ServingParams(**XEON_TERMS)
    menu = evaluate_menu(model, "decode", [dev], [1], [16], [model.weight_dtype], 0, 0, 2000, engine=[params])
    shape = phase_shape("decode", 16.0, 0, 0, 2000, 1.0)
    direct = evaluate_pass(
        model,
        Precision(model.weight_dtype, model.kv_dtype),
        shape,
        DeviceArrays.of([dev], [model.weight_dtype]),
        np.array([dev.mem_gb]),
        EngineArrays.of([params], [dev], [Dtype(model.weight_dtype)]),
    )
    plain = evaluate_menu(model, "decode", [dev], [1], [16], [model.weight_dtype], 0, 0, 2000)
    assert float(menu.latency_s[0]) == float(direct.latency_s[0])
    assert float(menu.latency_s[0]) > float(plain.latency_s[0]) + 0.004 * (1 - 1e-9)  # overhead + slower attention


def test_scenario_engine_prices_menus_with_the_calibrated_terms(tmp_path: Path, nominal: Plan) -> None:
    cal = calibration({}, serving={"xeon-6980p": {"vllm": XEON_TERMS}})
    resolved = load_scenario(small_variant(tmp_path, cal, engine="vllm"))
    assert serving_params("xeon-6980p", "vllm", load_engines(), resolved.calibration) == ServingParams(**XEON_TERMS)
    plan = solve(resolved)
    assert plan.engine == "vllm" and plan.robust is None
    assert check_plan(resolved, plan) == []
    # At the roofline the Xeon sockets co-locate both LLM calls with a 7.917 s critical path, 83 ms under the SLA.
    # The engine's per-step overhead and slower decode attention on the Xeon push its decode out: the decode pool
    # moves to all 4 owned L4s (tp 4). Fleet: 4 owned L4 (sunk: energy and hosting only) + 4 bought Xeons, so
    # IT load 4 × 72 W + 4 × 500 W = 2.288 kW, and the TCO by hand (economics as in conftest):
    tco = 4 * 12_460 / 4 + 2.288 * 0.7 * 1.3 * 8760 * 0.08 + 2.288 * 184 * 12  # 18,971.03 USD/yr
    assert plan.tco.total_usd_per_year == pytest.approx(tco, rel=1e-9) and tco > nominal.tco.total_usd_per_year
    assert fleet_of(plan) == {"l4": (4, 0, 0), "xeon-6980p": (0, 4, 0)}
    assert {(a.phase, a.device, a.tensor_parallel) for a in plan.pools if a.model == "llama-3.1-8b"} == {
        ("prefill", "xeon-6980p", 1),
        ("decode", "l4", 4),
    }
    # The checker recomputes with the scenario's engine: the same plan against the engine-less scenario fails.
    problems = check_plan(load_scenario(SMALL), plan)
    assert "engine: plan priced with vllm, scenario says None" in problems


def test_unknown_engine_is_an_input_error_naming_the_field(tmp_path: Path) -> None:
    path = small_variant(tmp_path, engine="nope")
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert err.value.source == str(path) and err.value.problems[0].field_path == "engine"
    result = runner.invoke(app, ["solve", str(path), "--no-baselines"])
    assert result.exit_code == 2 and "engine" in result.output and "nope" in result.output


# ---- CLI and the plan document -----------------------------------------------------------------------------


def test_nominal_plan_document_has_no_robust_keys(nominal: Plan) -> None:
    data = nominal.model_dump(mode="json")
    assert "robust" not in data and "engine" not in data
    assert all("latency_nominal_s" not in s for s in data["steps"])
    assert all("critical_path_nominal_s" not in w for w in data["workflows"])


def test_cli_robust_flag_and_check(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["solve", str(SMALL), "--robust", "--no-baselines", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.model_validate(json.loads(result.stdout))
    assert plan.robust is not None and plan.robust.error_band == dict.fromkeys(OFFERED, 0.25)
    check = runner.invoke(app, ["check", str(SMALL), str(out)])
    assert check.exit_code == 0, check.output
    table = runner.invoke(app, ["solve", str(SMALL), "--robust", "--no-baselines"])
    assert table.exit_code == 0 and "slow end" in table.stdout


def test_robust_infeasibility_says_the_numbers_are_at_the_slow_end(tmp_path: Path) -> None:
    """An 0.5 s SLA is below the 0.8 s tool call alone: infeasible either way; the robust diagnosis says so."""
    data = read_yaml(FIXTURES / "scenarios" / "small-agent-workflow.yaml") | {"sla": {"e2e_latency_s": 0.5}}
    path = small_variant(tmp_path, robust=True)
    write_yaml(tmp_path / "small-agent-workflow.yaml", data)
    outcome = solve_scenario(load_scenario(path), "highs", baselines=False)
    assert outcome.status == "infeasible" and outcome.diagnosis[-1] == ROBUST_NOTE
    assert any("fastest possible critical path" in d for d in outcome.diagnosis)


def test_ttft_overhead_adds_to_every_prefill_latency_once(small_resolved: ResolvedScenario, tmp_path: Path) -> None:
    """The per-request time before the first token is a latency, not replica time: each prefill and co-located
    config's step latency grows by exactly that many seconds and its throughput does not move; the checker
    recomputes the same plan with it and passes it."""
    front_s = 0.05
    engine = {d: ServingParams(ttft_overhead_s=front_s) for d in OFFERED}
    r = small_resolved
    args = (r.workflows, r.catalog, list(OFFERED), r.scenario.limits.max_utilisation)
    plain = {(p.id, c.key): c for p in build_pools(*args) for c in p.configs}
    timed = {(p.id, c.key): c for p in build_pools(*args, engine=engine) for c in p.configs}
    assert plain.keys() == timed.keys()
    for key, c in timed.items():
        p = plain[key]
        assert c.throughput == p.throughput
        grew = {ref: c.latency_s[ref] - p.latency_s[ref] for ref in c.latency_s}
        expected = front_s if key[0].endswith((":prefill", ":colocated")) else 0.0
        assert all(g == pytest.approx(expected, abs=1e-12) for g in grew.values()), (key, grew)
    cal = calibration({}, serving={d: {"vllm": {"ttft_overhead_s": front_s}} for d in OFFERED})
    resolved = load_scenario(small_variant(tmp_path, cal, engine="vllm"))
    plan = solve(resolved)
    assert check_plan(resolved, plan) == []
