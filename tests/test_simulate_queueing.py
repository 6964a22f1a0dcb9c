"""The simulator's queues against textbook queueing formulas, written here independently of the engine.

One pool of c identical servers (a retrieval pool of batch-1 replicas), Poisson arrivals, service time S = 1 s
times a gamma factor of mean 1 and coefficient of variation cv (cv = 1: exponential, M/M/c; other cv: M/G/c).

M/M/c (exact, Erlang C): with offered load a = λS and ρ = a/c,
    C(c, a) = (aᶜ/c! · 1/(1−ρ)) / (Σ_{k<c} aᵏ/k! + aᶜ/c! · 1/(1−ρ))   (probability that a call waits)
    P(W > t) = C · exp(−(c − a) t / S),  so the p-quantile is S·ln(C/(1−p))/(c − a) when C > 1 − p, else 0.
M/G/c (Allen–Cunneen / Kingman): the same with the conditional wait stretched by (1 + cv²)/2.

Tolerances: the M/M/c formula is exact, so the error is the simulation's sampling error, which at ρ = 0.9 needs
~10⁶ calls for a few per cent at p99 (long busy periods correlate the waits); the M/G/c formula is itself an
approximation. Seeds are fixed, so the results are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hetplace.problems.schema import Workflow
from hetplace.simulate.arrivals import renewal_arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.service import BATCH, ConfigTable, PoolTable, ServiceModel, StepKey


def erlang_c(c: int, a: float) -> float:
    rho = a / c
    top = a**c / math.factorial(c) / (1.0 - rho)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def wait_quantile_s(c: int, rho: float, p: float, cv: float, service_s: float = 1.0) -> float:
    a = rho * c
    waits = erlang_c(c, a)
    if waits <= 1.0 - p:
        return 0.0
    return math.log(waits / (1.0 - p)) * service_s / (c - a) * (1.0 + cv * cv) / 2.0


def simulated_waits(c: int, rho: float, cv: float, calls: int, seed: int, service_s: float = 1.0) -> np.ndarray:
    """Waiting times of `calls` Poisson arrivals (after a 5 % warm-up) in one pool of c servers."""
    rate = rho * c / service_s
    wf = Workflow.model_validate(
        {
            "id": "q",
            "name": "single pool",
            "description": "one retrieval step",
            "arrival_rate_rps": rate,
            "sla": {"e2e_latency_s": 100},
            "steps": [{"id": "serve", "kind": "retrieval", "corpus_vectors": 1000, "dim": 8, "top_k": 1}],
        }
    )
    key = StepKey("q", "serve")
    service = ServiceModel(
        {"pool": PoolTable("pool", BATCH, [ConfigTable("server", "x", c, 1, pass_s={key: [service_s]})])},
        {},
        {key: "pool"},
    )
    duration = calls / rate
    arrivals = renewal_arrivals([rate], duration, np.random.default_rng(seed))
    engine = Engine([wf], service, arrivals, duration, 0.05 * duration, 10 * duration, seed + 1, 10, service_cv=cv)
    return np.asarray(engine.run().wait["pool"])


def test_erlang_c_hand_values() -> None:
    # M/M/1: C = ρ; M/M/2 at a = 1: C = (1/2 · 2) / (1 + 1 + 1) = 1/3
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert wait_quantile_s(1, 0.5, 0.99, 1.0) == pytest.approx(math.log(50) / 0.5)


@pytest.mark.parametrize(
    ("c", "rho", "calls", "tol"),
    [(1, 0.5, 200_000, 0.05), (4, 0.7, 200_000, 0.05), (16, 0.9, 600_000, 0.10)],
)
def test_mmc_wait_matches_erlang_c(c: int, rho: float, calls: int, tol: float) -> None:
    waits = simulated_waits(c, rho, 1.0, calls, seed=3)
    a = rho * c
    assert np.mean(waits > 0) == pytest.approx(erlang_c(c, a), rel=0.05)  # probability of waiting
    assert waits.mean() == pytest.approx(erlang_c(c, a) / (c - a), rel=tol)  # mean wait C·S/(c − a)
    assert np.percentile(waits, 99) == pytest.approx(wait_quantile_s(c, rho, 0.99, 1.0), rel=tol)


@pytest.mark.parametrize(("c", "rho", "cv"), [(4, 0.9, 0.5), (4, 0.7, 2.0), (4, 0.9, 0.0)])
def test_mgc_wait_p99_within_ten_percent_of_allen_cunneen(c: int, rho: float, cv: float) -> None:
    waits = simulated_waits(c, rho, cv, 200_000, seed=5)
    assert np.percentile(waits, 99) == pytest.approx(wait_quantile_s(c, rho, 0.99, cv), rel=0.10)
