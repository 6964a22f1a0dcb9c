"""Formulas the optimizer's pools share with the cost models and the reports, against hand-computed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hetplace.catalogs.loader import Catalog
from hetplace.costmodels.step_shape import LlmCallShape, llm_call_shape, llm_pool_shape


def test_repeats_with_prompt_growth_average_the_cached_prefix_and_context() -> None:
    # 5 repeats growing by 400 tokens: repeat i caches 1500 + 400·i, the mean growth is 400·4/2 = 800
    call = llm_call_shape(2000, 1500, 300, repeat=5, prompt_growth_tokens_per_repeat=400)
    assert call.uncached_tokens == 500.0  # every repeat prefills 2000 − 1500 new tokens
    assert call.cached_tokens == 1500 + 800
    assert call.decode_context_tokens == 2000 + 800 + 150
    assert call.prompt_tokens == 2000 + 800


def test_a_single_call_is_its_own_prompt() -> None:
    call = llm_call_shape(1000, 0, 200)
    assert (call.uncached_tokens, call.cached_tokens, call.decode_context_tokens) == (1000.0, 0.0, 1100.0)


def test_pool_mean_weights_prefill_by_uncached_tokens_and_decode_by_output_tokens() -> None:
    a = LlmCallShape(uncached_tokens=1000.0, cached_tokens=0.0, decode_context_tokens=1100.0)
    b = LlmCallShape(uncached_tokens=200.0, cached_tokens=3000.0, decode_context_tokens=3500.0)
    # a: 2 calls/s · 1000 = 2000 uncached tok/s, 2 · 200 = 400 output tok/s
    # b: 5 calls/s ·  200 = 1000 uncached tok/s, 5 · 600 = 3000 output tok/s
    pool = llm_pool_shape([2.0, 5.0], [a, b], [200.0, 600.0])
    assert pool.prefill_tokens_per_s == 3000.0
    assert pool.decode_tokens_per_s == 3400.0
    assert pool.mean_call.uncached_tokens == pytest.approx((2000 * 1000 + 1000 * 200) / 3000)  # 733.3
    assert pool.mean_call.cached_tokens == pytest.approx((2000 * 0 + 1000 * 3000) / 3000)  # 1000
    assert pool.mean_call.decode_context_tokens == pytest.approx((400 * 1100 + 3000 * 3500) / 3400)  # 3217.6


def test_a_pool_without_demand_has_a_zero_shape_not_nan() -> None:
    pool = llm_pool_shape([0.0], [llm_call_shape(100, 0, 10)], [10.0])
    assert pool.prefill_tokens_per_s == 0.0 and pool.mean_call == LlmCallShape(0.0, 0.0, 0.0)


calls = st.builds(
    lambda prompt, cached_frac, output, repeat, growth: llm_call_shape(
        prompt, int(cached_frac * (prompt - 1)), output, repeat, growth
    ),
    st.integers(2, 100_000),
    st.floats(0.0, 1.0),
    st.integers(1, 4096),
    st.integers(1, 20),
    st.integers(0, 2000),
)


@given(st.lists(st.tuples(st.floats(0.01, 100.0), calls, st.integers(1, 4096)), min_size=1, max_size=6))
def test_pool_mean_lies_within_the_steps_it_averages(steps: list[tuple[float, LlmCallShape, int]]) -> None:
    rates, shapes, outputs = zip(*steps, strict=True)
    mean = llm_pool_shape(rates, shapes, [float(o) for o in outputs]).mean_call
    for field in ("uncached_tokens", "cached_tokens", "decode_context_tokens"):
        values = [getattr(s, field) for s in shapes]
        assert min(values) * (1 - 1e-9) <= getattr(mean, field) <= max(values) * (1 + 1e-9)


def test_report_roofline_prices_each_llm_pool_at_the_call_the_optimizer_sized_it_at() -> None:
    """The placement roofline (reports) and the pools (optimizer) must see the same mean call: a config's
    single-pass analysis at the report's shape reproduces the pool's throughput."""
    from hetplace.costmodels.analysis import analyze_llm
    from hetplace.optimizer.pools import build_pools
    from hetplace.problems.loader import load_scenario
    from hetplace.reports.plan_charts import _llm_mean_call
    from tests.conftest import FIXTURES

    resolved = load_scenario(FIXTURES / "scenarios" / "small-agent.yaml")
    pools = build_pools(resolved.workflows, resolved.catalog, sorted(resolved.catalog.devices), 0.8)
    checked = 0
    for pool in pools:
        if pool.phase not in ("prefill", "decode"):
            continue
        assert pool.model is not None
        call = _llm_mean_call(resolved, pool.model)
        for cfg in pool.configs[:: max(1, len(pool.configs) // 5)]:
            res = analyze_llm(
                resolved.catalog.model(pool.model),
                resolved.catalog.device(cfg.device),
                cfg.tp,
                pool.phase,
                cfg.batch,
                call.prompt_tokens,
                call.decode_context_tokens,
                cfg.dtype,
                call.cached_tokens,
            )
            assert res["totals"]["tokens_per_s"] == pytest.approx(cfg.throughput, rel=1e-9)
            checked += 1
    assert checked >= 10


def test_decode_configs_carry_the_kv_transfer_over_the_decode_devices_nic() -> None:
    from hetplace.optimizer.pools import StepRef, build_pools
    from hetplace.problems.loader import load_scenario
    from tests.conftest import FIXTURES

    resolved = load_scenario(FIXTURES / "scenarios" / "small-agent.yaml")
    pools = build_pools(resolved.workflows, resolved.catalog, ["h100-sxm", "l4"], 0.8)
    decode = next(p for p in pools if p.phase == "decode")
    ref = StepRef("small-agent", "plan")
    assert ref in decode.steps
    # llama-3.1-8b bf16 KV: 32 layers · 2 · 8 KV heads · 128 · 2 B = 131,072 B/token; 'plan' sends 1200 tokens.
    kv = 32 * 2 * 8 * 128 * 2 * 1200
    nic = {"h100-sxm": 400e9 / 8 * 0.8, "l4": 10e9 / 8 * 0.8}  # 80 % of the NIC line rate, bytes/s
    for cfg in decode.configs:
        assert cfg.extra_s[ref] == pytest.approx(kv / nic[cfg.device], rel=1e-12)  # 3.9 ms / 157 ms
    assert {c.device for c in decode.configs} == {"h100-sxm", "l4"}


def test_retrieval_indexes_and_llm_replicas_keep_the_same_memory_reserve(catalog: Catalog) -> None:
    from hetplace.costmodels.capacity import MEMORY_RESERVE, usable_bytes
    from hetplace.costmodels.nonllm import retrieval_cost

    assert MEMORY_RESERVE == 0.10
    l4 = catalog.device("l4")  # 24 GB: 21.6e9 bytes usable; a flat fp32 index of dim 1024 holds 4096 B/vector
    assert float(usable_bytes(24.0)) == pytest.approx(21.6e9)
    fits = [bool(retrieval_cost([l4], n, 1024, 10, "flat", "fp32", 1).fits[0]) for n in (5_273_437, 5_273_438)]
    assert fits == [True, False]  # 5,273,437 · 4096 = 21,599,997,952 ≤ 21.6e9 < 5,273,438 · 4096


def test_facility_power_drives_the_energy_bill() -> None:
    from hetplace.costmodels.tco import EconomicsInputs, energy_usd_per_year, facility_kw

    econ = EconomicsInputs(
        energy_usd_per_kwh=0.1, pue=1.5, hosting_usd_per_kw_month=0.0, amortisation_years=4.0, avg_load_fraction=0.6
    )
    assert facility_kw(700.0, econ) == pytest.approx(0.7 * 0.6 * 1.5)  # 0.63 kW
    assert energy_usd_per_year(700.0, econ) == pytest.approx(0.63 * 8760 * 0.1)  # 551.88 USD


def test_conversion_items_become_the_encoders_declared_tokens(catalog: Catalog) -> None:
    from hetplace.costmodels.nonllm import encoder_tokens_per_item

    clip = catalog.model("clip-vit-l-14-336")
    assert encoder_tokens_per_item(clip, None) == 577  # (336 / 14)² = 576 patches + the class token
    assert encoder_tokens_per_item(catalog.model("bge-large-en-v1.5"), 300) == 300  # an embed step states its own
    with pytest.raises(ValueError, match="no encoder_input"):
        encoder_tokens_per_item(catalog.model("llama-3.1-8b"), None)
