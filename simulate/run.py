"""`simulate_plan`: build the service tables, draw arrivals, run the engine and summarise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hetplace.common.errors import InputError
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Workflow
from hetplace.simulate.arrivals import Arrivals, ArrivalSpec, read_arrival_file, renewal_arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.results import (
    Conservation,
    PoolStats,
    SimulationResult,
    StepStats,
    WorkflowStats,
    percentiles,
)
from hetplace.simulate.service import CORES, ServiceModel, build_service_model

POISSON = ArrivalSpec("poisson")
WARMUP_FRACTION = 0.1  # the run's start fills the empty fleet and is not measured: a tenth of the run, at least
# the largest SLA (a request's expected lifetime, so long agent loops are in steady state), at most half the run
MIN_DRAIN_S = 60.0


@dataclass(frozen=True)
class SimOptions:
    duration_s: float = 600.0
    seed: int = 0
    arrivals: ArrivalSpec = POISSON
    warmup_s: float | None = None  # None = WARMUP_FRACTION of the duration
    samples: int = 240  # queue-length samples over the run
    service_cv: float = 0.0  # service-time variability (gamma factor of mean 1); 0 = the cost model's times


def simulate_plan(
    resolved: ResolvedScenario,
    plan: Plan,
    options: SimOptions,
    plan_src: str = "plan",
    service: ServiceModel | None = None,
) -> SimulationResult:
    """Simulate `plan` under `resolved`'s workflows for `options.duration_s` seconds of arrivals, then let the
    requests in flight finish (at most max(60 s, 3 × the largest SLA) more)."""
    if plan.scenario != resolved.scenario.id:
        raise InputError.single(
            plan_src, "scenario", f"plan is for scenario '{plan.scenario}', not '{resolved.scenario.id}'"
        )
    service = service or build_service_model(resolved, plan, plan_src)
    workflows = resolved.workflows
    arrivals = draw_arrivals(options, workflows)
    duration, warmup, drain = run_window(options, workflows, arrivals)
    engine = Engine(
        workflows, service, arrivals, duration, warmup, drain, options.seed + 1, options.samples, options.service_cv
    )
    rec = engine.run()
    window = max(duration - warmup, 1e-12)
    plan_paths = {w.workflow: w.critical_path_s for w in plan.workflows}
    wf_stats, latencies = [], {}
    for i, wf in enumerate(workflows):
        arrived = int(np.sum((arrivals.workflow == i) & (arrivals.time_s >= warmup) & (arrivals.time_s < duration)))
        stats, lat = workflow_stats(wf, arrived, rec.latency[i], plan_paths.get(wf.id))
        wf_stats.append(stats)
        latencies[wf.id] = lat.tolist()
    steps = []
    for wf in workflows:
        for s in wf.steps:
            key = next((k for k in rec.ttft if k.workflow == wf.id and k.step == s.id), None)
            if key is None:
                continue
            t50, t90, t99 = percentiles(rec.ttft[key])
            tp = rec.tpot.get(key, [])
            o50, o90, o99 = percentiles(tp) if tp else (None, None, None)
            steps.append(StepStats(wf.id, s.id, len(rec.ttft[key]), t50, t90, t99, o50, o90, o99))
    pools = []
    plan_util: dict[str, float] = {}
    plan_cap: dict[str, float] = {}
    plan_demand: dict[str, float] = {}
    for a in plan.pools:
        plan_cap[a.pool] = plan_cap.get(a.pool, 0.0) + a.throughput
        plan_demand[a.pool] = plan_demand.get(a.pool, 0.0) + a.demand
    for pid, cap in plan_cap.items():
        plan_util[pid] = plan_demand[pid] / cap if cap > 0 else 0.0
    for pid, ps in engine.pools.items():
        busy, q_area, work = engine.window.get(pid, (0.0, 0.0, 0.0))
        servers = ps.cores if ps.kind == CORES else len(ps.replicas)
        q = rec.sample_q.get(pid, [0])
        w50, _, w99 = percentiles(rec.wait.get(pid, []))
        pools.append(
            PoolStats(
                pool=pid,
                kind=ps.kind,
                replicas=len(ps.replicas),
                utilisation=busy / (servers * window) if servers else 0.0,
                load=work / window / plan_cap[pid] if plan_cap.get(pid) else 0.0,
                plan_utilisation=plan_util.get(pid),
                mean_queue=q_area / window,
                max_queue=int(max(q)),
                wait_p50_s=w50,
                wait_p99_s=w99,
            )
        )
    return SimulationResult(
        scenario=resolved.scenario.id,
        arrivals=options.arrivals.label,
        seed=options.seed,
        duration_s=duration,
        warmup_s=warmup,
        end_time_s=rec.end_time_s,
        events=rec.events,
        conservation=Conservation(rec.arrived_by_end, rec.done_by_end, rec.in_flight_at_end),
        workflows=wf_stats,
        steps=steps,
        pools=pools,
        queue_t_s=rec.sample_t,
        queue_by_pool=rec.sample_q,
        in_flight=rec.sample_in_flight,
        latencies_s=latencies,
    )


def run_window(options: SimOptions, workflows: list[Workflow], arrivals: Arrivals) -> tuple[float, float, float]:
    """(duration, warm-up, drain) in s: arrivals over the duration (a trace: its span, capped), the first tenth —
    at least the largest SLA, at most half — not measured, then at most max(60 s, 3 × the largest SLA) to finish."""
    duration = options.duration_s
    if options.arrivals.kind == "trace" and len(arrivals):
        duration = min(duration, float(arrivals.time_s[-1]) + 1e-9)
    longest_sla = max(w.sla.e2e_latency_s for w in workflows)
    warmup = options.warmup_s
    if warmup is None:
        warmup = min(0.5 * duration, max(WARMUP_FRACTION * duration, longest_sla))
    return duration, warmup, max(MIN_DRAIN_S, 3.0 * longest_sla)


def workflow_stats(
    wf: Workflow, arrived: int, finished_s: list[float], plan_path_s: float | None
) -> tuple[WorkflowStats, np.ndarray]:
    """A workflow's summary from the latencies of its measured requests that finished (`arrived` of them arrived;
    the rest count as misses, at +inf), and those latencies sorted with the misses."""
    done = np.sort(np.asarray(finished_s, dtype=float))
    lat = np.concatenate([done, np.full(arrived - done.size, np.inf)])
    p50, p90, p99 = percentiles(lat)
    sla = wf.sla.e2e_latency_s
    stats = WorkflowStats(
        workflow=wf.id,
        requests=arrived,
        unfinished=arrived - int(done.size),
        mean_s=float(done.mean()) if done.size else float("nan"),
        p50_s=p50,
        p90_s=p90,
        p99_s=p99,
        sla_s=sla,
        sla_percentile=wf.sla.percentile,
        attainment=float(np.sum(done <= sla) / arrived) if arrived else float("nan"),
        plan_critical_path_s=plan_path_s,
    )
    return stats, lat


def draw_arrivals(options: SimOptions, workflows: list[Workflow]) -> Arrivals:
    """The run's arrivals, drawn first from the seed's generator (so every run with this seed sees the same)."""
    rng = np.random.default_rng(options.seed)
    return _arrivals(
        options, workflows_ids=[w.id for w in workflows], rates=[w.arrival_rate_rps for w in workflows], rng=rng
    )


def _arrivals(options: SimOptions, workflows_ids: list[str], rates: list[float], rng: np.random.Generator) -> Arrivals:
    spec = options.arrivals
    if spec.kind == "trace":
        assert spec.path is not None
        return read_arrival_file(spec.path, workflows_ids, options.duration_s)
    return renewal_arrivals(rates, options.duration_s, rng, cv=spec.cv if spec.kind == "gamma" else 1.0)
