"""The per-layer step overhead (engine_terms.ServingParams.layer_overhead_s): added layers × value to every pass,
shown as its own term by `analyze`, fittable (serving_fit.OVERHEAD_FORMS), and absent from old calibration files
without changing them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.calibration_schema import CalibrationFile
from hetplace.catalogs.loader import Catalog, bundled_dir, load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.catalogs.serving_measurements import ServingRow
from hetplace.cli import app
from hetplace.costmodels.engine_terms import (
    NEUTRAL,
    NEUTRAL_ARRAYS,
    EngineArrays,
    ServingParams,
    isolate,
    pass_layers,
    pass_overhead_s,
    serving_params,
)
from hetplace.costmodels.llm_ops import Shape, llm_operators
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.serving import serving_estimate
from hetplace.costmodels.serving_fit import (
    OVERHEAD_FORMS,
    CaseCache,
    MappedRow,
    PairFit,
    device_transfer,
    fit_params_for,
    fit_serving,
    map_rows,
    predict_rows,
)

ENGINES = load_engines()
runner = CliRunner()
BF16 = Precision(Dtype.bf16, Dtype.bf16)
PER_LAYER_S = 50e-6  # the toy's true per-layer overhead


def test_a_pass_has_the_models_layer_count(catalog: Catalog) -> None:
    """Norms and attention span every layer; the all-reduce row (2 calls per layer) is not a layer count."""
    for model, layers in (("llama-3.1-8b", 32), ("llama-3.1-70b", 80), ("llama-3.1-405b", 126),
                          ("deepseek-v3", 61), ("gpt-oss-120b", 36)):  # fmt: skip
        ops = llm_operators(catalog.models[model], Shape.of(4.0, 1, 1000, 8), BF16)
        assert pass_layers(ops) == layers == catalog.models[model].num_layers


def test_pass_overhead_is_step_plus_layers_times_layer_and_neutral_adds_exactly_zero(catalog: Catalog) -> None:
    ops = llm_operators(catalog.models["llama-3.1-70b"], Shape.of(1.0, 1, 100, 4), BF16)
    h100 = catalog.devices["h100-sxm"]
    both = EngineArrays.of([ServingParams(step_overhead_s=1e-3, layer_overhead_s=PER_LAYER_S)], [h100], [Dtype.bf16])
    assert float(np.asarray(pass_overhead_s(both, ops))[0]) == pytest.approx(1e-3 + 80 * 50e-6, rel=1e-15)  # 5 ms
    step = EngineArrays.of([ServingParams(step_overhead_s=3e-3)], [h100], [Dtype.bf16])
    assert float(np.asarray(pass_overhead_s(step, ops))[0]) == 3e-3  # x + 0.0·80 is x, bit for bit
    assert pass_overhead_s(NEUTRAL_ARRAYS, ops) == 0.0


def estimate(catalog: Catalog, model: str, tp: int, params: ServingParams, mode: str = "batch"):
    return serving_estimate(
        catalog.models[model], catalog.devices["h100-sxm"], tp, BF16, 1000.0, 100.0, mode, 8.0, params
    )


@pytest.mark.parametrize(("model", "tp", "layers"), [("llama-3.1-8b", 1, 32), ("llama-3.1-70b", 4, 80)])
def test_serving_estimate_pays_the_layer_overhead_on_every_pass(catalog: Catalog, model: str, tp: int,
                                                               layers: int) -> None:  # fmt: skip
    params = ServingParams(layer_overhead_s=PER_LAYER_S)
    plain, with_layers = estimate(catalog, model, tp, NEUTRAL), estimate(catalog, model, tp, params)
    extra = layers * PER_LAYER_S  # 1.6 ms on 32 layers, 4.0 ms on 80
    assert with_layers.tpot_s == pytest.approx(plain.tpot_s + extra, rel=1e-12)
    assert with_layers.ttft_s == pytest.approx(plain.ttft_s + extra, rel=1e-12)  # the batch's prefill pass
    terms = with_layers.terms["layer_overhead"]
    assert terms["tpot_s"] == pytest.approx(extra) and terms["e2e_latency_s"] == pytest.approx(100 * extra)
    assert with_layers.terms["step_overhead"] == {"ttft_s": 0.0, "tpot_s": 0.0, "e2e_latency_s": 0.0}
    assert isolate(params, "layer_overhead") == params and isolate(params, "step_overhead") == NEUTRAL
    conc = estimate(catalog, model, tp, params, "concurrency")  # TTFT = half the step in flight + the joined step
    assert conc.terms["layer_overhead"]["ttft_s"] == pytest.approx(1.5 * extra)


# ---------------------------------------------------------------- two models, one device and engine


def step_row(model: str, tp: int, value: float) -> ServingRow:
    """A measured decode step at batch 1 and a short context (attention is negligible: only the overhead counts)."""
    return ServingRow.model_validate({
        "source_id": "toy", "url": "https://example.org/toy", "published": "2026-01", "device": "h100-sxm",
        "model": model, "engine": "vllm", "weight_dtype": "bf16", "kv_dtype": "bf16", "tp": tp, "isl": 16,
        "osl": 2, "mode": "batch", "load": 1, "metric": "tpot_s", "value": value,
    })  # fmt: skip


TOY = (("llama-3.1-8b", 1, 32), ("llama-3.1-70b", 4, 80))


def toy_rows(catalog: Catalog) -> list[MappedRow]:
    """Measured step = the roofline's step + layers × 50 µs: +1.6 ms on the 8B, +4.0 ms on the 70B."""
    neutral_rows, _ = map_rows([step_row(m, tp, 1.0) for m, tp, _ in TOY], catalog, ENGINES)
    neutral = [p.predicted for p in predict_rows(neutral_rows, lambda _: NEUTRAL, CaseCache(catalog))]
    measured = [t + layers * PER_LAYER_S for t, (_, _, layers) in zip(neutral, TOY, strict=True)]
    rows, skipped = map_rows([step_row(m, tp, v) for (m, tp, _), v in zip(TOY, measured, strict=True)], catalog,
                             ENGINES)  # fmt: skip
    assert not skipped and len(rows) == 2
    return rows


def test_per_layer_overhead_reproduces_two_depths_and_per_step_cannot(catalog: Catalog) -> None:
    rows = toy_rows(catalog)
    cache = CaseCache(catalog)

    def relative_errors(params: ServingParams) -> list[float]:
        return [p.predicted / p.measured - 1.0 for p in predict_rows(rows, lambda _: params, cache)]

    assert relative_errors(ServingParams(layer_overhead_s=PER_LAYER_S)) == pytest.approx([0.0, 0.0], abs=1e-12)
    # A per-step constant must be 1.6 ms for the 8B and 4.0 ms for the 70B: either one misses the other model.
    for step_s in (32 * PER_LAYER_S, 80 * PER_LAYER_S):
        assert max(abs(e) for e in relative_errors(ServingParams(step_overhead_s=step_s))) > 0.08
    # Fitted (prior negligible): the per-layer form finds 50 µs and both steps; the per-step form lands between
    # 1.6 and 4.0 ms, too slow on the shallow model and too fast on the deep one.
    layer = fit_serving(rows, cache, prior_weight=1e-6, overhead_form="layer").params("h100-sxm", "vllm")
    assert layer.layer_overhead_s == pytest.approx(PER_LAYER_S, rel=0.03) and layer.step_overhead_s == 0.0
    assert max(abs(e) for e in relative_errors(layer)) < 0.01
    step = fit_serving(rows, cache, prior_weight=1e-6, overhead_form="step").params("h100-sxm", "vllm")
    assert 1.6e-3 < step.step_overhead_s < 4.0e-3 and step.layer_overhead_s == 0.0
    shallow, deep = relative_errors(step)
    assert shallow > 0.03 and deep < -0.03


def test_fit_params_per_overhead_form(catalog: Catalog) -> None:
    models, devices = [catalog.models["llama-3.1-8b"]], [catalog.devices["h100-sxm"]]
    head = {form: fit_params_for(models, devices, [Dtype.bf16], form)[:2] for form in OVERHEAD_FORMS}
    assert head == {
        "step": ["step_overhead_s", "ttft_overhead_s"],
        "layer": ["layer_overhead_s", "ttft_overhead_s"],
        "step+layer": ["step_overhead_s", "layer_overhead_s"],
    }


def test_device_transfer_moves_the_layer_overhead_by_the_devices_ratio() -> None:
    """MI300X under SGLang shows 3× SGLang's per-layer overhead: under vLLM (no rows) it gets 3× vLLM's."""

    def fit(pair: tuple[str, str], **values: float) -> PairFit:
        return PairFit(pair, ServingParams(**values), ("layer_overhead_s",), 10, 0.0)

    engines = {"sglang": fit(("*", "sglang"), layer_overhead_s=20e-6), "vllm": fit(("*", "vllm"),
               layer_overhead_s=10e-6)}  # fmt: skip
    pairs = {("mi300x", "sglang"): fit(("mi300x", "sglang"), layer_overhead_s=60e-6)}
    moved = device_transfer(pairs, engines)[("mi300x", "vllm")]
    assert moved.layer_overhead_s == pytest.approx(30e-6, rel=1e-12) and moved.step_overhead_s == 0.0


# ---------------------------------------------------------------- files and the CLI

# a (device, engine) entry as calibration files were written before layer_overhead_s existed
OLD_ENTRY: dict[str, Any] = {
    "step_overhead_s": 0.0018865054004630175, "ttft_overhead_s": 0.06317740971984853, "decode_attention_eta": 0.9,
    "moe_gemm_eta": 1.0, "fp8_gemm_eta": 1.0, "int8_gemm_eta": 1.0, "fp4_gemm_eta": 1.0, "link_latency_s": None,
    "nic_latency_s": None, "link_efficiency": None, "nic_efficiency": None, "compute_eta": 0.95,
}  # fmt: skip


def gemm_calibration(tmp_path: Path, serving: dict) -> Path:
    data = yaml.safe_load((bundled_dir("calibrations") / "vidur-gemm-fp16.yaml").read_text())
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump({**data, "serving": serving}))
    return path


def test_an_old_calibration_file_loads_unchanged(tmp_path: Path) -> None:
    path = gemm_calibration(tmp_path, {"h100-sxm": {"vllm": OLD_ENTRY}})
    cal = CalibrationFile.model_validate(yaml.safe_load(path.read_text()))
    params = serving_params("h100-sxm", "vllm", ENGINES, cal)
    assert params == ServingParams(**OLD_ENTRY) and params.layer_overhead_s == 0.0


def analyze(*args: str) -> dict:
    base = ["analyze", "--model", "llama-3.1-70b", "--device", "h100-sxm", "--tp", "4", "--isl", "500", "--osl",
            "100", "--batch", "8"]  # fmt: skip
    result = runner.invoke(app, [*base, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_analyze_shows_the_layer_overhead_term(tmp_path: Path) -> None:
    """50 µs per layer on the 80-layer 70B: 4 ms per pass, 100 × 4 ms over a batch of OSL 100 (prefill + 99 steps)."""
    cal = gemm_calibration(tmp_path, {"h100-sxm": {"vllm": {"layer_overhead_s": PER_LAYER_S}}})
    plain = analyze("--calibration", str(cal), "--engine", "none")
    vllm = analyze("--calibration", str(cal), "--engine", "vllm")
    assert vllm["totals"]["terms"]["layer_overhead"] == pytest.approx(0.004)
    assert vllm["totals"]["terms"]["step_overhead"] == 0.0
    assert vllm["totals"]["latency_s"] == pytest.approx(plain["totals"]["latency_s"] + 0.004, rel=1e-12)
    assert vllm["serving"]["tpot_s"] == pytest.approx(plain["serving"]["tpot_s"] + 0.004, rel=1e-12)
    assert vllm["serving"]["terms"]["layer_overhead"]["e2e_latency_s"] == pytest.approx(100 * 0.004)
    text = runner.invoke(app, ["analyze", "--model", "llama-3.1-70b", "--device", "h100-sxm", "--tp", "4",
                               "--calibration", str(cal), "--engine", "vllm"])  # fmt: skip
    assert text.exit_code == 0 and "layer_overhead" in text.stdout
