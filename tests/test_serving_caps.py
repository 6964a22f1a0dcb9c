"""Engine scheduler caps in the serving estimate (catalogs/engines `scheduler`, capacity.engine_limits,
serving.serving_estimate): max-load = min(KV capacity, the engine's running cap, its steady-state token budget),
chunked prefill under the token budget, requests beyond the running cap waiting for a slot. Numbers by hand from
the catalog's engine defaults and the model/device fields."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.engine_schema import Engine
from hetplace.catalogs.loader import Catalog, bundled_dir, load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.common.io import load_mapping, parse_model
from hetplace.costmodels.capacity import NO_LIMITS, EngineLimits, engine_limits
from hetplace.costmodels.llm_ops import weight_bytes
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.serving import mixed_step_s, serving_estimate

ENGINES = load_engines()

FP8_WEIGHTS = Precision(Dtype.fp8, Dtype.bf16)
BF16 = Precision(Dtype.bf16, Dtype.bf16)
FP8_ALL = Precision(Dtype.fp8, Dtype.fp8)

# llama-3.1-8b: 32 layers · 2 (K, V) · 8 KV heads · 128 · 2 bytes = 131,072 KV bytes per token (bf16 KV);
# workspace 4 buffers · 8192 tokens · 14,336 (FFN width) · 2 bytes = 939,524,096 bytes (capacity.workspace_bytes)
KV_PER_TOKEN_8B = 32 * 2 * 8 * 128 * 2
WORKSPACE_8B = 4 * 8192 * 14336 * 2


def limits(catalog: Catalog, engine: str, device: str, model: str, precision: Precision, tp: int = 1) -> EngineLimits:
    return engine_limits(ENGINES[engine].scheduler, catalog.devices[device], catalog.models[model], precision, tp)


def test_vllm_defaults_follow_the_gpu(catalog: Catalog) -> None:
    """vLLM 0.10.2/0.11.0 arg_utils.py: >= 70 GiB and not an A100 -> 1024 seqs / 8192 tokens, else 256 / 2048."""
    for device, seqs, tokens in [
        ("h100-sxm", 1024, 8192),  # 80 GB = 74.5 GiB
        ("mi300x", 1024, 8192),
        ("b200", 1024, 8192),
        ("a100-80gb-sxm", 256, 2048),  # 74.5 GiB but an A100
        ("l4", 256, 2048),  # 24 GB
    ]:
        lim = limits(catalog, "vllm", device, "llama-3.1-8b", BF16)
        assert (lim.max_running_seqs, lim.max_tokens_per_step) == (seqs, tokens), device
        assert lim.decode_tokens_in_budget and lim.chunked_prefill
    trt = limits(catalog, "tensorrt-llm", "h100-sxm", "llama-3.1-8b", BF16)
    assert (trt.max_running_seqs, trt.max_tokens_per_step, trt.chunked_prefill) == (2048, 8192, False)


def test_sglang_request_pool_is_sized_from_the_kv_cache(catalog: Catalog) -> None:
    """SGLang 0.5.2 model_runner.py: min(max(int(KV tokens / context_len · 512), 2048), 4096) requests."""
    model = catalog.models["llama-3.1-8b"]
    weights_bf16 = 8.03e9 * 2  # about 16 GB: the exact count below comes from the catalog's architecture
    weights = float(weight_bytes(model, BF16))
    assert weights == pytest.approx(weights_bf16, rel=0.01)
    # H100: (72e9 − weights − workspace) / 131,072 ≈ 420k tokens → 420k · 512 / 131,072 ≈ 1,640 → the floor 2048
    h100_tokens = math.floor((80e9 * 0.9 - weights - WORKSPACE_8B) / KV_PER_TOKEN_8B)
    assert math.floor(h100_tokens * 512 / 131072) < 2048
    assert limits(catalog, "sglang", "h100-sxm", "llama-3.1-8b", BF16).max_running_seqs == 2048
    # H200 (141 GB): ≈ 838k tokens → 3,275 requests, inside the clamp
    h200_tokens = math.floor((141e9 * 0.9 - weights - WORKSPACE_8B) / KV_PER_TOKEN_8B)
    expected = math.floor(h200_tokens * 512 / 131072)
    assert 2048 < expected < 4096
    assert limits(catalog, "sglang", "h200-sxm", "llama-3.1-8b", BF16).max_running_seqs == expected
    # MI300X (192 GB): ≈ 1.19M tokens → above 4096: the ceiling; chunked_prefill_size 16384 at >= 160 GiB
    sg = limits(catalog, "sglang", "mi300x", "llama-3.1-8b", BF16)
    assert (sg.max_running_seqs, sg.max_tokens_per_step, sg.decode_tokens_in_budget) == (4096, 16384, False)


def test_engine_cap_binds_for_a_small_model_on_a_big_gpu(catalog: Catalog) -> None:
    """Llama-3.1-8B fp8 on one H100 at 128/128: the KV cache holds 1,862 sequences, vLLM runs 1,024."""
    model, h100 = catalog.models["llama-3.1-8b"], catalog.devices["h100-sxm"]
    free = 80e9 * 0.9 - float(weight_bytes(model, FP8_WEIGHTS)) - WORKSPACE_8B
    kv_seqs = math.floor(free / (KV_PER_TOKEN_8B * 256))
    assert kv_seqs == 1862
    vllm = limits(catalog, "vllm", "h100-sxm", "llama-3.1-8b", FP8_WEIGHTS)
    est = serving_estimate(model, h100, 1, FP8_WEIGHTS, 128, 128, "max-load", limits=vllm)
    assert (est.batch, est.max_batch, est.batch_bound_by) == (1024, 1862, "engine_max_running_seqs")
    assert est.fits and est.in_flight == 1024 and est.prefill_chunks == 1
    # steady state at C = 1024: each step decodes 1024 tokens at context 128 + 64 and prefills 1024/128 = 8 prompts
    tpot = mixed_step_s(model, FP8_WEIGHTS, h100, 1, 1024, 192, 8, 128)
    ttft = tpot / 2 + mixed_step_s(model, FP8_WEIGHTS, h100, 1, 1024, 192, 1, 128)
    e2e = ttft + 127 * tpot
    assert est.tpot_s == pytest.approx(tpot, rel=1e-12) and est.ttft_s == pytest.approx(ttft, rel=1e-12)
    assert est.output_tokens_per_s == pytest.approx(1024 * 128 / e2e, rel=1e-12)
    # no engine: the plain KV wall, 1,862 sequences, more tokens/s than the engine's 1,024 (the overstatement)
    plain = serving_estimate(model, h100, 1, FP8_WEIGHTS, 128, 128, "max-load")
    assert (plain.batch, plain.batch_bound_by) == (1862, "kv_capacity")
    assert plain.output_tokens_per_s > est.output_tokens_per_s


def test_kv_capacity_binds_for_a_large_model_unchanged(catalog: Catalog) -> None:
    """Llama-3.1-70B bf16 on 4 H100 at 1000/1000: ~210 sequences fit, below every engine's cap, so each engine's
    max-load is the plain KV-capacity estimate, number for number."""
    model, h100 = catalog.models["llama-3.1-70b"], catalog.devices["h100-sxm"]
    plain = serving_estimate(model, h100, 4, BF16, 1000, 1000, "max-load")
    for engine in ("vllm", "sglang", "tensorrt-llm"):
        est = serving_estimate(
            model,
            h100,
            4,
            BF16,
            1000,
            1000,
            "max-load",
            limits=limits(catalog, engine, "h100-sxm", "llama-3.1-70b", BF16, 4),
        )
        assert est.batch == plain.batch == plain.max_batch < 256 and est.batch_bound_by == "kv_capacity"
        assert est.output_tokens_per_s == plain.output_tokens_per_s and est.ttft_s == plain.ttft_s


def test_token_budget_caps_the_steady_decode_batch(catalog: Catalog) -> None:
    """vLLM on MI300X, Llama-3.1-8B fp8 with fp8 KV, 2048/256: the KV cache holds 1,085 sequences and the running
    cap is 1,024, but a step of 8,192 tokens holds d decode tokens and d/256 prompts of 2,048 tokens only while
    d · (1 + 2048/256) ≤ 8192: d = floor(8192 · 256 / 2304) = 910."""
    model, mi300x = catalog.models["llama-3.1-8b"], catalog.devices["mi300x"]
    vllm = limits(catalog, "vllm", "mi300x", "llama-3.1-8b", FP8_ALL)
    est = serving_estimate(model, mi300x, 1, FP8_ALL, 2048, 256, "max-load", limits=vllm)
    assert est.max_batch > 1024 and est.batch == 910 and est.batch_bound_by == "engine_max_tokens_per_step"
    tokens_per_step = est.batch + est.prefill_prompts_per_step * 2048
    assert tokens_per_step <= 8192 < (est.batch + 1) * (1 + 2048 / 256)


def test_long_prompt_is_split_over_the_token_budget(catalog: Catalog) -> None:
    """vLLM on an A100 (budget 2,048 tokens), 4 in flight, 8,000-token prompts: the step has 2,048 − 4 = 2,044 tokens
    of room, so a prompt is prefilled over ceil(8000 / 2044) = 4 steps, each also decoding the 4 running sequences:
    TTFT = TPOT/2 + 4 · step(4 decode tokens, a quarter of the prompt)."""
    model, a100 = catalog.models["llama-3.1-8b"], catalog.devices["a100-80gb-sxm"]
    vllm = limits(catalog, "vllm", "a100-80gb-sxm", "llama-3.1-8b", BF16)
    est = serving_estimate(model, a100, 1, BF16, 8000, 100, "concurrency", 4, limits=vllm)
    assert est.prefill_chunks == 4 and est.batch == 4
    context = 8000 + 50
    tpot = mixed_step_s(model, BF16, a100, 1, 4, context, 4 / 100, 8000)
    quarter = mixed_step_s(model, BF16, a100, 1, 4, context, 0.25, 8000)
    assert est.tpot_s == pytest.approx(tpot, rel=1e-12)
    assert est.ttft_s == pytest.approx(tpot / 2 + 4 * quarter, rel=1e-12)
    # in one piece (no engine): one step carrying the whole prompt; the 4 chunks read the weights 4 times
    whole = serving_estimate(model, a100, 1, BF16, 8000, 100, "concurrency", 4)
    assert whole.prefill_chunks == 1 and whole.tpot_s == pytest.approx(tpot, rel=1e-12)
    assert whole.ttft_s == pytest.approx(tpot / 2 + mixed_step_s(model, BF16, a100, 1, 4, context, 1, 8000))
    assert est.ttft_s > whole.ttft_s
    # TensorRT-LLM's trtllm-serve default has chunked prefill off: the prompt goes in one step
    trt = limits(catalog, "tensorrt-llm", "a100-80gb-sxm", "llama-3.1-8b", BF16)
    assert serving_estimate(model, a100, 1, BF16, 8000, 100, "concurrency", 4, limits=trt).prefill_chunks == 1


def test_requests_beyond_the_running_cap_wait_for_a_slot(catalog: Catalog) -> None:
    """vLLM on an A100 runs 256 sequences; with 512 in flight the other 256 wait a whole slot's time (TTFT +
    127 TPOT at 256 running): e2e doubles, throughput stays that of 256 running (Little's law)."""
    model, a100 = catalog.models["llama-3.1-8b"], catalog.devices["a100-80gb-sxm"]
    vllm = limits(catalog, "vllm", "a100-80gb-sxm", "llama-3.1-8b", BF16)
    at_cap = serving_estimate(model, a100, 1, BF16, 128, 128, "concurrency", 256, limits=vllm)
    over = serving_estimate(model, a100, 1, BF16, 128, 128, "concurrency", 512, limits=vllm)
    assert (over.batch, over.in_flight, over.batch_bound_by) == (256, 512, "engine_max_running_seqs")
    assert over.tpot_s == at_cap.tpot_s
    assert over.e2e_latency_s == pytest.approx(2 * at_cap.e2e_latency_s, rel=1e-12)
    assert over.ttft_s == pytest.approx(at_cap.e2e_latency_s + at_cap.ttft_s, rel=1e-12)
    assert over.output_tokens_per_s == pytest.approx(at_cap.output_tokens_per_s, rel=1e-12)
    assert at_cap.batch_bound_by == "load"


def test_no_limits_is_the_plain_roofline(catalog: Catalog) -> None:
    """NO_LIMITS (engine none) reproduces the estimate without the argument, in every mode."""
    model, h100 = catalog.models["llama-3.1-8b"], catalog.devices["h100-sxm"]
    for mode, load in (("batch", 16), ("concurrency", 64), ("max-load", None)):
        a = serving_estimate(model, h100, 1, BF16, 512, 128, mode, load)
        b = serving_estimate(model, h100, 1, BF16, 512, 128, mode, load, limits=NO_LIMITS)
        assert a == b


def test_analyze_json_says_which_cap_bound_the_batch() -> None:
    runner = CliRunner()
    base = ["analyze", "--model", "llama-3.1-8b", "--device", "h100-sxm", "--dtype", "fp8", "--isl", "128",
            "--osl", "128", "--max-load", "--json"]  # fmt: skip
    vllm = json.loads(runner.invoke(app, base).stdout)["serving"]
    assert (vllm["batch"], vllm["max_batch"], vllm["batch_bound_by"]) == (1024, 1862, "engine_max_running_seqs")
    assert vllm["engine_limits"] == {"max_running_seqs": 1024, "max_tokens_per_step": 8192}
    none = json.loads(runner.invoke(app, [*base, "--engine", "none"]).stdout)["serving"]
    assert (none["batch"], none["batch_bound_by"], none["engine_limits"]["max_running_seqs"]) == (
        1862, "kv_capacity", None
    )  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"max_running_seqs": 0}, "scheduler.max_running_seqs"),
        ({"max_tokens_per_step": -8192}, "scheduler.max_tokens_per_step"),
        (
            {"rules": [{"min_device_mem_gib": 70, "below_device_mem_gib": 40, "max_running_seqs": 8}]},
            "scheduler.rules[0]",
        ),
        ({"maximum_seqs": 5}, "scheduler.maximum_seqs"),
    ],
)
def test_a_bad_scheduler_value_names_file_and_field(tmp_path: Path, edit: dict, field: str) -> None:
    data = load_mapping(bundled_dir("engines") / "vllm.yaml")
    data["scheduler"] = {**data["scheduler"], **edit}
    path = tmp_path / "vllm.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as err:
        parse_model(Engine, load_mapping(path), str(path))
    assert str(path) in str(err.value) and field in str(err.value)
