"""Stack era, fit weights, leave-one-model-out and the all-at-once mapping of the serving calibration
(catalogs/serving_measurements.stack_era, costmodels/serving_fit.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hetplace.catalogs.loader import Catalog, load_engines
from hetplace.catalogs.schema import Dtype
from hetplace.catalogs.serving_measurements import (
    ServingRow,
    StackEra,
    load_serving_measurements,
    stack_era,
    version_tuple,
)
from hetplace.costmodels.capacity import engine_limits, max_batch
from hetplace.costmodels.engine_terms import NEUTRAL, ServingParams
from hetplace.costmodels.precision import Precision
from hetplace.costmodels.serving import serving_estimate
from hetplace.costmodels.serving_fit import (
    CaseCache,
    MappedRow,
    Skipped,
    fit_serving,
    fitted_lookup,
    fitted_rows_key,
    held_out,
    holdout_splits,
    map_row,
    map_rows,
    predict_rows,
)

ENGINES = load_engines()


def row(**kw: object) -> ServingRow:
    base: dict[str, object] = {
        "source_id": "src-a", "url": "https://example.org/x", "published": "2026-01", "device": "h100-sxm",
        "model": "llama-3.1-8b", "engine": "vllm", "weight_dtype": "bf16", "kv_dtype": "bf16", "tp": 1,
        "isl": 1000.0, "osl": 200.0, "mode": "concurrency", "load": 8, "metric": "tpot_s", "value": 0.01,
    }  # fmt: skip
    return ServingRow.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("published", "engine", "version", "era"),
    [
        ("2025-09", "vllm", "", StackEra.current),  # the cut month itself
        ("2025-08-31", "vllm", "0.11.0", StackEra.older),  # a date decides before the version
        ("2026-05", "sglang", "v0.4.0", StackEra.current),
        ("", "sglang", "v0.5.5.post3-rocm700-mi30x", StackEra.current),  # 0.5.5 >= 0.5.2
        ("", "sglang", "0.5.1", StackEra.older),
        ("", "vllm", "0.10.2", StackEra.current),
        ("", "vllm", "0.7.3.dev138+g21f6ca217", StackEra.older),
        ("", "trtllm", "0.17.post1.dev", StackEra.older),  # (0, 17) < (1, 0)
        ("", "trtllm", "1.2.0rc2", StackEra.current),
        ("", "vllm", "", StackEra.older),  # no date, no version
        ("", "other", "djl-lmi 0.29.0", StackEra.older),  # an engine without a cut
    ],
)
def test_stack_era_by_hand(published: str, engine: str, version: str, era: StackEra) -> None:
    assert stack_era(row(published=published, engine=engine, engine_version=version)) == era


def test_version_tuple_and_the_bundled_sources_eras() -> None:
    assert version_tuple("v0.5.12-cu130") == (0, 5, 12) and version_tuple("1.3.0rc14") == (1, 3, 0)
    assert version_tuple("djl-lmi 0.29.0") is None
    eras: dict[str, Counter[StackEra]] = {}
    for r in load_serving_measurements():
        eras.setdefault(r.source_id, Counter())[stack_era(r)] += 1
    # InferenceMAX: 2025-11.. dates or sglang >= 0.5.5 / vllm 0.13 / trtllm 1.2 versions; dstack: 2025-03
    assert set(eras["inferencemax-artifacts-mantile"]) == {StackEra.current}
    assert set(eras["inferencex-app-fixture-2026-06"]) == {StackEra.current}
    assert set(eras["dstack-deepseek-r1-mi300x-h200-2025"]) == {StackEra.older}
    assert set(eras["gpustack-perf-lab"]) == {StackEra.current}  # vllm 0.11.0, sglang 0.5.3+, trtllm 1.0.0
    # dense-current.csv: dated 2025-09-13 / 2025-12 / 2026-06 (the TPU engines carry commit or "sglang-jax" versions)
    for source in ("sgl-cookbook-2025-12", "sglang-jax-qwen3-tpu-v6e-2025-09", "sglang-jax-cookbook-2026-06"):
        assert set(eras[source]) == {StackEra.current}


def model_rows(catalog: Catalog, params: ServingParams, scale: float = 1.0, **kw: object) -> list[ServingRow]:
    """Rows the serving model predicts with `params` (× scale): two shapes, three loads, three metrics."""
    out = []
    for isl, osl in ((512.0, 256.0), (6000.0, 2000.0)):
        for load in (1.0, 12.0, 40.0):
            for metric in ("ttft_s", "tpot_s", "output_tokens_per_s"):
                r = row(isl=isl, osl=osl, load=load, metric=metric, **kw)
                m = map_row(r, catalog, ENGINES)
                assert isinstance(m, MappedRow)
                (p,) = predict_rows([m], lambda _: params, CaseCache(catalog))
                factor = scale if metric != "output_tokens_per_s" else 1.0 / scale  # `scale`× slower
                out.append(r.model_copy(update={"value": p.predicted * factor}))
    return out


def test_older_rows_that_disagree_barely_move_the_fit(catalog: Catalog) -> None:
    """Current rows from one set of terms, older rows 2.5× slower on the same config: at a small weight the fit
    stays near the current-only fit; at weight 1 it is dragged far towards the older rows (the test can fail)."""
    truth = ServingParams(step_overhead_s=0.004, ttft_overhead_s=0.08, decode_attention_eta=0.6)
    current = model_rows(catalog, truth)
    older = model_rows(catalog, truth, scale=2.5, published="2025-03", source_id="src-old")
    cache = CaseCache(catalog)
    cur_mapped, _ = map_rows(current, catalog, ENGINES)
    all_mapped, _ = map_rows(current + older, catalog, ENGINES)

    def predictions(rows: list[MappedRow], older_weight: float) -> np.ndarray:
        fit = fit_serving(rows, cache, prior_weight=1e-3, older_weight=older_weight)
        return np.array([p.predicted for p in predict_rows(cur_mapped, fitted_lookup(fit), cache)])

    alone = predictions(cur_mapped, 0.05)
    down = predictions(all_mapped, 0.05)
    equal = predictions(all_mapped, 1.0)
    excluded = predictions(all_mapped, 0.0)
    assert np.array_equal(excluded, alone)  # weight 0: older rows never enter
    # rows that are all older (a user's undated measurements) all count: older_weight applies only beside current ones
    old_only, _ = map_rows(older, catalog, ENGINES)
    assert fit_serving(old_only, cache, older_weight=0.0).pairs[("h100-sxm", "vllm")].rows == len(older)
    assert np.median(np.abs(down / alone - 1.0)) < 0.10
    assert np.median(np.abs(equal / alone - 1.0)) > 0.25


def test_leave_one_model_out_never_fits_on_the_held_model(catalog: Catalog) -> None:
    truth = ServingParams(step_overhead_s=0.004, decode_attention_eta=0.6)
    rows = (
        model_rows(catalog, truth)  # llama-3.1-8b
        + model_rows(catalog, truth, model="llama-3.1-70b", tp=4)  # same family
        + model_rows(catalog, truth, model="gpt-oss-20b", weight_dtype="fp4")
    )
    mapped, _ = map_rows(rows, catalog, ENGINES)
    splits = holdout_splits(mapped, "model")
    assert [s.label for s in splits] == ["gpt-oss-20b", "llama-*"]
    for s in splits:  # what each fit is given: never a row of the held family, every other row
        assert {r.family for r in s.held} == {s.label}
        assert all(r.family != s.label for r in s.train)
        assert len(s.held) + len(s.train) == len(mapped)
    assert {r.case.model for r in splits[1].held} == {"llama-3.1-8b", "llama-3.1-70b"}

    def held_predictions(scale: float) -> tuple[list[float], list[float]]:
        """LOMO predictions of the Llama rows and of gpt-oss's, with gpt-oss's measured values × scale."""
        scaled = [r.model_copy(update={"value": r.value * scale}) if r.model == "gpt-oss-20b" else r for r in rows]
        m, _ = map_rows(scaled, catalog, ENGINES)
        preds = held_out(m, CaseCache(catalog), "model", prior_weight=1e-3)
        llama = [p.predicted for p in preds if p.row.family == "llama-*"]
        oss = [p.predicted for p in preds if p.row.family == "gpt-oss-20b"]
        return llama, oss

    llama_sane, oss_sane = held_predictions(1.0)
    llama_absurd, oss_absurd = held_predictions(100.0)
    assert oss_absurd == oss_sane  # gpt-oss is predicted from Llama alone: its own rows never enter
    assert not np.allclose(llama_absurd, llama_sane)  # Llama is predicted from gpt-oss: absurd rows move it


def gpustack_row(device: str, model: str, engine: str, isl: float, osl: float, metric: str) -> ServingRow:
    """The one bundled gpustack-perf-lab row of this setup and metric."""
    key = ("gpustack-perf-lab", device, model, engine, isl, osl, metric)
    (r,) = [r for r in load_serving_measurements() if (r.source_id, r.device, r.model, r.engine, r.isl, r.osl,
                                                       r.metric.value) == key]  # fmt: skip
    return r


def test_all_at_once_rows_run_at_the_engines_cap(catalog: Catalog) -> None:
    """gpustack's 'N prompts at rate inf' rows: N requests into a continuous-batching engine that runs
    min(N, KV capacity, its max_num_seqs) of them at once, priced as steady-state concurrency at that C."""
    def running_cap(engine: str, device: str) -> float:
        model, bf16 = catalog.models["gpt-oss-20b"], Precision(Dtype.bf16, Dtype.bf16)
        return engine_limits(ENGINES[engine].scheduler, catalog.devices[device], model, bf16, 1).max_running_seqs

    assert running_cap("vllm", "a100-80gb-sxm") == 256  # vLLM V1 (catalogs/engines/vllm.yaml): A100 -> 256
    assert running_cap("vllm", "h200-sxm") == 1024  # >= 70 GiB, not A100 -> 1024
    assert running_cap("sglang", "a100-80gb-sxm") >= 2048  # SGLang's request pool: 2048..4096 (sglang.yaml)

    # gpt-oss-20b, vLLM 0.11, one A100, ShareGPT 1000 prompts (215.3 / 194.2 mean tokens): 1000 > 256 = vLLM's cap
    r = gpustack_row("a100-80gb-sxm", "gpt-oss-20b", "vllm", 215.3, 194.2, "output_tokens_per_s")
    assert (r.mode.value, r.load, r.prompts, r.value) == ("offline_max", None, 1000, 4620.12)
    m = map_row(r, catalog, ENGINES)
    assert isinstance(m, MappedRow) and m.case.load == 256.0 and m.case.mode.value == "concurrency"
    model, device = catalog.models["gpt-oss-20b"], catalog.devices["a100-80gb-sxm"]
    est = serving_estimate(
        model, device, 1, Precision(Dtype.bf16, Dtype.bf16), 215.3, 194.2, "concurrency", 256, NEUTRAL
    )
    assert est.max_batch > 1000  # the KV cache would hold all 1000: the engine's cap is what binds
    (p,) = predict_rows([m], lambda _: NEUTRAL, CaseCache(catalog))
    assert p.predicted == pytest.approx(256 * 194.2 / (est.ttft_s + 193.2 * est.tpot_s), rel=1e-9)

    # DeepSeek-V3 on 8 H200, 100 prompts of 31,999 tokens: the KV cache (18 sequences) binds before 100 or 1024
    r = gpustack_row("h200-sxm", "deepseek-v3", "vllm", 31999.0, 100.0, "tpot_s")
    m = map_row(r, catalog, ENGINES)
    assert isinstance(m, MappedRow)
    h200_gb = np.array([catalog.devices["h200-sxm"].mem_gb])
    cap = max_batch(catalog.models["deepseek-v3"], Precision(m.case.weight, m.case.kv), h200_gb, np.array([8.0]),
                    31999.0 + 100.0)[0]  # fmt: skip
    assert m.case.load == float(cap) < 100

    # their TTFT is minutes of waiting for a slot: counted as skipped, never priced as one request's prefill
    ttft = map_row(gpustack_row("h200-sxm", "deepseek-v3", "vllm", 31999.0, 100.0, "ttft_s"), catalog, ENGINES)
    assert isinstance(ttft, Skipped) and ttft.reason.startswith("all-at-once run")


def test_a_held_out_older_source_reuses_the_fit_on_all_rows_exactly(catalog: Catalog) -> None:
    """With older rows at weight 0, leaving out a source that has only older rows trains on exactly the rows the fit
    on all rows uses: the shared fit (`fits`) must predict what a fresh fit on that split predicts."""
    truth = ServingParams(step_overhead_s=0.004, decode_attention_eta=0.6)
    rows = model_rows(catalog, truth) + model_rows(catalog, truth, scale=2.0, published="2025-03", source_id="old")
    mapped, _ = map_rows(rows, catalog, ENGINES)
    cache = CaseCache(catalog)
    everything = fit_serving(mapped, cache, older_weight=0.0)
    shared = held_out(mapped, cache, "source", older_weight=0.0, fits={fitted_rows_key(mapped, 0.0): everything})
    fresh = held_out(mapped, cache, "source", older_weight=0.0)
    assert [p.predicted for p in shared] == [p.predicted for p in fresh]
    old = [p for p in shared if p.row.group == "old"]
    assert len(old) == 18 and [p.predicted for p in old] == [
        p.predicted for p in predict_rows([p.row for p in old], fitted_lookup(everything), cache)
    ]
