"""Serving calibration (costmodels/serving_fit.py, `calibrate --serving`): row → prediction mapping, recovery of
known terms from rows the model generated itself, leave-one-source-out isolation, CLI exit codes."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hetplace.catalogs.loader import Catalog, bundled_dir, load_calibration, load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.catalogs.serving_measurements import COLUMNS, ServingRow
from hetplace.cli import app
from hetplace.costmodels.engine_terms import NEUTRAL, ServingParams, from_terms, serving_params
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.serving import ServingEstimate, serving_estimate
from hetplace.costmodels.serving_fit import (
    CaseCache,
    MappedRow,
    Skipped,
    fit_serving,
    held_out,
    map_row,
    map_rows,
    predict_rows,
    source_group,
)

ENGINES = load_engines()
runner = CliRunner()
ISL, OSL = 1000.0, 200.0


def row(**kw: object) -> ServingRow:
    base: dict[str, object] = {
        "source_id": "src-a", "url": "https://example.org/x", "published": "2026-01", "device": "h100-sxm",
        "model": "llama-3.1-8b",
        "engine": "vllm", "weight_dtype": "bf16", "kv_dtype": "bf16", "tp": 1, "isl": ISL, "osl": OSL,
        "mode": "concurrency", "load": 8, "metric": "tpot_s", "value": 0.01,
    }  # fmt: skip
    return ServingRow.model_validate({**base, **kw})


def predict(r: ServingRow, catalog: Catalog, params: ServingParams = NEUTRAL) -> float:
    m = map_row(r, catalog, ENGINES)
    assert isinstance(m, MappedRow)
    (p,) = predict_rows([m], lambda _: params, CaseCache(catalog))
    return p.predicted


def estimate(catalog: Catalog, mode: str, load: float | None, params: ServingParams) -> ServingEstimate:
    """The library's serving estimate of the rows' default config (llama-3.1-8b on one H100, bf16)."""
    model, device = catalog.models["llama-3.1-8b"], catalog.devices["h100-sxm"]
    return serving_estimate(model, device, 1, Precision(Dtype.bf16, Dtype.bf16), ISL, OSL, mode, load, params)


PARAMS = ServingParams(step_overhead_s=0.003, ttft_overhead_s=0.05, decode_attention_eta=0.7)


@pytest.mark.parametrize(
    ("mode", "metric", "expected"),
    [
        ("batch", "ttft_s", lambda e: e.ttft_s),
        ("batch", "tpot_s", lambda e: e.tpot_s),
        ("batch", "itl_s", lambda e: e.tpot_s),
        ("concurrency", "e2e_latency_s", lambda e: e.ttft_s + (OSL - 1) * e.tpot_s),
        ("concurrency", "output_tokens_per_s", lambda e: 8 * OSL / (e.ttft_s + (OSL - 1) * e.tpot_s)),
        ("concurrency", "total_tokens_per_s", lambda e: e.output_tokens_per_s * (ISL + OSL) / OSL),
        ("concurrency", "requests_per_s", lambda e: e.output_tokens_per_s / OSL),
    ],
)
def test_each_metric_maps_onto_the_serving_estimate(catalog: Catalog, mode: str, metric: str, expected) -> None:
    e = estimate(catalog, mode, 8, PARAMS)
    assert predict(row(mode=mode, metric=metric), catalog, PARAMS) == pytest.approx(expected(e), rel=1e-12)


def test_offline_max_is_max_load_and_request_rate_obeys_littles_law(catalog: Catalog) -> None:
    e = estimate(catalog, "max-load", None, PARAMS)
    got = predict(row(mode="offline_max", load=None, metric="output_tokens_per_s"), catalog, PARAMS)
    assert got == pytest.approx(e.output_tokens_per_s, rel=1e-12)
    rate = 2.0  # requests/s: the concurrency C with C = rate · e2e(C) (fixed point, checked by the estimate at C)
    m = map_row(row(mode="request_rate", load=rate), catalog, ENGINES)
    assert isinstance(m, MappedRow) and m.case.rate
    pred = CaseCache(catalog).get(m.case).predict([PARAMS])
    c = float(pred.load[0])
    at_c = estimate(catalog, "concurrency", c, PARAMS)
    assert c > 1 and c == pytest.approx(rate * at_c.e2e_latency_s, rel=1e-3)
    assert float(pred.tpot_s[0]) == pytest.approx(at_c.tpot_s, rel=1e-12)


def test_mapping_rules_and_counted_skips(catalog: Catalog) -> None:
    trt = map_row(row(engine="trtllm"), catalog, ENGINES)
    other = map_row(row(engine="other"), catalog, ENGINES)
    assert isinstance(trt, MappedRow) and trt.engine == "tensorrt-llm"
    assert isinstance(other, MappedRow) and other.engine is None and other.pair is None
    oss = map_row(row(model="gpt-oss-120b", weight_dtype="fp4"), catalog, ENGINES)  # mxfp4 experts on Hopper
    assert isinstance(oss, MappedRow) and oss.case.weight == Dtype.bf16
    assert source_group("inferencex-app-fixture-2026-06") == source_group("inferencemax-artifacts-mantile")
    rows = [
        row(device="a100-80gb-sxm", weight_dtype="fp8"),  # Ampere has no fp8
        row(model="llama-3.1-405b", tp=1),  # weights exceed one device
        row(load=100000),  # KV cache of 100k sequences does not fit
        row(),
    ]
    mapped, skipped = map_rows(rows, catalog, ENGINES)
    assert len(mapped) == 1 and [s.reason.split(":")[0] for s in skipped] == [
        "unsupported dtype",
        "does not fit",
        "does not fit",
    ]
    assert all(isinstance(s, Skipped) for s in skipped)


def synthetic_rows(catalog: Catalog, params: ServingParams, source: str = "src-a") -> list[ServingRow]:
    """Rows the serving model itself predicts with `params`: two contexts, three loads, three metrics."""
    out = []
    for isl, osl in ((512.0, 256.0), (6000.0, 2000.0)):
        for load in (1.0, 12.0, 40.0):
            for metric in ("ttft_s", "tpot_s", "output_tokens_per_s"):
                r = row(source_id=source, isl=isl, osl=osl, load=load, metric=metric)
                out.append(r.model_copy(update={"value": predict(r, catalog, params)}))
    return out


LAYER_S = 0.004 / 32  # a 4 ms step overhead on the 32 layers of Llama-3.1-8B, as the fit's per-layer form


def test_fit_recovers_known_terms_and_the_prior_pulls_few_rows_towards_neutral(catalog: Catalog) -> None:
    truth = ServingParams(layer_overhead_s=LAYER_S, ttft_overhead_s=0.08, decode_attention_eta=0.6)
    mapped, _ = map_rows(synthetic_rows(catalog, truth), catalog, ENGINES)
    cache = CaseCache(catalog)
    fit = fit_serving(mapped, cache, prior_weight=1e-3).params("h100-sxm", "vllm")
    assert fit.layer_overhead_s == pytest.approx(LAYER_S, rel=0.05) and fit.step_overhead_s == 0.0
    step = fit_serving(mapped, cache, prior_weight=1e-3, overhead_form="step").params("h100-sxm", "vllm")
    assert step.step_overhead_s == pytest.approx(0.004, rel=0.05)  # one model: the two forms are the same step
    assert fit.ttft_overhead_s == pytest.approx(0.08, rel=0.05)
    assert fit.decode_attention_eta == pytest.approx(0.6, rel=0.05)
    assert (fit.moe_gemm_eta, fit.fp8_gemm_eta) == (1.0, 1.0)  # a dense bf16 model cannot see them: not fitted
    shrunk = fit_serving(mapped, cache).params("h100-sxm", "vllm")  # default prior, 18 rows
    assert 0.6 * 1.05 < shrunk.decode_attention_eta < 1.0 and shrunk.layer_overhead_s < LAYER_S


def test_leave_one_source_out_never_sees_the_left_out_rows(catalog: Catalog) -> None:
    truth = ServingParams(step_overhead_s=0.004, decode_attention_eta=0.6)
    mantile = synthetic_rows(catalog, truth, "inferencemax-artifacts-mantile")
    sane = synthetic_rows(catalog, truth, "src-a")[:9] + mantile
    twin = [r.model_copy(update={"source_id": "inferencex-app-fixture-2026-06"}) for r in sane[:9]]

    def held_predictions(scale: float) -> tuple[list[float], list[float]]:
        """LOSO predictions of src-a's rows and of the InferenceMAX group's, with the mantile rows × scale."""
        rows = sane[:9] + [r.model_copy(update={"value": r.value * scale}) for r in sane[9:]] + twin
        mapped, _ = map_rows(rows, catalog, ENGINES)
        preds = held_out(mapped, CaseCache(catalog), "source")
        by = {id(p.row): p.predicted for p in preds}
        a = [by[id(m)] for m in mapped if m.row.source_id == "src-a"]
        group = [by[id(m)] for m in mapped if m.group == "inferencemax"]
        return a, group

    a_sane, group_sane = held_predictions(1.0)
    a_absurd, group_absurd = held_predictions(100.0)
    # the InferenceMAX group (both sources) is predicted from src-a alone: its own rows never enter
    assert group_absurd == group_sane
    # src-a is predicted from the group, so the absurd rows move it (the test can fail)
    assert not np.allclose(a_absurd, a_sane)


def write_csv(path: Path, rows: list[ServingRow]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            d = r.model_dump(mode="json")
            w.writerow({c: ("" if d.get(c) is None else d.get(c, "")) for c in COLUMNS})
    return path


def test_cli_fits_writes_and_reports(catalog: Catalog, tmp_path: Path) -> None:
    truth = ServingParams(layer_overhead_s=LAYER_S, decode_attention_eta=0.6)
    rows = synthetic_rows(catalog, truth, "src-a")[:9] + synthetic_rows(catalog, truth, "src-b")[9:]
    csv_path = write_csv(tmp_path / "rows.csv", rows)
    out = tmp_path / "cal.yaml"
    result = runner.invoke(app, ["calibrate", "--serving", str(csv_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["report"]
    assert report["rows"] == 18 and report["leave_one_source_out"]["overall"]["rows"] == 18
    # 18 rows: the prior keeps the terms between neutral and the truth, and the fit beats neutral on its rows
    assert report["after"]["overall"]["median_abs_error"] < report["before"]["overall"]["median_abs_error"]
    cal = load_calibration(out)
    terms = from_terms(cal.serving["h100-sxm"]["vllm"])
    assert 0.0 < terms.layer_overhead_s <= LAYER_S and 0.6 <= terms.decode_attention_eta <= 1.0
    assert serving_params("h100-sxm", "vllm", ENGINES, cal) == terms  # what `analyze --engine vllm` runs with
    assert set(cal.serving_error_band) == {"h100-sxm"} and cal.error_band("b200") == cal.serving_error_band_default


def test_cli_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    good_line = "s,https://example.org/x,,h100-sxm,llama-3.1-8b,vllm,,bf16,bf16,1,100,100,batch,4,tpot_s,0.01,no,"
    bad.write_text(",".join(COLUMNS) + "\n" + good_line + "\n" + good_line.replace(",1,100,", ",one,100,") + "\n")
    result = runner.invoke(app, ["calibrate", "--serving", str(bad)])
    assert result.exit_code == 2 and "bad.csv" in result.output and "line 3: tp" in result.output
    assert runner.invoke(app, ["calibrate"]).exit_code == 2  # GEMM mode needs one file
    gemm = bundled_dir("calibrations") / "vidur-gemm-fp16.yaml"
    assert runner.invoke(app, ["calibrate", str(bad), "--base", str(gemm)]).exit_code == 2  # --base needs --serving


def test_bundled_serving_calibration_is_used_by_analyze(catalog: Catalog) -> None:
    cal = load_calibration(bundled_dir("calibrations") / "serving-public.yaml", catalog)
    assert cal.devices and cal.serving_fit is not None and cal.serving_fit.rows_evaluated >= 1900
    fitted = serving_params("h200-sxm", "vllm", ENGINES, cal)
    assert fitted != NEUTRAL and fitted == from_terms(cal.serving["h200-sxm"]["vllm"])
    base = replace(NEUTRAL)
    assert serving_params("h200-sxm", None, ENGINES, cal) == base  # no engine: neutral
    band = cal.error_band("h200-sxm")
    assert band is not None and band > 0 and cal.error_band("tpu-v5e") == cal.serving_error_band_default


def test_accuracy_benchmark_replaces_only_its_own_section(tmp_path: Path) -> None:
    from benchmarks.accuracy import END, START, write_section

    path = tmp_path / "RESULTS.md"
    path.write_text("# Solver\n\ntable\n")
    write_section(path, "first")
    write_section(path, "second")
    text = path.read_text()
    assert text.startswith("# Solver\n\ntable\n") and text.count(START) == 1 and text.count(END) == 1
    assert "second" in text and "first" not in text


# ---- the benchmark client's harness, the compute term, engine-level terms ------------------------------------


def test_mean_lengths_and_burst_share_follow_the_client_setup(catalog: Catalog) -> None:
    """InferenceMAX-style client: lengths uniform in [0.8·L, L] (mean 0.9·L), 10·C prompts, C in flight → the
    first C of 10·C requests arrive at once (share 0.1); fixed lengths → every wave is a burst (share 1)."""
    ranged = map_row(row(load=4, prompts=40, length_ratio=0.8), catalog, ENGINES)
    assert isinstance(ranged, MappedRow)
    assert (ranged.case.isl, ranged.case.osl, ranged.case.burst_share) == (900.0, 180.0, 0.1)
    fixed = map_row(row(load=4, prompts=500, length_ratio=1.0), catalog, ENGINES)
    assert isinstance(fixed, MappedRow) and (fixed.case.isl, fixed.case.burst_share) == (ISL, 1.0)
    plain = map_row(row(load=4), catalog, ENGINES)
    assert isinstance(plain, MappedRow) and plain.case.burst_share == 0.0
    batch = map_row(row(mode="batch", load=4, prompts=40), catalog, ENGINES)  # a static batch has no waves
    assert isinstance(batch, MappedRow) and batch.case.burst_share == 0.0


def test_burst_ttft_is_the_mean_of_the_first_and_last_prefill(catalog: Catalog) -> None:
    """A burst of 8 prompts: the first waits for a 1-prompt prefill, the last for the 8-prompt prefill (batch mode
    TTFT at B = 1 and B = 8); a share f of burst requests mixes that mean with the steady-state TTFT."""
    b1, b8 = (estimate(catalog, "batch", b, PARAMS).ttft_s for b in (1, 8))
    steady = estimate(catalog, "concurrency", 8, PARAMS).ttft_s
    burst = predict(row(metric="ttft_s", prompts=8, length_ratio=1.0), catalog, PARAMS)
    assert burst == pytest.approx((b1 + b8) / 2, rel=1e-12)
    tenth = predict(row(metric="ttft_s", prompts=80), catalog, PARAMS)
    assert tenth == pytest.approx(0.9 * steady + 0.1 * (b1 + b8) / 2, rel=1e-12)
    tpot = predict(row(metric="tpot_s", prompts=80), catalog, PARAMS)  # TPOT is the steady step either way
    assert tpot == pytest.approx(estimate(catalog, "concurrency", 8, PARAMS).tpot_s, rel=1e-12)


def test_throughput_speed_ratio_is_not_inverted(catalog: Catalog) -> None:
    """A throughput predicted at twice the measured value is 2× optimistic, as is a latency predicted at half."""
    from hetplace.costmodels.serving_fit import Prediction

    for metric, factor in (("output_tokens_per_s", 2.0), ("requests_per_s", 2.0), ("tpot_s", 0.5)):
        m = map_row(row(metric=metric, value=10.0), catalog, ENGINES)
        assert isinstance(m, MappedRow)
        assert Prediction(m, 10.0 * factor).speed_ratio == pytest.approx(2.0)


def test_an_unseen_device_inherits_its_engines_terms(catalog: Catalog) -> None:
    """Rows of vllm on H100 only: the engine-level fit is what H200 (no rows) runs with; no engine → neutral; the
    calibration file carries the engine level and serving_params falls back to it."""
    truth = ServingParams(layer_overhead_s=LAYER_S, ttft_overhead_s=0.08, decode_attention_eta=0.6)
    mapped, _ = map_rows(synthetic_rows(catalog, truth), catalog, ENGINES)
    fit = fit_serving(mapped, CaseCache(catalog), prior_weight=1e-3)
    assert set(fit.engines) == {"vllm"}
    unseen = fit.params("h200-sxm", "vllm")
    assert unseen == fit.engines["vllm"].params and unseen.layer_overhead_s == pytest.approx(LAYER_S, rel=0.05)
    assert fit.params("h200-sxm", None) == NEUTRAL and fit.params("h200-sxm", "sglang") == NEUTRAL
    from hetplace.catalogs.calibration_schema import CalibrationFile, ServingTerms

    cal = CalibrationFile(
        measurements="x", method="y", held_back_fraction=0.0, seed=0, devices={},
        serving_engines={"vllm": ServingTerms(step_overhead_s=0.004)},
    )  # fmt: skip
    assert serving_params("h200-sxm", "vllm", ENGINES, cal) == ServingParams(step_overhead_s=0.004)
