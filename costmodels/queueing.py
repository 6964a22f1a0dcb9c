"""Queueing delay of a pool of identical servers: Erlang C with a service-time variability correction (M/G/c).

A pool of r replicas with B concurrent slots each (a continuous batch of B, or the cores of a CPU) is treated as one
queue with m = r·B servers; a request waits for a free slot, then takes its service time. With Poisson arrivals
at λ per second and mean service time S per request, the offered load is a = λ·S erlangs and the utilisation
ρ = a / m (< 1 for a stable queue).

- Probability of waiting, M/M/c: Erlang's C formula, computed from Erlang B by the stable recursion
  B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)) and C = m·B / (m − a·(1 − B)) (Kleinrock, *Queueing Systems* vol. 1,
  1975, §3.5; Gross, Shortle, Thompson & Harris, *Fundamentals of Queueing Theory*, 4th ed. 2008, §2.3).
- Variability correction, M/G/c: the Allen–Cunneen approximation scales the M/M/c wait by (c_a² + c_s²) / 2, c_a²
  and c_s² the squared coefficients of variation of inter-arrival and service times (A. O. Allen, *Probability,
  Statistics and Queueing Theory*, 2nd ed. 1990, §6.4; W. Whitt, "Approximations for the GI/G/m queue", Production
  and Operations Management 2(2), 1993). For one server it is Kingman's heavy-traffic formula and, with Poisson
  arrivals, exactly the Pollaczek–Khinchine mean wait.
- Percentile of the wait: given that a request waits, its wait is exponential in M/M/c with rate m/S − λ, so
  P(W > t) = C · exp(−t·(m/S − λ)) (Gross et al. §2.3, eq. 2.38). Here the conditional mean is scaled by the same
  (c_a² + c_s²) / 2, so the q-quantile is W_q = (c_a² + c_s²)/2 · ln(C / (1 − q)) / (m/S − λ) when C > 1 − q,
  else 0 (most requests do not wait at all).

Pure numpy; every function is elementwise over broadcast arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

POISSON_ARRIVAL_SCV = 1.0  # squared coefficient of variation of Poisson inter-arrival times


def erlang_c(servers: ArrayLike, load_erlangs: ArrayLike) -> NDArray[np.float64]:
    """Probability that an arrival waits in an M/M/m queue with offered load a (erlangs); 1 when a ≥ m.

    One Erlang B recursion per distinct load runs up to the largest m asked of it, all loads advanced together
    (those whose largest m is passed drop out), and each entry is read off when k reaches its m: the work is the
    largest server count, not the sum over entries, so whole menus are evaluated in one call."""
    m_b, a_b = np.broadcast_arrays(np.asarray(servers, dtype=np.int64), np.asarray(load_erlangs, dtype=np.float64))
    m, a = m_b.ravel(), a_b.ravel()
    if m.size == 0:
        return np.zeros(m_b.shape)
    if np.any(m < 1):
        raise ValueError("servers must be ≥ 1")
    loads, group = np.unique(a, return_inverse=True)
    group = group.ravel()
    top = np.zeros(len(loads), dtype=np.int64)
    np.maximum.at(top, group, m)
    by_top = np.argsort(top, kind="stable")  # loads in the order they drop out of the recursion
    pos = np.empty(len(loads), dtype=np.int64)
    pos[by_top] = np.arange(len(loads))
    load_s, top_s = loads[by_top], top[by_top]
    b = np.ones(len(loads))  # B(k) per load, in drop-out order: the live loads are always a tail b[start:]
    order = np.argsort(m, kind="stable")
    m_sorted = m[order]
    k_max = int(m_sorted[-1])
    first_at = np.searchsorted(m_sorted, np.arange(1, k_max + 2), side="left")  # entries with m == k: [k-1, k)
    starts = np.searchsorted(top_s, np.arange(1, k_max + 1), side="left")
    b_of = np.empty(len(m))
    for k in range(1, k_max + 1):
        start = int(starts[k - 1])
        ab = load_s[start:] * b[start:]
        b[start:] = ab / (k + ab)
        lo, hi = int(first_at[k - 1]), int(first_at[k])
        if hi > lo:
            idx = order[lo:hi]
            b_of[idx] = b[pos[group[idx]]]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = m * b_of / (m - a * (1.0 - b_of))
    c = np.where(a >= m, 1.0, np.clip(c, 0.0, 1.0))
    return c.reshape(m_b.shape)


def correction(arrival_scv: ArrayLike, service_scv: ArrayLike) -> NDArray[np.float64]:
    """Allen–Cunneen factor (c_a² + c_s²) / 2 that turns an M/M/c wait into a G/G/c one (1 for M/M/c)."""
    return (np.asarray(arrival_scv, dtype=np.float64) + np.asarray(service_scv, dtype=np.float64)) / 2.0


def mean_wait_s(
    servers: ArrayLike,
    arrival_rate_per_s: ArrayLike,
    service_s: ArrayLike,
    service_scv: ArrayLike = 1.0,
    arrival_scv: ArrayLike = POISSON_ARRIVAL_SCV,
) -> NDArray[np.float64]:
    """Mean wait in queue (before service starts), seconds; inf when the queue is unstable (ρ ≥ 1)."""
    m = np.asarray(servers, dtype=np.float64)
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    a = lam * s
    c = erlang_c(np.asarray(servers), a)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = correction(arrival_scv, service_scv) * c * s / (m - a)
    return np.where(a >= m, np.inf, w)


def wait_percentile_s(
    percentile: ArrayLike,
    servers: ArrayLike,
    arrival_rate_per_s: ArrayLike,
    service_s: ArrayLike,
    service_scv: ArrayLike = 1.0,
    arrival_scv: ArrayLike = POISSON_ARRIVAL_SCV,
    wait_probability: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Wait in queue at `percentile` (0–100, e.g. 99), seconds: 0 when fewer than (100 − percentile) % of requests
    wait; inf when the queue is unstable (ρ ≥ 1). `wait_probability` passes Erlang C in when it is already known
    (several percentiles of one queue)."""
    q = np.asarray(percentile, dtype=np.float64) / 100.0
    m = np.asarray(servers, dtype=np.float64)
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    a = lam * s
    c = erlang_c(np.asarray(servers), a) if wait_probability is None else np.asarray(wait_probability)
    tail = 1.0 - q
    with np.errstate(divide="ignore", invalid="ignore"):
        w = correction(arrival_scv, service_scv) * np.log(np.maximum(c, tail) / tail) * s / (m - a)
    return np.where(a >= m, np.inf, np.maximum(w, 0.0))


def mixture_scv(rates: ArrayLike, service_s: ArrayLike, within_scv: ArrayLike = 0.0) -> float:
    """Squared coefficient of variation of the service time of a pool serving several request classes: class i
    arrives at rates[i] with mean service_s[i] and its own SCV within_scv[i]. Var/mean² of the mixture."""
    w = np.asarray(rates, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    v = np.broadcast_to(np.asarray(within_scv, dtype=np.float64), s.shape)
    p = w / w.sum()
    mean = float(np.sum(p * s))
    second = float(np.sum(p * s * s * (1.0 + v)))
    return max(0.0, second / (mean * mean) - 1.0) if mean > 0 else 0.0
