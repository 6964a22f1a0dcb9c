"""Engine terms (neutral defaults keep every number bit-identical; each term moves its operator by a hand-computed
amount) and the serving estimate's three modes, checked against the forward passes they are built from."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplace.catalogs.calibration_schema import ServingTerms
from hetplace.catalogs.loader import Catalog, load_engines
from hetplace.catalogs.schema import Device, Dtype, ModelArch
from hetplace.common.errors import InputError
from hetplace.costmodels.capacity import max_batch
from hetplace.costmodels.engine_terms import (
    LINK_EFFICIENCY,
    NEUTRAL,
    TERMS,
    EngineArrays,
    ServingParams,
    from_terms,
    isolate,
    serving_params,
)
from hetplace.costmodels.llm_ops import COMM, Shape
from hetplace.costmodels.llm_perf import PassResult, evaluate_pass, phase_shape
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.roofline import DeviceArrays
from hetplace.costmodels.serving import ServingMode, mixed_step_s, serving_estimate

BF16 = Precision(Dtype.bf16, Dtype.bf16)


def one_pass(
    model: ModelArch, device: Device, shape: Shape, precision: Precision = BF16, params: ServingParams | None = None
) -> PassResult:
    dev = DeviceArrays.of([device], [precision.weight])
    mem = np.array([device.mem_gb])
    if params is None:
        return evaluate_pass(model, precision, shape, dev, mem)
    return evaluate_pass(model, precision, shape, dev, mem, EngineArrays.of([params], [device], [precision.weight]))


def op(res: PassResult, name: str) -> tuple[float, float, float]:
    """(latency, compute, memory) seconds of operator `name`."""
    t = next(t for t in res.timings if t.name == name)
    return float(t.latency_s[0]), float(t.compute_s[0]), float(t.memory_s[0])


# ---- neutral defaults ------------------------------------------------------------------------------------------


def test_schema_terms_mirror_the_params_and_default_to_neutral() -> None:
    assert [f.name for f in fields(ServingParams)] == list(ServingTerms.model_fields)
    assert from_terms(ServingTerms()) == NEUTRAL == ServingParams()
    assert {f for group in TERMS.values() for f in group} == {f.name for f in fields(ServingParams)}


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("model_id", ["llama-3.1-70b", "qwen3-30b-a3b", "deepseek-v3"])
def test_neutral_params_are_bit_identical_over_a_menu(catalog: Catalog, model_id: str, phase: str) -> None:
    """A whole menu (devices × tp inside and beyond the scale-up domain × batch) with explicit neutral engine
    arrays equals the call without them, bit for bit: the optimizer's menus cannot move."""
    model = catalog.model(model_id)
    devices = [catalog.device(d) for d in ("h100-sxm", "mi300x", "a100-80gb-sxm", "l4")]
    dev_idx, tp, batch = (
        a.ravel() for a in np.meshgrid(np.arange(4), [1.0, 4.0, 8.0, 16.0], [1.0, 32.0, 256.0], indexing="ij")
    )
    dev = DeviceArrays.of(devices, [Dtype.bf16] * 4).take(dev_idx)
    engine = EngineArrays.of([NEUTRAL] * 4, devices, [Dtype.bf16] * 4).take(dev_idx)
    mem = np.array([d.mem_gb for d in devices])[dev_idx]
    shape = phase_shape(phase, batch, 3000, 1000, 5000, tp)
    plain = evaluate_pass(model, BF16, shape, dev, mem)
    neutral = evaluate_pass(model, BF16, shape, dev, mem, engine)
    assert np.array_equal(plain.latency_s, neutral.latency_s, equal_nan=True)
    for a, b in zip(plain.timings, neutral.timings, strict=True):
        assert np.array_equal(a.latency_s, b.latency_s, equal_nan=True), a.name


# ---- each term moves its operator by a hand-computed amount ----------------------------------------------------


def test_step_overhead_adds_once_per_pass_and_to_no_operator(catalog: Catalog) -> None:
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    shape = Shape.of(8, 1, 2048, 1)
    plain, with_step = (
        one_pass(model, h100, shape),
        one_pass(model, h100, shape, params=ServingParams(step_overhead_s=3e-3)),
    )
    assert with_step.latency_s[0] == pytest.approx(plain.latency_s[0] + 3e-3, rel=1e-12)
    assert all(np.array_equal(a.latency_s, b.latency_s) for a, b in zip(plain.timings, with_step.timings, strict=True))


def test_decode_attention_eta_divides_the_decode_kv_read_only(catalog: Catalog) -> None:
    """Llama-3.1-8B decode, batch 8 at context 2048 on one H100: the attention operator reads
    8 · 2049 positions · 2·8 KV heads·128 · 2 bytes · 32 layers = 2.149e9 bytes of KV (plus 8·32·128·2·2·32 bytes
    of q/o): memory-bound; at η_m 0.8 · 3.35e12 B/s that is 0.8024 ms. η multiplier 0.5 doubles it."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    decode = Shape.of(8, 1, 2048, 1)
    kv = 8 * 2049 * 2 * 8 * 128 * 2 * 32
    q_o = 2 * 8 * 32 * 128 * 2 * 32
    memory_s = (kv + q_o) / (3.35e12 * h100.efficiency.memory)
    plain = one_pass(model, h100, decode)
    slow = one_pass(model, h100, decode, params=ServingParams(decode_attention_eta=0.5))
    assert op(plain, "attention")[2] == pytest.approx(memory_s, rel=1e-12)
    assert op(slow, "attention")[0] - op(plain, "attention")[0] == pytest.approx(memory_s, rel=1e-9)
    assert slow.latency_s[0] - plain.latency_s[0] == pytest.approx(memory_s, rel=1e-9)  # nothing else moved
    prefill = Shape.of(1, 2048, 0, 1)  # prefill attention is untouched
    assert np.array_equal(
        one_pass(model, h100, prefill).latency_s,
        one_pass(model, h100, prefill, params=ServingParams(decode_attention_eta=0.5)).latency_s,
    )


def test_moe_gemm_eta_scales_the_routed_experts_only(catalog: Catalog) -> None:
    model, h100 = catalog.model("qwen3-30b-a3b"), catalog.device("h100-sxm")
    shape = Shape.of(64, 1, 2048, 1)
    plain = one_pass(model, h100, shape)
    slow = one_pass(model, h100, shape, params=ServingParams(moe_gemm_eta=0.5))
    lat, compute, memory = op(plain, "moe_experts")
    assert model.moe is not None
    overhead = h100.efficiency.kernel_overhead_us * 1e-6 * (model.num_layers - model.moe.dense_layers)
    assert lat == pytest.approx(max(compute, memory) + overhead, rel=1e-12)
    # both η_c and η_m halve: the roofline max doubles, the launch overhead stays
    assert op(slow, "moe_experts")[0] == pytest.approx(2 * max(compute, memory) + overhead, rel=1e-12)
    assert slow.latency_s[0] - plain.latency_s[0] == pytest.approx(max(compute, memory), rel=1e-9)
    for name in ("moe_router", "attention", "lm_head"):
        assert op(slow, name) == op(plain, name)


def test_low_precision_eta_scales_gemm_compute_in_that_format_only(catalog: Catalog) -> None:
    """fp8 prefill of 4 × 2048 tokens on H100: every weight GEMM's compute time doubles at fp8_gemm_eta 0.5; the
    memory time, attention and bf16 deployments do not move; int8/fp4 multipliers do not touch fp8."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    fp8 = Precision(Dtype.fp8, Dtype.bf16)
    shape = Shape.of(4, 2048, 0, 1)
    plain = one_pass(model, h100, shape, fp8)
    slow = one_pass(model, h100, shape, fp8, ServingParams(fp8_gemm_eta=0.5))
    for name in ("qkv_proj", "o_proj", "ffn", "lm_head"):
        assert op(slow, name)[1] == pytest.approx(2 * op(plain, name)[1], rel=1e-12)
        assert op(slow, name)[2] == op(plain, name)[2]
    # ffn: 2 · 8192 tokens · 32·3·4096·14336 params / (1979e12 · η_c) FLOPs, x2
    ffn_flops = 2.0 * 4 * 2048 * 32 * 3 * 4096 * 14336
    assert op(plain, "ffn")[1] >= ffn_flops / (1979e12 * h100.efficiency.compute) * (1 - 1e-12)
    assert op(slow, "attention") == op(plain, "attention")
    others = ServingParams(int8_gemm_eta=0.5, fp4_gemm_eta=0.5)
    assert np.array_equal(one_pass(model, h100, shape, fp8, others).latency_s, plain.latency_s)
    assert np.array_equal(
        one_pass(model, h100, shape, BF16, ServingParams(fp8_gemm_eta=0.5)).latency_s,
        one_pass(model, h100, shape, BF16).latency_s,
    )


def test_collective_overrides_inside_and_across_the_scale_up_domain(catalog: Catalog) -> None:
    """Llama-3.1-8B decode at batch 1: all-reduce payload 1 token · 4096 · 2 bytes · 2 per layer · 32 layers =
    524,288 bytes in 64 calls. tp 4 (NVLink, 450 GB/s): 64 α + 2·3/4 · payload / (450e9 · eff).
    tp 16 spans two nodes: the NIC (400 Gb/s = 50 GB/s) with its own α and efficiency."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    payload = 1 * 4096 * 2 * 2 * 32

    def ring(alpha: float, bw: float, eff: float, tp: int) -> float:
        return 64 * alpha + 2 * (tp - 1) / tp * payload / (bw * eff)

    inside = Shape.of(1, 1, 2048, 4)
    assert op(one_pass(model, h100, inside), "allreduce")[0] == pytest.approx(ring(10e-6, 450e9, LINK_EFFICIENCY, 4))
    tuned = ServingParams(link_latency_s=3e-6, link_efficiency=0.5, nic_latency_s=1.0, nic_efficiency=0.01)
    assert op(one_pass(model, h100, inside, params=tuned), "allreduce")[0] == pytest.approx(ring(3e-6, 450e9, 0.5, 4))
    across = Shape.of(1, 1, 2048, 16)
    assert op(one_pass(model, h100, across), "allreduce")[0] == pytest.approx(ring(25e-6, 50e9, LINK_EFFICIENCY, 16))
    nic = ServingParams(nic_latency_s=40e-6, nic_efficiency=0.5, link_latency_s=1.0)
    assert op(one_pass(model, h100, across, params=nic), "allreduce")[0] == pytest.approx(ring(40e-6, 50e9, 0.5, 16))


def test_engine_arrays_follow_each_configs_device_and_dtype(catalog: Catalog) -> None:
    h100, a100 = catalog.device("h100-sxm"), catalog.device("a100-80gb-sxm")
    p = ServingParams(fp8_gemm_eta=0.5, int8_gemm_eta=0.25, link_latency_s=7e-6)
    arr = EngineArrays.of([p, p, p, NEUTRAL], [h100, h100, a100, h100], [Dtype.fp8, Dtype.bf16, Dtype.int8, Dtype.fp8])
    assert list(np.asarray(arr.gemm_eta)) == [0.5, 1.0, 0.25, 1.0]
    assert list(np.asarray(arr.link_latency_s)) == [7e-6, 7e-6, 7e-6, 10e-6]
    assert list(np.asarray(arr.take(np.array([3, 0])).gemm_eta)) == [1.0, 0.5]


def test_serving_params_resolution_and_unknown_engine() -> None:
    engines = load_engines()
    assert {"vllm", "sglang", "tensorrt-llm"} <= set(engines)
    assert serving_params("h100-sxm", None, engines) == NEUTRAL
    assert serving_params("h100-sxm", "vllm", engines) == NEUTRAL  # bundled engines ship neutral defaults
    with pytest.raises(InputError, match="unknown engine 'tgi'"):
        serving_params("h100-sxm", "tgi", engines)


# ---- serving estimate ------------------------------------------------------------------------------------------


def _cfg(model: ModelArch, device: Device, tp: int) -> Callable[[float, float, float, float], float]:
    """mixed_step_s(decode_seqs, context, prompts, isl) of a bf16 tp-way replica of `device`."""
    return functools.partial(mixed_step_s, model, BF16, device, tp)


def test_batch_mode_is_one_prefill_pass_then_osl_minus_one_decode_steps(catalog: Catalog) -> None:
    """Llama-3.1-8B, B = 16, ISL 1000, OSL 200 on one H100. TTFT = prefill pass of 16 × 1000 tokens; TPOT = decode
    step of 16 sequences at context 1000 + 200/2 = 1100; e2e = TTFT + 199 · TPOT; throughput = 16 · 200 / e2e."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    est = serving_estimate(model, h100, 1, BF16, 1000, 200, "batch", 16)
    ttft = float(one_pass(model, h100, Shape.of(16, 1000, 0, 1)).latency_s[0])
    tpot = float(one_pass(model, h100, Shape.of(16, 1, 1100, 1)).latency_s[0])
    assert (est.ttft_s, est.tpot_s) == (ttft, tpot)
    assert est.e2e_latency_s == pytest.approx(ttft + 199 * tpot, rel=1e-12)
    assert est.output_tokens_per_s == pytest.approx(16 * 200 / (ttft + 199 * tpot), rel=1e-12)
    assert est.output_tokens_per_s_per_device == est.output_tokens_per_s
    assert est.batch == 16 and est.prefill_prompts_per_step == 0 and est.fits
    # an 8B decode step at batch 16 is memory-bound: about 16 GB of weights at 0.8 · 3.35 TB/s ≈ 6 ms
    assert 5.5e-3 < tpot < 8e-3


def test_mixed_step_with_no_prompts_is_the_decode_step(catalog: Catalog) -> None:
    model, h100 = catalog.model("llama-3.1-70b"), catalog.device("h100-sxm")
    cfg = _cfg(model, h100, 4)
    decode = float(one_pass(model, h100, Shape.of(32, 1, 1500, 4)).latency_s[0])
    assert cfg(32, 1500, 0.0, 1000) == pytest.approx(decode, rel=1e-12)


def test_mixed_step_reads_weights_once_when_memory_bound(catalog: Catalog) -> None:
    """On a device with (practically) unlimited FLOPs every operator is memory-bound, so the mixed step's time is
    decode(C) + prefill(n prompts) − the weights-only pass (the weights would otherwise be counted twice)."""
    model = catalog.model("llama-3.1-8b")
    fast = catalog.device("h100-sxm").model_copy(
        update={"peak_tflops": {k: v * 1e9 for k, v in catalog.device("h100-sxm").peak_tflops.items()}}
    )
    dec = float(one_pass(model, fast, Shape.of(16, 1, 1100, 1)).latency_s[0])
    pre = float(one_pass(model, fast, Shape.of(0.08, 1000, 0, 1)).latency_s[0])
    weights_only = float(one_pass(model, fast, Shape.of(0.0, 1000, 0, 1)).latency_s[0])
    assert _cfg(model, fast, 1)(16, 1100, 0.08, 1000) == pytest.approx(dec + pre - weights_only, rel=1e-9)


def test_mixed_step_adds_the_prompt_compute_when_compute_bound(catalog: Catalog) -> None:
    """With (practically) unlimited bandwidth and no tile padding (no compute_units) every operator is
    compute-bound and FLOPs add: mixed = decode(C) + prefill(n) − the kernel overheads paid once, not twice
    (tp 1: the all-reduce row costs nothing, launches included)."""
    model = catalog.model("llama-3.1-8b")
    h100 = catalog.device("h100-sxm")
    wide = h100.model_copy(update={"mem_bw_gbs": h100.mem_bw_gbs * 1e9, "compute_units": None})
    dec = float(one_pass(model, wide, Shape.of(16, 1, 1100, 1)).latency_s[0])
    pre = float(one_pass(model, wide, Shape.of(0.5, 1000, 0, 1)).latency_s[0])
    res = one_pass(model, wide, Shape.of(16, 1, 1100, 1))
    overheads = h100.efficiency.kernel_overhead_us * 1e-6 * sum(o.layers for o in res.ops if o.kind != COMM)
    assert _cfg(model, wide, 1)(16, 1100, 0.5, 1000) == pytest.approx(dec + pre - overheads, rel=1e-9)


def test_concurrency_mode_rules(catalog: Catalog) -> None:
    """Llama-3.1-70B, C = 64, ISL 1000, OSL 500 on 4 H100s: 64/500 = 0.128 prompts mixed into each step at mean
    context 1250; TTFT = TPOT/2 + the step carrying one whole prompt; throughput = C · OSL / e2e."""
    model, h100 = catalog.model("llama-3.1-70b"), catalog.device("h100-sxm")
    est = serving_estimate(model, h100, 4, BF16, 1000, 500, ServingMode.concurrency, 64)
    cfg = _cfg(model, h100, 4)
    tpot = cfg(64, 1250, 0.128, 1000)
    join = cfg(64, 1250, 1.0, 1000)
    assert est.tpot_s == tpot and est.ttft_s == pytest.approx(tpot / 2 + join, rel=1e-12)
    e2e = est.ttft_s + 499 * tpot
    assert est.e2e_latency_s == pytest.approx(e2e, rel=1e-12)
    assert est.output_tokens_per_s == pytest.approx(64 * 500 / e2e, rel=1e-12)
    assert est.output_tokens_per_s_per_device == pytest.approx(64 * 500 / e2e / 4, rel=1e-12)
    assert est.prefill_prompts_per_step == pytest.approx(0.128)
    # the prompt tokens make the step slower than a pure decode step, and cheaper than decode + a separate prefill
    decode = float(one_pass(model, h100, Shape.of(64, 1, 1250, 4)).latency_s[0])
    prefill = float(one_pass(model, h100, Shape.of(0.128, 1000, 0, 4)).latency_s[0])
    assert decode < tpot < decode + prefill


def test_max_load_is_the_capacity_at_isl_plus_osl_and_fp8_kv_raises_it(catalog: Catalog) -> None:
    model, h100 = catalog.model("llama-3.1-70b"), catalog.device("h100-sxm")
    est = serving_estimate(model, h100, 4, BF16, 1000, 1000, "max-load")
    cap = float(max_batch(model, BF16, np.array([80.0]), np.array([4.0]), 2000.0)[0])
    assert est.batch == cap == est.max_batch and est.fits
    same = serving_estimate(model, h100, 4, BF16, 1000, 1000, "concurrency", int(cap))
    assert (same.ttft_s, same.tpot_s, same.output_tokens_per_s) == (est.ttft_s, est.tpot_s, est.output_tokens_per_s)
    fp8_kv = serving_estimate(model, h100, 4, Precision(Dtype.bf16, Dtype.fp8), 1000, 1000, "max-load")
    # the KV cache per sequence halves: twice the sequences fit in the same free memory (floor rounding aside)
    assert fp8_kv.batch in (2 * cap, 2 * cap + 1)
    over = serving_estimate(model, h100, 4, BF16, 1000, 1000, "batch", int(cap) + 1)
    assert not over.fits and over.max_batch == cap


def test_terms_report_what_each_term_alone_adds(catalog: Catalog) -> None:
    """Step overhead s: batch mode adds s to TTFT and TPOT, OSL · s to e2e; concurrency adds s to TPOT and
    1.5 s to TTFT (half a step of waiting plus the joined step). Neutral params report zeros."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    s = 2e-3
    params = ServingParams(step_overhead_s=s, link_latency_s=1.0)  # tp 1: no collectives, the term adds 0
    b = serving_estimate(model, h100, 1, BF16, 512, 128, "batch", 8, params).terms
    assert b["step_overhead"]["ttft_s"] == pytest.approx(s) and b["step_overhead"]["tpot_s"] == pytest.approx(s)
    assert b["step_overhead"]["e2e_latency_s"] == pytest.approx(128 * s)
    assert b["collectives"] == {"ttft_s": 0.0, "tpot_s": 0.0, "e2e_latency_s": 0.0}
    c = serving_estimate(model, h100, 1, BF16, 512, 128, "concurrency", 8, params).terms
    assert c["step_overhead"]["tpot_s"] == pytest.approx(s) and c["step_overhead"]["ttft_s"] == pytest.approx(1.5 * s)
    neutral = serving_estimate(model, h100, 1, BF16, 512, 128, "batch", 8).terms
    assert set(neutral) == set(TERMS) and all(v == 0.0 for t in neutral.values() for v in t.values())
    assert isolate(params, "step_overhead") == ServingParams(step_overhead_s=s)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("llama-3.1-8b", "h100-sxm", 1, 0, 10, "batch", 1), "ISL and OSL must be ≥ 1"),
        (("llama-3.1-8b", "h100-sxm", 1, 10, 10, "concurrency", None), "needs a load ≥ 1"),
        (("llama-3.1-405b", "l4", 1, 10, 10, "max-load", None), "not one sequence"),
        (("llama-3.1-8b", "h100-sxm", 3, 10, 10, "batch", 1), "tp=3 must divide"),
    ],
)
def test_serving_estimate_input_errors(catalog: Catalog, args: tuple, fragment: str) -> None:
    model_id, device_id, tp, isl, osl, mode, load = args
    with pytest.raises(InputError, match=fragment):
        serving_estimate(catalog.model(model_id), catalog.device(device_id), tp, BF16, isl, osl, mode, load)


@settings(max_examples=40, deadline=None)
@given(
    step=st.floats(0.0, 5e-3),
    attn=st.floats(0.2, 1.0),
    moe=st.floats(0.2, 1.0),
    fp8=st.floats(0.2, 1.0),
    alpha=st.floats(10e-6, 50e-6),
    eff=st.floats(0.2, 0.8),
    batch=st.sampled_from([1.0, 16.0, 256.0]),
    new_tokens=st.sampled_from([1.0, 512.0]),
)
def test_slower_terms_never_speed_an_operator_up(
    step: float, attn: float, moe: float, fp8: float, alpha: float, eff: float, batch: float, new_tokens: float
) -> None:
    """Terms that only add time or lower efficiency (≤ 1) never make any operator, nor the pass, faster."""
    from hetplace.catalogs.loader import load_catalog

    catalog = load_catalog()
    model, h100 = catalog.model("qwen3-30b-a3b"), catalog.device("h100-sxm")
    fp8_w = Precision(Dtype.fp8, Dtype.fp8)
    shape = Shape.of(batch, new_tokens, 1024, 4)
    params = ServingParams(step, attn, moe, fp8, 1.0, 1.0, alpha, alpha * 2, eff, eff)
    plain, slow = one_pass(model, h100, shape, fp8_w), one_pass(model, h100, shape, fp8_w, params)
    for a, b in zip(plain.timings, slow.timings, strict=True):
        assert b.latency_s[0] >= a.latency_s[0], a.name
    assert slow.latency_s[0] >= plain.latency_s[0] + step * (1 - 1e-12)


def test_compute_eta_scales_every_operators_compute_and_nothing_else(catalog: Catalog) -> None:
    """bf16 prefill of 4 × 2048 tokens on H100 at compute_eta 0.5: every operator's compute time doubles (weight
    GEMMs and attention alike), memory and communication times do not move; 1.0 is bit-identical."""
    model, h100 = catalog.model("llama-3.1-8b"), catalog.device("h100-sxm")
    shape = Shape.of(4, 2048, 0, 1)
    plain = one_pass(model, h100, shape)
    slow = one_pass(model, h100, shape, params=ServingParams(compute_eta=0.5))
    for a, b in zip(plain.timings, slow.timings, strict=True):
        assert float(b.compute_s[0]) == pytest.approx(2 * float(a.compute_s[0]), rel=1e-12), a.name
        assert float(b.memory_s[0]) == float(a.memory_s[0]) and float(b.comm_s[0]) == float(a.comm_s[0])
    ffn_flops = 2.0 * 4 * 2048 * 32 * 3 * 4096 * 14336  # ffn of 8192 tokens, 32 layers
    assert op(slow, "ffn")[1] >= ffn_flops / (989.5e12 * h100.efficiency.compute * 0.5) * (1 - 1e-12)
    same = one_pass(model, h100, shape, params=ServingParams(compute_eta=1.0))
    assert np.array_equal(same.latency_s, plain.latency_s)
