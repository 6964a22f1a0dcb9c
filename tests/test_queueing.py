"""Erlang C, the M/G/c correction and the waiting-time percentile against hand-computed textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplace.costmodels.queueing import erlang_c, mean_wait_s, mixture_scv, wait_percentile_s


def test_erlang_c_single_server_is_the_utilisation() -> None:
    # M/M/1: P(wait) = ρ.
    assert erlang_c(1, 0.8) == pytest.approx(0.8, rel=1e-12)


def test_erlang_c_textbook_values() -> None:
    # C(2, 1): a²/2!·c/(c−a) / (1 + a + a²/2!·c/(c−a)) = 1 / (1 + 1 + 1) = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # C(3, 2): B(1)=2/3, B(2)=0.4, B(3)=0.8/3.8; C = 3B/(3 − 2(1−B)) = 4/9.
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-12)
    # Vectorised over mixed server counts, unstable entries wait for sure.
    got = erlang_c(np.array([3, 1, 2, 2]), np.array([2.0, 0.8, 1.0, 2.5]))
    assert got == pytest.approx([4 / 9, 0.8, 1 / 3, 1.0], rel=1e-12)


def test_mm1_mean_and_percentile_wait() -> None:
    # M/M/1, λ = 0.8/s, S = 1 s: Wq = ρ/(μ − λ) = 0.8/0.2 = 4 s; P(W > t) = 0.8·e^(−0.2 t) → p90 = 5·ln 8.
    assert mean_wait_s(1, 0.8, 1.0) == pytest.approx(4.0, rel=1e-12)
    assert wait_percentile_s(90, 1, 0.8, 1.0) == pytest.approx(5 * math.log(8), rel=1e-12)
    # p10: C = 0.8 > 0.9 of requests? No: 80 % wait, so the 10th percentile request does not wait.
    assert wait_percentile_s(10, 1, 0.8, 1.0) == 0.0


def test_mm2_mean_and_p99_wait() -> None:
    # M/M/2, λ = 1/s, S = 1 s: C = 1/3, Wq = C/(2 − 1) = 1/3 s; p99 = ln((1/3)/0.01)/1 = ln(100/3).
    assert mean_wait_s(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    assert wait_percentile_s(99, 2, 1.0, 1.0) == pytest.approx(math.log(100 / 3), rel=1e-12)


def test_md1_is_pollaczek_khinchine() -> None:
    # M/D/1 (c_s² = 0): Wq = ρS/(2(1 − ρ)) = 0.5·2/(2·0.5) = 1 s for λ = 0.25/s, S = 2 s.
    assert mean_wait_s(1, 0.25, 2.0, service_scv=0.0) == pytest.approx(1.0, rel=1e-12)


def test_unstable_queue_waits_forever() -> None:
    assert math.isinf(float(mean_wait_s(2, 2.0, 1.0)))
    assert math.isinf(float(wait_percentile_s(99, 4, 5.0, 1.0)))


def test_mixture_scv() -> None:
    # Two equal-rate classes of 1 s and 3 s: mean 2, second moment 5, SCV = 5/4 − 1 = 0.25.
    assert mixture_scv([1.0, 1.0], [1.0, 3.0]) == pytest.approx(0.25, rel=1e-12)
    # One exponential class: SCV 1.
    assert mixture_scv([2.0], [5.0], 1.0) == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.floats(0.05, 0.97), st.floats(50.0, 99.9))
def test_more_servers_at_the_same_load_never_wait_longer(m: int, rho: float, pct: float) -> None:
    lam = rho * m  # S = 1 s
    w = wait_percentile_s(pct, np.array([m, m + 1, m + 5]), lam, 1.0)
    assert w[0] >= w[1] - 1e-12 and w[1] >= w[2] - 1e-12
    # And the p-quantile is consistent with the tail: P(W > W_p) ≤ 1 − p.
    c = float(erlang_c(m, lam))
    tail = c * math.exp(-float(w[0]) * (m - lam))
    assert tail <= (1 - pct / 100) * (1 + 1e-9)
