"""KV-cache dtype as a decision (issue #13): the scenario's allowed_kv_dtypes, menus over (weight, KV) pairs,
one KV dtype per disaggregated route, and the checker recomputing with the plan's KV dtype."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.schema import Dtype
from hetplace.cli import app
from hetplace.costmodels.llm_ops import Shape, kv_bytes_per_token, llm_operators
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.precision import Precision
from hetplace.optimizer.backends import solve
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.formulation import build_formulation
from hetplace.optimizer.heuristic import budget_plan
from hetplace.optimizer.pools import StepRef
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, SMALL_OPTIMUM_USD_PER_YEAR, present, solved_plan, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"

# One L4 (72 W) in service for a year at the small scenario's economics (0.08 USD/kWh, PUE 1.3, load 0.7,
# 184 USD/kW-month hosting): energy 0.072 · 0.7 · 1.3 · 8760 · 0.08 = 45.916416, hosting 0.072 · 184 · 12 = 158.976.
L4_RUNNING_USD_PER_YEAR = 45.916416 + 158.976


def _small_with(tmp_path: Path, **fields: Any) -> ResolvedScenario:
    """The small scenario with top-level fields changed, written beside a copy of its workflow."""
    data = yaml.safe_load(SMALL.read_text())
    data.update(fields)
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    return load_scenario(write_yaml(tmp_path / "scenario.yaml", data))


@pytest.fixture(scope="module")
def fp8_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResolvedScenario, Plan]:
    resolved = _small_with(tmp_path_factory.mktemp("fp8kv"), allowed_kv_dtypes=["fp8"])
    return resolved, solved_plan(solve_scenario(resolved, baselines=False))


# ---- Cost model: capacity and bytes ------------------------------------------------------------------------


def test_fp8_kv_halves_kv_bytes_per_token(catalog) -> None:
    # Llama 3.1 8B: 32 layers × 2 (K and V) × 8 KV heads × 128 dims = 65,536 elements per token
    model = catalog.model("llama-3.1-8b")
    assert float(kv_bytes_per_token(model, Precision(Dtype.bf16, Dtype.bf16))) == 131_072
    assert float(kv_bytes_per_token(model, Precision(Dtype.bf16, Dtype.fp8))) == 65_536


def test_fp8_kv_doubles_the_kv_tokens_per_gb_and_max_batch_on_one_config(catalog) -> None:
    """Llama 3.1 8B in bf16 on one L4 (24 GB), decoding at a 4,000-token context, by hand:
    usable 24e9 · 0.9 = 21.6e9 B; weights 8,029,995,008 params × 2 B = 16,059,990,016 B (embed + lm_head
    2 × 128256 · 4096, qkv 32 · 4096 · 48 · 128, o 32 · 4096², ffn 32 · 3 · 4096 · 14336); workspace
    4 · 8192 · 14336 · 2 = 939,524,096 B. Free for KV: 4,600,485,888 B.
    bf16 KV: 131,072 B/token · 4,000 = 524,288,000 B per sequence -> floor(8.77) = 8 sequences.
    fp8 KV: 65,536 B/token -> floor(17.55) = 17 sequences."""
    model = catalog.model("llama-3.1-8b")
    free_b = 24e9 * 0.9 - 8_029_995_008 * 2 - 4 * 8192 * 14336 * 2
    assert free_b == 4_600_485_888
    assert free_b / 131_072 * 2 == free_b / 65_536  # twice the KV tokens in the same bytes
    menu = evaluate_menu(
        model,
        "decode",
        [catalog.device("l4")],
        [1],
        [8, 9, 17, 18],
        [Dtype.bf16],
        0,
        0,
        3999,
        kv_dtypes=[Dtype.bf16, Dtype.fp8],
    )
    by = {
        (str(kv), int(b)): (float(mb), bool(f))
        for kv, b, mb, f in zip(menu.kv_dtype, menu.batch, menu.max_batch, menu.fits, strict=True)
    }
    assert by == {
        ("bf16", 8): (8.0, True),
        ("bf16", 9): (8.0, False),
        ("bf16", 17): (8.0, False),
        ("bf16", 18): (8.0, False),
        ("fp8", 8): (17.0, True),
        ("fp8", 9): (17.0, True),
        ("fp8", 17): (17.0, True),
        ("fp8", 18): (17.0, False),
    }
    assert set(menu.weight_dtype.tolist()) == {"bf16"}


def test_fp8_kv_reads_fewer_bytes_per_decode_step(catalog) -> None:
    """Decode of 8 sequences at a 4,000-token KV context: the attention core reads 8 · 4,000 · 65,536 B less
    (2,097,152,000 B) with fp8 KV, and the memory-bound step on an H100 is faster."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    shape = Shape.of(8.0, 1.0, 3999.0, 1.0)

    def attention_bytes(kv: Dtype) -> float:
        ops = llm_operators(model, shape, Precision(Dtype.bf16, kv))
        return float(np.sum(next(op for op in ops if op.name == "attention").bytes))

    assert attention_bytes(Dtype.bf16) - attention_bytes(Dtype.fp8) == 8 * 4000 * 65_536
    menu = evaluate_menu(model, "decode", [h100], [1], [8], [Dtype.bf16], 0, 0, 3999, kv_dtypes=[Dtype.bf16, Dtype.fp8])
    assert menu.kv_dtype.tolist() == ["bf16", "fp8"]
    assert menu.latency_s[1] < menu.latency_s[0]


def test_kv_dtypes_default_is_the_models_own(catalog) -> None:
    model, l4 = catalog.model("llama-3.1-8b"), catalog.device("l4")
    args = (model, "decode", [l4], [1, 2], [1, 32], [Dtype.bf16, Dtype.int4], 0, 0, 1500)
    plain, explicit = evaluate_menu(*args), evaluate_menu(*args, kv_dtypes=[model.kv_dtype])
    assert set(plain.kv_dtype.tolist()) == {"bf16"}
    np.testing.assert_array_equal(plain.latency_s, explicit.latency_s)
    np.testing.assert_array_equal(plain.max_batch, explicit.max_batch)


# ---- Scenario field ----------------------------------------------------------------------------------------


def test_scenario_rejects_a_kv_dtype_that_is_not_a_storage_format(tmp_path: Path) -> None:
    data = yaml.safe_load(SMALL.read_text())
    data["allowed_kv_dtypes"] = ["fp8", "int4"]
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    path = write_yaml(tmp_path / "scenario.yaml", data)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr and "allowed_kv_dtypes" in result.stderr and "'int4'" in result.stderr
    assert "Traceback" not in result.output


# ---- Menus, formulation and solves -------------------------------------------------------------------------


def test_decode_configs_carry_their_kv_dtype_and_transfer_in_it(tmp_path: Path, catalog) -> None:
    """A decode config's KV transfer is the step's prompt KV in the config's KV dtype over the NIC: fp8 moves half
    the bytes of bf16 (plan step: 1,200 tokens · 131,072 B = 157,286,400 B in bf16)."""
    f = build_formulation(_small_with(tmp_path, allowed_kv_dtypes=["fp8"]))
    decode = next(p for p in f.pools if p.id == "llama-3.1-8b:decode")
    ref = StepRef("small-agent", "plan")
    by = {(c.device, c.tp, c.batch, c.dtype, c.kv_dtype): c for c in decode.configs}
    bf16, fp8 = by[("h100-sxm", 1, 1, "bf16", "bf16")], by[("h100-sxm", 1, 1, "bf16", "fp8")]
    assert fp8.extra_s[ref] == pytest.approx(bf16.extra_s[ref] / 2, rel=1e-12)
    assert fp8.key == bf16.key + "|kv-fp8"  # the model's own KV dtype keeps today's key
    assert fp8.latency_s[ref] < bf16.latency_s[ref]


def test_prefill_and_decode_must_agree_on_the_kv_dtype(tmp_path: Path) -> None:
    """Forcing a bf16-KV prefill config and an fp8-KV decode config into use is infeasible; the same pair with
    one KV dtype is not."""
    resolved = _small_with(tmp_path, allowed_kv_dtypes=["fp8"])

    def forced(prefill_kv: str, decode_kv: str) -> str:
        f = build_formulation(resolved)
        assert set(f.kv_vars["llama-3.1-8b"]) == {"bf16", "fp8"}
        for pool_id, kv in (("llama-3.1-8b:prefill", prefill_kv), ("llama-3.1-8b:decode", decode_kv)):
            pool = next(p for p in f.pools if p.id == pool_id)
            c = next(c for c in pool.configs if (c.device, c.tp, c.batch, c.kv_dtype) == ("h100-sxm", 1, 1, kv))
            f.model.add_row(f"force[{c.key}]", {f.config_vars[c.key].in_use: 1.0}, ">=", 1.0)
        return solve(f.model, "highs", 60, 1e-6, 1).status

    assert forced("bf16", "fp8") == "infeasible"
    assert forced("fp8", "bf16") == "infeasible"
    assert forced("fp8", "fp8") == "optimal"


def test_without_the_field_no_kv_choice_enters_the_model(small_resolved) -> None:
    f = build_formulation(small_resolved)
    assert f.kv_vars == {}
    assert not any(v.name.startswith("kv[") for v in f.model.vars)
    llm = [c for p in f.pools if p.model == "llama-3.1-8b" for c in p.configs]
    assert llm and {c.kv_dtype for c in llm} == {"bf16"} and not any("kv-" in c.key for c in llm)


def test_fp8_kv_lowers_the_small_optimum_by_one_l4(fp8_small: tuple[ResolvedScenario, Plan]) -> None:
    """With fp8 KV the CPU replica (tp 2, batch 32) alone carries the LLM traffic, so the index moves to the
    Xeons and one owned L4 leaves service: 18,561.240832 − 204.892416 = 18,356.348416 USD/yr."""
    resolved, plan = fp8_small
    fleet = {e.device: (e.owned_used, e.bought, e.rented) for e in plan.fleet}
    assert fleet == {"l4": (1, 0, 0), "xeon-6980p": (0, 4, 0)}
    assert plan.tco.total_usd_per_year == pytest.approx(SMALL_OPTIMUM_USD_PER_YEAR - L4_RUNNING_USD_PER_YEAR, rel=1e-9)
    assert "fp8" in {a.kv_dtype for a in plan.pools}
    assert check_plan(resolved, plan) == []
    for backend in ("cbc", "cpsat"):  # the KV binaries and rows reach every backend alike
        other = solved_plan(solve_scenario(resolved, backend=backend, baselines=False))
        assert other.tco.total_usd_per_year == pytest.approx(plan.tco.total_usd_per_year, rel=1e-9), backend
        assert check_plan(resolved, other) == [], backend


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"limits": {"power_cap_kw": 100, "max_utilisation": 0.5}},
        {
            "hardware": {
                "owned": [{"device": "l4", "count": 8}],
                "purchasable": [{"device": "xeon-6980p", "max_count": 4}],
            }
        },
        {
            "hardware": {
                "purchasable": [{"device": "h100-sxm", "max_count": 16}, {"device": "xeon-6980p", "max_count": 4}]
            }
        },
    ],
    ids=["small", "low-utilisation", "l4-only", "h100-only"],
)
def test_allowing_fp8_kv_never_raises_tco_and_plans_check(tmp_path: Path, change: dict[str, Any]) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "fp8").mkdir()
    base_r = _small_with(tmp_path / "base", **change)
    fp8_r = _small_with(tmp_path / "fp8", allowed_kv_dtypes=["bf16", "fp8"], **change)
    base = solve_scenario(base_r, baselines=False, gap=1e-6)
    wide = solve_scenario(fp8_r, baselines=False, gap=1e-6)
    assert base.status == wide.status
    if base.plan is None:
        return
    wide_plan = solved_plan(wide)
    assert wide_plan.tco.total_usd_per_year <= base.plan.tco.total_usd_per_year * (1 + 1e-6)
    assert check_plan(fp8_r, wide_plan) == []
    for model in {a.model for a in wide_plan.pools if a.phase in ("prefill", "decode")}:
        assert len({a.kv_dtype for a in wide_plan.pools if a.model == model and a.phase in ("prefill", "decode")}) == 1


def test_the_heuristic_plan_keeps_one_kv_dtype_per_route(tmp_path: Path) -> None:
    # On the small scenario the heuristic serves the 8B model disaggregated; its start must satisfy the KV rows.
    f = build_formulation(_small_with(tmp_path, allowed_kv_dtypes=["fp8"]))
    values = present(budget_plan(f))
    disaggregated = [p for p in f.pools if p.phase in ("prefill", "decode")]
    in_use = {c.kv_dtype for p in disaggregated for c in p.configs if values[f.config_vars[c.key].in_use] > 0.5}
    picked = {kv for kv, var in f.kv_vars["llama-3.1-8b"].items() if values[var] > 0.5}
    assert len(in_use) == 1 and picked == in_use
    for row in f.model.rows:
        if row.name.startswith(("kv_agree[", "kv_one[")):
            assert sum(c * values[i] for i, c in row.coeffs.items()) <= row.rhs + 1e-9, row.name


# ---- Checker -----------------------------------------------------------------------------------------------


def test_checker_flags_fp8_kv_the_scenario_did_not_allow(small_resolved, small_plans: dict[str, Any]) -> None:
    data = small_plans["highs"].plan.model_dump(mode="json")
    llm = [a for a in data["pools"] if a["model"] == "llama-3.1-8b"]
    assert llm and {a["kv_dtype"] for a in llm} == {"bf16"}
    for a in llm:
        a["kv_dtype"] = "fp8"
    problems = check_plan(small_resolved, Plan.model_validate(data))
    assert any("KV cache in fp8, not llama-3.1-8b's own nor allowed" in p for p in problems), problems


def test_checker_flags_a_weight_dtype_the_scenario_did_not_allow(small_resolved, small_plans: dict[str, Any]) -> None:
    data = small_plans["highs"].plan.model_dump(mode="json")
    next(a for a in data["pools"] if a["model"] == "llama-3.1-8b")["weight_dtype"] = "int4"
    problems = check_plan(small_resolved, Plan.model_validate(data))
    assert any("weights in int4, not llama-3.1-8b's own nor allowed" in p for p in problems), problems


def test_checker_recomputes_with_the_plans_kv_dtype(fp8_small: tuple[ResolvedScenario, Plan]) -> None:
    # The fp8 plan's CPU replica serves at batch 32; recomputed in bf16 KV its decode is slower, so the latencies
    # and critical path the plan reports no longer match.
    resolved, plan = fp8_small
    data = plan.model_dump(mode="json")
    for a in data["pools"]:
        if a["kv_dtype"] == "fp8":
            a["kv_dtype"] = "bf16"
    problems = check_plan(resolved, Plan.model_validate(data))
    assert any("critical path" in p or "capacity" in p for p in problems), problems


def test_checker_flags_prefill_and_decode_on_different_kv_dtypes(tmp_path: Path) -> None:
    resolved = _small_with(tmp_path, allowed_kv_dtypes=["fp8"])
    plan = solved_plan(solve_scenario(resolved, baselines=False))
    data = plan.model_dump(mode="json")
    template = next(a for a in data["pools"] if a["model"] == "llama-3.1-8b")
    for phase, kv in (("prefill", "bf16"), ("decode", "fp8")):
        data["pools"].append({**template, "pool": f"llama-3.1-8b:{phase}", "phase": phase, "kv_dtype": kv})
    problems = check_plan(resolved, Plan.model_validate(data))
    assert any("different dtypes (bf16, fp8)" in p for p in problems), problems


def test_a_plan_without_kv_dtype_means_the_models_own(small_resolved, small_plans: dict[str, Any]) -> None:
    data = small_plans["highs"].plan.model_dump(mode="json")
    for a in data["pools"]:
        del a["kv_dtype"]
    old = Plan.model_validate(data)
    assert {a.kv_dtype for a in old.pools} == {None}
    assert check_plan(small_resolved, old) == []
