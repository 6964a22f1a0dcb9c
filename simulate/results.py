"""Summaries of one simulation run and the files `hetplace simulate --out DIR` writes.

Every number derives from the engine's records, so the same seed gives the same output byte for byte (no wall
clock in it). A request that has not finished when the run ends counts as an SLA miss with latency ∞ (null in JSON).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hetplace.common.io import atomic_write_bytes, atomic_write_text

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass(frozen=True)
class WorkflowStats:
    workflow: str
    requests: int  # arrived inside the measuring window
    unfinished: int  # of those, not finished when the run ended
    mean_s: float  # over finished requests
    p50_s: float
    p90_s: float
    p99_s: float
    sla_s: float
    sla_percentile: float | None  # None: the SLA holds the critical path of service times
    attainment: float  # share of window requests finishing within sla_s
    plan_critical_path_s: float | None  # the plan's critical path of service times (today's SLA meaning)


@dataclass(frozen=True)
class StepStats:
    workflow: str
    step: str
    calls: int
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p99_s: float | None


@dataclass(frozen=True)
class PoolStats:
    pool: str
    kind: str
    replicas: int
    utilisation: float  # busy share: replicas busy (batch), slots in use (decode/co-located), cores busy (tools)
    load: float  # work served / the plan's capacity of the pool (the plan's utilisation definition)
    plan_utilisation: float | None
    mean_queue: float
    max_queue: int
    wait_p50_s: float  # queueing delay of a call before its pass / slot / core (nan: no calls measured)
    wait_p99_s: float


@dataclass(frozen=True)
class Conservation:
    """At the end of arrivals (t = duration): every request that arrived is either finished or in flight."""

    arrived: int
    finished: int
    in_flight: int


@dataclass
class SimulationResult:
    scenario: str
    arrivals: str
    seed: int
    duration_s: float
    warmup_s: float
    end_time_s: float
    events: int
    conservation: Conservation
    workflows: list[WorkflowStats]
    steps: list[StepStats]
    pools: list[PoolStats]
    queue_t_s: list[float] = field(default_factory=list)
    queue_by_pool: dict[str, list[int]] = field(default_factory=dict)
    in_flight: list[int] = field(default_factory=list)
    latencies_s: dict[str, list[float]] = field(default_factory=dict)  # per workflow, window requests, sorted

    def summary(self) -> dict[str, Any]:
        """The JSON document (`--json` and simulation.json): everything but the raw latencies and samples."""
        d = asdict(self)
        for k in ("queue_t_s", "queue_by_pool", "in_flight", "latencies_s"):
            d.pop(k)
        return _finite(d)

    def workflow(self, wf_id: str) -> WorkflowStats:
        return next(w for w in self.workflows if w.workflow == wf_id)


def _finite(x: Any) -> Any:
    """inf/nan → None, so the JSON is valid."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def percentiles(values: list[float] | np.ndarray) -> tuple[float, float, float]:
    """p50, p90, p99 (inf entries count as the slowest; nan for no values). Linear interpolation (numpy default)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    finite = np.isfinite(arr)
    if finite.all():
        p = np.percentile(arr, PERCENTILES)
        return (float(p[0]), float(p[1]), float(p[2]))
    # inf breaks interpolation: use the 'higher' rank rule so an infinite tail reads as inf
    p = np.percentile(np.where(finite, arr, np.finfo(float).max), PERCENTILES, method="higher")
    return tuple(float(v) if v < np.finfo(float).max else math.inf for v in p)  # type: ignore[return-value]


# ---- files ----------------------------------------------------------------------------------------------------


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in _finite(r).items()})
    return buf.getvalue()


def write_outputs(result: SimulationResult, out_dir: Path) -> list[Path]:
    """simulation.json, workflows.csv, steps.csv, pools.csv, queue.csv, latency_cdf.png, queue.png — each file
    written to a temporary name and renamed into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def text(name: str, body: str) -> None:
        atomic_write_text(out_dir / name, body)
        written.append(out_dir / name)

    text("simulation.json", json.dumps(result.summary(), indent=2) + "\n")
    text("workflows.csv", _csv([asdict(w) for w in result.workflows]))
    text("steps.csv", _csv([asdict(s) for s in result.steps]))
    text("pools.csv", _csv([asdict(p) for p in result.pools]))
    rows = []
    for i, t in enumerate(result.queue_t_s):
        row: dict[str, Any] = {"time_s": round(t, 6), "in_flight": result.in_flight[i]}
        row.update({p: q[i] for p, q in result.queue_by_pool.items()})
        rows.append(row)
    text("queue.csv", _csv(rows))
    for name, body in (("latency_cdf.png", _cdf_png(result)), ("queue.png", _queue_png(result))):
        atomic_write_bytes(out_dir / name, body)
        written.append(out_dir / name)
    return written


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _cdf_png(result: SimulationResult) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for w in result.workflows:
        lat = np.asarray(result.latencies_s.get(w.workflow, []), dtype=float)
        lat = lat[np.isfinite(lat)]
        if lat.size == 0:
            continue
        y = np.arange(1, lat.size + 1) / w.requests
        line = ax.plot(lat, y, label=f"{w.workflow} (attained {w.attainment:.1%})")[0]
        ax.axvline(w.sla_s, color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency, s (dashed: SLA)")
    ax.set_ylabel("share of requests")
    ax.set_title(f"{result.scenario}: simulated latency CDF ({result.arrivals}, seed {result.seed})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _queue_png(result: SimulationResult) -> bytes:
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    t = np.asarray(result.queue_t_s)
    busiest = sorted(result.queue_by_pool, key=lambda p: -max(result.queue_by_pool[p], default=0))[:8]
    for p in busiest:
        ax1.plot(t, result.queue_by_pool[p], label=p, linewidth=0.9)
    ax1.set_ylabel("waiting calls")
    ax1.set_title("queue length over time (8 longest queues)")
    ax1.legend(fontsize=7)
    ax1.grid(True, alpha=0.3)
    ax2.plot(t, result.in_flight, color="k", linewidth=0.9)
    ax2.set_ylabel("requests in flight")
    ax2.set_xlabel("simulated time, s")
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    return _png(fig)
