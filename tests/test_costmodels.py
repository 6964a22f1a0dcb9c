"""Cost models against hand-computed numbers (README "Cost models" formulas; efficiency priors η_c=0.7, η_m=0.8)."""

from __future__ import annotations

import numpy as np
import pytest

from hetplace.catalogs.loader import Catalog
from hetplace.catalogs.schema import Dtype
from hetplace.costmodels.analysis import analyze_llm
from hetplace.costmodels.capacity import max_batch, min_devices_for_weights
from hetplace.costmodels.llm_ops import (
    Shape,
    expected_distinct_experts,
    kv_bytes_per_token,
    llm_operators,
    weight_bytes,
)
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.precision import Precision, matmul_dtype
from hetplace.costmodels.tco import EconomicsInputs, bought_device_year, owned_device_year, rented_device_year

BF16 = Precision(Dtype.bf16, Dtype.bf16)


def test_llama8b_decode_batch1_h100_is_weight_bandwidth_bound(catalog: Catalog) -> None:
    model, dev = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    res = analyze_llm(model, dev, tp=1, phase="decode", batch=1, prompt_tokens=1, context_tokens=4096)
    gemms = [o for o in res["operators"] if o["name"] in ("qkv_proj", "o_proj", "ffn", "lm_head")]
    assert all(o["bound"] == "memory" for o in gemms)
    # Weights: 32·(2·4096² + 2·4096·1024 + 3·4096·14336) + 128256·4096 (lm_head) = 15.01e9 params... in bytes ×2
    weights = 2 * (32 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 128256 * 4096)
    assert sum(o["cf_bytes"] for o in gemms) == pytest.approx(weights)
    bw_eff = 3350e9 * 0.8
    floor = weights / bw_eff  # 5.60 ms: the weight read alone
    assert floor == pytest.approx(5.602e-3, rel=1e-3)
    assert floor < res["totals"]["latency_s"] < 1.25 * floor
    assert res["totals"]["tokens_per_s"] == pytest.approx(1 / res["totals"]["latency_s"])


def test_llama70b_prefill_4k_is_compute_bound(catalog: Catalog) -> None:
    model, dev = catalog.model("llama-3.1-70b"), catalog.device("h100-sxm")
    res = analyze_llm(model, dev, tp=4, phase="prefill", batch=1, prompt_tokens=4096, context_tokens=0)
    by_name = {o["name"]: o for o in res["operators"]}
    assert by_name["ffn"]["bound"] == "compute" and by_name["qkv_proj"]["bound"] == "compute"
    # 2 · 4096 tokens · 3·8192·28672 · 80 layers / 4 devices
    assert by_name["ffn"]["flops"] == pytest.approx(2 * 4096 * 3 * 8192 * 28672 * 80 / 4)
    # Tile/wave quantisation of the up+gate GEMM [4096 x 8192]·[8192 x 14336] on 132 SMs: the best tile is
    # 64x128 -> 64·112 = 7168 tiles -> ceil(7168/132) = 55 waves -> 55·132·64·128 / (4096·14336) = 1.01277
    padding = 55 * 132 * 64 * 128 / (4096 * 14336)
    gemm_time = by_name["ffn"]["flops"] * padding / (989.5e12 * 0.7)
    assert by_name["ffn"]["latency_s"] == pytest.approx(gemm_time + 80 * 5e-6, rel=1e-6)


def test_mla_kv_is_far_smaller_than_gqa(catalog: Catalog) -> None:
    ds, llama = catalog.model("deepseek-v3"), catalog.model("llama-3.1-405b")
    ds_layer = float(kv_bytes_per_token(ds, BF16)) / ds.num_layers
    gqa_layer = float(kv_bytes_per_token(llama, BF16)) / llama.num_layers
    assert ds_layer == (512 + 64) * 2  # latent + rope key, bf16
    assert gqa_layer == 2 * 8 * 128 * 2  # K and V, 8 KV heads of 128
    assert float(kv_bytes_per_token(ds, BF16)) < 0.2 * float(kv_bytes_per_token(llama, BF16))


def test_405b_does_not_fit_one_80gb_device(catalog: Catalog) -> None:
    model, dev = catalog.model("llama-3.1-405b"), catalog.device("h100-sxm")
    assert weight_bytes(model, BF16) > 800e9
    assert max_batch(model, BF16, np.array([80.0]), np.array([1.0]), np.array([4096.0]))[0] == 0
    assert min_devices_for_weights(model, BF16, 80.0) == 16  # 811 GB of weights over 72 GB usable per device
    res = analyze_llm(model, dev, tp=8, phase="decode", batch=1, prompt_tokens=1, context_tokens=4096)
    assert res["totals"]["fits"] is False and res["totals"]["max_batch"] == 0


def test_doubling_context_doubles_decode_kv_bytes(catalog: Catalog) -> None:
    model = catalog.model("llama-3.1-8b")
    ops_4k = {o.name: o for o in llm_operators(model, Shape.of(16, 1, 4095, 1), BF16)}
    ops_8k = {o.name: o for o in llm_operators(model, Shape.of(16, 1, 8191, 1), BF16)}
    kv_4k = 16 * 4096 * 2 * 8 * 128 * 2 * 32
    assert ops_4k["attention"].cf_bytes[0] == kv_4k
    assert ops_8k["attention"].cf_bytes[0] == 2 * kv_4k
    assert ops_8k["attention"].bytes[0] / ops_4k["attention"].bytes[0] == pytest.approx(2.0, rel=0.01)


def test_tp2_halves_weight_bytes_and_adds_comm(catalog: Catalog) -> None:
    model, h200 = catalog.model("llama-3.1-70b"), catalog.device("h200-sxm")
    # the device figures the hand computation below uses: NVLink 450 GB/s per direction, η_m prior 0.8
    assert (h200.scaleup_bw_gbs, h200.efficiency.memory) == (450, 0.8)
    one = analyze_llm(model, h200, 1, "decode", 8, 1, 2048)
    two = analyze_llm(model, h200, 2, "decode", 8, 1, 2048)
    # bf16 weights: 80 · (2·8192² + 2·8192·1024 + 3·8192·28672) + 2·128256·8192 (embedding, lm_head) params × 2 B
    #             = 2 · 70,552,387,584 = 141,104,775,168 B on one device, half of it on each of two
    assert one["totals"]["weight_bytes_per_device"] == 141_104_775_168
    assert two["totals"]["weight_bytes_per_device"] == 141_104_775_168 / 2
    comm = {o["name"]: o for o in two["operators"]}["allreduce"]
    assert comm["bound"] == "comm"
    # 160 all-reduces of 8·8192·2 bytes: 160·10 µs + 2·(1/2)·(160·131072 B)/(450e9·0.8) = 1.6 ms + 58.3 µs
    assert comm["latency_s"] == pytest.approx(160 * 10e-6 + 160 * 131072 / (450e9 * 0.8), rel=1e-6)
    assert {o["name"]: o for o in one["operators"]}["allreduce"]["latency_s"] == 0


def test_moe_distinct_experts_grow_with_batch() -> None:
    e = expected_distinct_experts(8, 2, np.array([1.0, 2.0, 64.0]))
    assert e[0] == pytest.approx(2.0)  # one token touches exactly top-k
    assert e[1] == pytest.approx(8 * (1 - 0.75**2))  # 3.5
    assert e[2] == pytest.approx(8.0, abs=1e-6)


def test_unsupported_dtype_is_infeasible_not_extrapolated(catalog: Catalog) -> None:
    a100 = catalog.device("a100-80gb-sxm")
    assert matmul_dtype(a100, Dtype.fp8) is None
    assert matmul_dtype(a100, Dtype.int4) == Dtype.bf16  # weight-only W4A16
    menu = evaluate_menu(
        catalog.model("llama-3.1-8b"), "decode", [a100, catalog.device("h100-sxm")], [1], [1], [Dtype.fp8], 1, 0, 1024
    )
    assert menu.fits.tolist() == [False, True]


def test_menu_matches_single_config_analysis(catalog: Catalog) -> None:
    model = catalog.model("llama-3.1-8b")
    devices = [catalog.device("h100-sxm"), catalog.device("l4")]
    menu = evaluate_menu(model, "decode", devices, [1, 2], [1, 16], [Dtype.bf16], 1, 0, 2048)
    assert len(menu) == 8
    for i in range(len(menu)):
        dev = devices[int(menu.device_index[i])]
        single = analyze_llm(model, dev, int(menu.tp[i]), "decode", int(menu.batch[i]), 1, 2048)
        assert menu.latency_s[i] == pytest.approx(single["totals"]["latency_s"], rel=1e-12)
        assert bool(menu.fits[i]) == single["totals"]["fits"]


ECON = EconomicsInputs(
    energy_usd_per_kwh=0.10, pue=1.5, hosting_usd_per_kw_month=200.0, amortisation_years=4.0, avg_load_fraction=0.5
)


def test_tco_per_device_year_hand_computed() -> None:
    bought = bought_device_year(capex_usd=20000.0, tdp_w=1000.0, econ=ECON)
    assert bought.capex_usd == 5000.0
    assert bought.energy_usd == pytest.approx(1.0 * 0.5 * 1.5 * 8760 * 0.10)  # 657
    assert bought.hosting_usd == pytest.approx(1.0 * 200 * 12)  # 2400
    assert bought.total_usd == pytest.approx(5000 + 657 + 2400)
    sunk = owned_device_year(tdp_w=1000.0, econ=ECON)
    assert sunk.capex_usd == 0.0 and sunk.total_usd == pytest.approx(657 + 2400)
    kept = owned_device_year(tdp_w=1000.0, econ=ECON, residual_value_usd=8000.0)
    assert kept.capex_usd == 2000.0
    assert rented_device_year(2.5).total_usd == pytest.approx(2.5 * 8760)


def test_kv_transfer_for_disaggregated_serving(catalog: Catalog) -> None:
    from hetplace.costmodels.roofline import DeviceArrays, kv_transfer_time

    model, h100 = catalog.model("llama-3.1-70b"), catalog.device("h100-sxm")
    kv = float(kv_bytes_per_token(model, BF16)) * 4096  # 80 layers · 2·8·128 · 2 B · 4096 tokens = 1.34 GB
    assert kv == 80 * 2 * 8 * 128 * 2 * 4096
    dev = DeviceArrays.of([h100, h100], [Dtype.bf16, Dtype.bf16])
    t = kv_transfer_time(np.array([kv, kv]), np.array([True, False]), dev)
    assert t[0] == pytest.approx(1_342_177_280 / 360e9, rel=1e-12)  # NVLink 450 GB/s · 0.8: 3.728 ms
    assert t[1] == pytest.approx(1_342_177_280 / 40e9, rel=1e-12)  # 400 Gb/s NIC = 50 GB/s · 0.8: 33.55 ms


def test_cpu_is_a_real_target_for_small_models(catalog: Catalog) -> None:
    cpu = catalog.device("xeon-6980p")
    res = analyze_llm(catalog.model("llama-3.1-8b"), cpu, 1, "decode", 1, 1, 2048)
    assert res["totals"]["fits"] is True
    # 16.06 GB of weights over 614.4 GB/s · 0.8: ≈ 33 ms per token, memory-bound
    assert res["totals"]["latency_s"] == pytest.approx(16.06e9 / (614.4e9 * 0.8), rel=0.25)
    assert {o["bound"] for o in res["operators"] if o["name"] == "ffn"} == {"memory"}


def test_weight_quantisation_shrinks_weight_bytes(catalog: Catalog) -> None:
    model = catalog.model("llama-3.1-70b")
    bf16 = weight_bytes(model, BF16)
    fp8 = weight_bytes(model, Precision(Dtype.fp8, Dtype.bf16))
    int4 = weight_bytes(model, Precision(Dtype.int4, Dtype.bf16))
    embed = 128256 * 8192 * 2  # the embedding table stays 16-bit
    assert fp8 - embed == pytest.approx((bf16 - embed) / 2)
    assert int4 - embed == pytest.approx((bf16 - embed) / 4)


def test_sliding_window_layers_cap_the_kv_capacity(catalog: Catalog) -> None:
    model = catalog.model("gpt-oss-120b")  # 18 of 36 layers keep only the last 128 tokens
    p = Precision(model.weight_dtype, model.kv_dtype)
    per_token_all_layers = float(kv_bytes_per_token(model, p))  # 36 layers · 2·8·64 · 2 B = 73,728 B
    assert per_token_all_layers == 36 * 2 * 8 * 64 * 2
    mem, ctx = np.array([80.0]), np.array([32768.0])
    from hetplace.costmodels.capacity import free_bytes_for_kv

    free = free_bytes_for_kv(model, p, mem, np.array([1.0]))[0]
    kept_tokens = 0.5 * 32768 + 0.5 * 128
    assert max_batch(model, p, mem, np.array([1.0]), ctx)[0] == np.floor(free / (per_token_all_layers * kept_tokens))
