"""Non-LLM step costs with hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from hetplace.catalogs.loader import Catalog
from hetplace.costmodels.nonllm import encoder_cost, retrieval_cost, retrieval_work, tool_cost
from tests.conftest import present


def test_flat_retrieval_is_a_memory_bound_scan(catalog: Catalog) -> None:
    flops, moved, resident, random = retrieval_work(1_000_000, 1024, 10, "flat", "fp32", 1)
    assert (flops, resident, random) == (2 * 1_000_000 * 1024, 4 * 1_000_000 * 1024, False)
    assert moved == 4 * 1_000_000 * 1024 + 1024 * 4
    cpu = catalog.device("xeon-6980p")
    cost = retrieval_cost([cpu], 1_000_000, 1024, 10, "flat", "fp32", 1)
    bw = cpu.mem_bw_gbs * 1e9 * cpu.efficiency.memory
    assert cost.latency_s[0] == pytest.approx(moved / bw + cpu.efficiency.kernel_overhead_us * 1e-6)


def test_ann_reads_far_less_than_flat() -> None:
    flat = retrieval_work(50_000_000, 1024, 20, "flat", "fp32", 1)[1]
    hnsw = retrieval_work(50_000_000, 1024, 20, "hnsw", "fp32", 1)[1]
    ivf = retrieval_work(50_000_000, 1024, 20, "ivf", "fp32", 1)[1]
    assert hnsw < flat / 1000 and ivf < flat / 100


def test_index_that_does_not_fit_is_reported(catalog: Catalog) -> None:
    t4, cpu = catalog.device("t4"), catalog.device("epyc-9654")
    cost = retrieval_cost([t4, cpu], 50_000_000, 1024, 20, "hnsw", "fp32", 1)  # 205 GB of vectors
    assert cost.fits.tolist() == [False, True]


def test_tools_run_only_on_cpus(catalog: Catalog) -> None:
    devs = [catalog.device("h100-sxm"), catalog.device("xeon-6980p")]
    cost = tool_cost(devs, latency_s=3.0, cpu_s=2.5)
    assert cost.fits.tolist() == [False, True]
    assert cost.latency_s.tolist() == [3.0, 3.0]
    assert cost.busy_s[1] == pytest.approx(2.5 / present(devs[1].cores))


def test_encoder_cost_scales_with_items(catalog: Catalog) -> None:
    model, dev = catalog.model("clip-vit-l-14-336"), [catalog.device("l4")]
    one, six = encoder_cost(model, dev, 1, 577), encoder_cost(model, dev, 6, 577)
    assert six.flops[0] == pytest.approx(6 * one.flops[0], rel=1e-9)
    # ~2 · 0.30e9 params · 577 tokens of GEMM work per image, plus attention
    assert one.flops[0] == pytest.approx(2 * 0.3026e9 * 577, rel=0.15)
    assert np.all(six.latency_s > one.latency_s)
