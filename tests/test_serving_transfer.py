"""device_transfer: a (device, engine) pair without rows takes its engine's terms shifted by what the device showed
under its other engines — hand-computed numbers."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from hetplace.costmodels.engine_terms import NEUTRAL
from hetplace.costmodels.serving_fit import PairFit, ServingFit, device_transfer


def fit(pair: tuple[str, str], names: tuple[str, ...], **terms: float) -> PairFit:
    return PairFit(pair, replace(NEUTRAL, **terms), names, rows=10, loss=0.0)


ENGINES = {
    "sglang": fit(("*", "sglang"), ("step_overhead_s", "compute_eta"), step_overhead_s=0.0028, compute_eta=0.89),
    "vllm": fit(("*", "vllm"), ("step_overhead_s", "compute_eta"), step_overhead_s=0.0007, compute_eta=0.90),
}


def test_terms_shift_by_the_device_ratio() -> None:
    pairs = {
        ("mi300x", "sglang"): fit(
            ("mi300x", "sglang"), ("step_overhead_s", "compute_eta"), step_overhead_s=0.0067, compute_eta=0.87
        )
    }
    moved = device_transfer(pairs, ENGINES)
    assert set(moved) == {("mi300x", "vllm")}
    t = moved[("mi300x", "vllm")]
    assert t.step_overhead_s == pytest.approx(0.0007 * 0.0067 / 0.0028, rel=1e-12)  # 1.675 ms
    assert t.compute_eta == pytest.approx(0.90 * 0.87 / 0.89, rel=1e-12)
    assert t.decode_attention_eta == ENGINES["vllm"].params.decode_attention_eta  # not fitted on mi300x: engine's
    lookup = ServingFit(pairs, ENGINES, moved)
    assert lookup.params("mi300x", "vllm") == t
    assert lookup.params("mi300x", "sglang") == pairs[("mi300x", "sglang")].params
    assert lookup.params("l4", "vllm") == ENGINES["vllm"].params  # no rows on l4 at all: the engine level


def test_two_engines_average_geometrically_and_the_result_stays_in_range() -> None:
    """Ratios average geometrically over the device's engines; an engine-level overhead of 0 stays 0 (ratios floor
    at 0.1 ms); a multiplier stays in [0.2, 2]."""
    engines = {**ENGINES, "tensorrt-llm": fit(("*", "tensorrt-llm"), ("step_overhead_s",), step_overhead_s=0.0)}
    pairs = {
        ("h100-sxm", "sglang"): fit(("h100-sxm", "sglang"), ("step_overhead_s",), step_overhead_s=0.0008),
        ("h100-sxm", "vllm"): fit(("h100-sxm", "vllm"), ("step_overhead_s",), step_overhead_s=0.0003),
    }
    moved = device_transfer(pairs, engines)
    assert moved[("h100-sxm", "tensorrt-llm")].step_overhead_s == 0.0  # 0 × any ratio
    ratio = math.sqrt((0.0008 / 0.0028) * (0.0003 / 0.0007))  # geometric mean of the two device ratios
    lone = {("h100-sxm", "sglang"): pairs[("h100-sxm", "sglang")], ("h100-sxm", "vllm"): pairs[("h100-sxm", "vllm")]}
    three = {**ENGINES, "tgi-like": fit(("*", "tgi-like"), ("step_overhead_s",), step_overhead_s=0.002)}
    assert device_transfer(lone, three)[("h100-sxm", "tgi-like")].step_overhead_s == pytest.approx(0.002 * ratio)
    big = {("x", "sglang"): fit(("x", "sglang"), ("compute_eta",), compute_eta=1.9)}
    eta = device_transfer(big, {**ENGINES, "vllm": fit(("*", "vllm"), ("compute_eta",), compute_eta=1.5)})
    assert eta[("x", "vllm")].compute_eta == pytest.approx(min(2.0, 1.5 * math.exp(math.log(1.9 / 0.89))))
