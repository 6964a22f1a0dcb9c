"""The discrete-event engine: a heapq event loop over the plan's replicas (no DES library: plain tuples on one
heap and slotted records run several times faster than a process-based library at a million events).

Servers, per pool kind (simulate.service):
  BATCH      prefill, encoder and retrieval replicas: a free replica takes up to `batch` waiting calls from the
             pool's FIFO queue and serves them in one pass (latency of a k-call pass, `pass_s`); it never waits
             for a batch to fill. Free replicas are taken fastest config first.
  SLOTS      decode replicas, continuous batching: up to `batch` sequences in flight; every decode step advances
             all of them by one token and takes a[n] + b[n]·(mean context of the n in flight). A new sequence
             joins the least-loaded replica with a free slot, else waits in the pool's FIFO queue.
  COLOCATED  both phases on one replica as the optimizer assumes: a prompt is admitted when a slot is free, its
             prefill runs alone (batch 1) first and every decode step waits meanwhile; then it decodes with the
             others. Waiting prompts take priority over decoding while slots are free.
  CORES      the CPU pool: a tool call holds k = ceil(cpu_s / latency_s) cores (the parallelism its stated latency
             implies; usually 1) for cpu_s / k and ends at the later of its stated wall-clock latency and the end
             of its CPU work (waiting for cores included; FIFO, the head waits for all its k cores).
A disaggregated LLM call goes prefill pool → KV transfer (a delay) → decode pool; the engine's per-request
front-end time (engine terms) is added to every LLM call. Decode progress between events is tracked as a
continuous token counter per replica (exact for piecewise-constant step times; tokens are not discretised).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from hetplace.problems.schema import LlmStep, RetrievalStep, ToolStep, Workflow
from hetplace.simulate.arrivals import NO_TOKENS, Arrivals
from hetplace.simulate.service import COLOCATED, CORES, SLOTS, ConfigTable, PoolTable, ServiceModel, StepKey

# Event kinds.
_BATCH_END, _DEPART, _PREFILL_END, _CORE_FREE, _CALL_DONE, _TO_DECODE, _SAMPLE, _MARK = range(8)
EPS_TOKENS = 1e-9


class Req:
    """One workflow request walking its DAG."""

    __slots__ = ("counted", "left", "pending", "reps", "t0", "tokens", "wf")

    def __init__(
        self, wf: int, t0: float, pending: list[int], n_steps: int, tokens: tuple[int, int, int] | None, counted: bool
    ):
        self.wf = wf
        self.t0 = t0
        self.pending = pending
        self.reps = [0] * n_steps
        self.left = n_steps
        self.tokens = tokens
        self.counted = counted


class Job:
    """One execution of a step in a pool."""

    __slots__ = (
        "ctx",
        "extra_s",
        "key",
        "out",
        "req",
        "route",
        "scale",
        "si",
        "t0",
        "t_first",
        "t_pool",
        "target",
        "units",
    )

    def __init__(self, req: Req, si: int, t0: float, key: StepKey, scale: float, units: float):
        self.req = req
        self.si = si
        self.t0 = t0
        self.t_pool = t0  # when it joined its current pool's queue
        self.key = key
        self.scale = scale
        self.units = units
        self.out = 0.0
        self.ctx = 0.0
        self.target = 0.0
        self.t_first = -1.0
        self.extra_s = 0.0
        self.route = ""


class PoolState:
    """A pool's queue, replicas and counters."""

    __slots__ = (
        "busy_area",
        "busy_now",
        "capacity_slots",
        "cores",
        "free_cores",
        "id",
        "idle",
        "kind",
        "q_area",
        "queue",
        "replicas",
        "t_mark",
        "table",
        "work",
    )

    def __init__(self, table: PoolTable):
        self.table = table
        self.id = table.id
        self.kind = table.kind
        self.queue: deque[Job] = deque()
        self.replicas: list[Replica] = []
        self.idle: list[int] = []  # BATCH: heap of free replica ranks (fastest first)
        self.cores = sum(c.cores for c in table.configs)
        self.free_cores = self.cores
        self.work = 0.0  # work units completed inside the measuring window
        self.busy_area = 0.0  # ∫ busy servers dt (BATCH: replicas; SLOTS/COLOCATED: sequences/batch; CORES: cores)
        self.q_area = 0.0  # ∫ queue length dt
        self.t_mark = 0.0
        self.busy_now = 0.0
        self.capacity_slots = 0.0

    def account(self, t: float) -> None:
        dt = t - self.t_mark
        if dt > 0:
            self.busy_area += self.busy_now * dt
            self.q_area += len(self.queue) * dt
            self.t_mark = t


class Replica:
    __slots__ = (
        "a",
        "b",
        "cfg",
        "counter",
        "ctx_sum",
        "departs",
        "jobs",
        "n",
        "pool",
        "prefilling",
        "rank",
        "step_s",
        "t_last",
        "version",
    )

    def __init__(self, pool: PoolState, cfg: ConfigTable, rank: int):
        self.pool = pool
        self.cfg = cfg
        self.rank = rank
        self.jobs: list[Job] = []
        self.n = 0
        self.counter = 0.0
        self.t_last = 0.0
        self.step_s = 0.0
        self.version = 0
        self.departs: list[tuple[float, int, Job]] = []
        self.ctx_sum = 0.0
        self.prefilling: Job | None = None
        self.a = cfg.step_a_s
        self.b = cfg.step_b_s


@dataclass(frozen=True)
class StepPlan:
    """A workflow step as the engine runs it."""

    key: StepKey
    repeat: int
    succ: tuple[int, ...]
    n_pred: int
    llm: bool
    model: str = ""
    pool: str = ""
    uncached: float = 0.0
    prompt: float = 0.0
    growth: float = 0.0
    out: float = 0.0
    latency_s: float = 0.0  # tool
    cpu_s: float = 0.0  # tool
    units: float = 1.0  # work units of one execution in its non-LLM pool (items, queries, CPU-seconds)


@dataclass
class Recorder:
    """What the engine measures. Latencies of requests arriving in [warmup, duration); inf = unfinished."""

    latency: dict[int, list[float]] = field(default_factory=dict)
    ttft: dict[StepKey, list[float]] = field(default_factory=dict)
    tpot: dict[StepKey, list[float]] = field(default_factory=dict)
    wait: dict[str, list[float]] = field(default_factory=dict)  # per pool: queueing delay of each call
    sample_t: list[float] = field(default_factory=list)
    sample_q: dict[str, list[int]] = field(default_factory=dict)
    sample_in_flight: list[int] = field(default_factory=list)
    arrived_by_end: int = 0
    done_by_end: int = 0
    in_flight_at_end: int = 0
    arrived_total: int = 0
    done_total: int = 0
    end_time_s: float = 0.0
    events: int = 0


def compile_workflows(workflows: list[Workflow], service: ServiceModel) -> list[list[StepPlan]]:
    """Each workflow's steps in file order with successor lists, predecessor counts and pool links."""
    out = []
    for wf in workflows:
        idx = {s.id: i for i, s in enumerate(wf.steps)}
        succ: list[list[int]] = [[] for _ in wf.steps]
        for i, s in enumerate(wf.steps):
            for p in s.after:
                succ[idx[p]].append(i)
        plans = []
        for i, s in enumerate(wf.steps):
            key = StepKey(wf.id, s.id)
            base = StepPlan(key, s.repeat, tuple(succ[i]), len(s.after), llm=isinstance(s, LlmStep))
            if isinstance(s, LlmStep):
                plans.append(
                    replace(
                        base,
                        model=s.model,
                        uncached=float(s.prompt_tokens - s.cached_prefix_tokens),
                        prompt=float(s.prompt_tokens),
                        growth=float(s.prompt_growth_tokens_per_repeat),
                        out=float(s.output_tokens),
                    )
                )
            elif isinstance(s, ToolStep):
                pool = service.step_pool[key]
                plans.append(replace(base, pool=pool, latency_s=s.latency_s, cpu_s=s.cpu_s, units=s.cpu_s))
            else:
                units = float(s.queries if isinstance(s, RetrievalStep) else s.items)
                plans.append(replace(base, pool=service.step_pool[key], units=units))
        out.append(plans)
    return out


class Engine:
    def __init__(
        self,
        workflows: list[Workflow],
        service: ServiceModel,
        arrivals: Arrivals,
        duration_s: float,
        warmup_s: float,
        drain_s: float,
        seed: int,
        samples: int = 240,
        service_cv: float = 0.0,
    ):
        self.workflows = workflows
        self.service = service
        self.arrivals = arrivals
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.horizon_s = duration_s + drain_s
        self.plans = compile_workflows(workflows, service)
        self.first_llm = [next((i for i, p in enumerate(ps) if p.llm), -1) for ps in self.plans]
        self.rng = np.random.default_rng(seed)
        # Optional service-time variability: each call's pass / CPU time × a gamma factor of mean 1 and this CV
        # (0 = the cost model's deterministic times). Used to validate the queues against M/M/c and M/G/c.
        self.service_cv = service_cv
        self._rng_service = np.random.default_rng([seed, 7])
        self._u = self.rng.random(4096)
        self._ui = 0
        self.heap: list[tuple[float, int, int, object, int]] = []
        self.seq = 0
        self.pools: dict[str, PoolState] = {}
        for pid, table in service.pools.items():
            ps = PoolState(table)
            # fastest configs first: ranks follow the first step's batch-1 pass, else the decode step at n = 1
            order = sorted(range(len(table.configs)), key=lambda i: _speed_key(table.configs[i]))
            for ci in order:
                cfg = table.configs[ci]
                for _ in range(cfg.replicas):
                    r = Replica(ps, cfg, len(ps.replicas))
                    ps.replicas.append(r)
            ps.idle = list(range(len(ps.replicas)))
            ps.capacity_slots = float(sum(r.cfg.batch for r in ps.replicas)) if ps.kind in (SLOTS, COLOCATED) else 0.0
            self.pools[pid] = ps
        self.rec = Recorder()
        self.rec.latency = {i: [] for i in range(len(workflows))}
        self.samples = samples
        self.in_flight = 0
        self.now = 0.0
        self.window: dict[str, tuple[float, float, float]] = {}

    # ---- plumbing ------------------------------------------------------------------------------------------

    def _push(self, t: float, kind: int, obj: object, arg: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, obj, arg))

    def _service_factor(self) -> float:
        if self.service_cv <= 0:
            return 1.0
        shape = 1.0 / (self.service_cv * self.service_cv)
        return float(self._rng_service.gamma(shape, 1.0 / shape))

    def _waited(self, ps: PoolState, job: Job, t: float) -> None:
        if job.req.counted:
            self.rec.wait.setdefault(ps.id, []).append(t - job.t_pool)

    def _uniform(self) -> float:
        if self._ui >= self._u.size:
            self._u = self.rng.random(4096)
            self._ui = 0
        self._ui += 1
        return float(self._u[self._ui - 1])

    # ---- run -----------------------------------------------------------------------------------------------

    def run(self) -> Recorder:
        arr = self.arrivals
        times = arr.time_s.tolist()
        wfs = arr.workflow.tolist()
        toks = list(
            zip(arr.prompt_tokens.tolist(), arr.output_tokens.tolist(), arr.cached_tokens.tolist(), strict=True)
        )
        n_arr = len(times)
        ai = 0
        heap = self.heap
        self._push(self.warmup_s, _MARK, None, 0)
        self._push(self.duration_s, _MARK, None, 1)
        dt_sample = self.duration_s / self.samples
        self._push(0.0, _SAMPLE, None, 0)
        handlers = {
            _BATCH_END: self._batch_end,
            _DEPART: self._depart,
            _PREFILL_END: self._prefill_end,
            _CORE_FREE: self._core_free,
            _CALL_DONE: self._call_done,
            _TO_DECODE: self._to_decode,
        }
        events = 0
        while True:
            t_next = heap[0][0] if heap else float("inf")
            if ai < n_arr and times[ai] <= t_next:
                t = times[ai]
                self.now = t
                self._arrive(wfs[ai], t, toks[ai])
                ai += 1
                events += 1
                continue
            if not heap or t_next > self.horizon_s:
                break
            t, _, kind, obj, arg = heapq.heappop(heap)
            self.now = t
            events += 1
            if kind == _SAMPLE:
                self._sample(t)
                if t + dt_sample <= self.duration_s + 1e-9 * self.duration_s:
                    self._push(t + dt_sample, _SAMPLE, None, 0)
                continue
            if kind == _MARK:
                self._mark(t, arg)
                continue
            handlers[kind](obj, arg, t)
        self.rec.end_time_s = self.now
        self.rec.events = events
        for ps in self.pools.values():
            ps.account(min(self.now, self.horizon_s))
        return self.rec

    def _mark(self, t: float, which: int) -> None:
        for ps in self.pools.values():
            ps.account(t)
            if which == 0:
                ps.busy_area = 0.0
                ps.q_area = 0.0
                ps.work = 0.0
        if which == 1:
            self.rec.arrived_by_end = self.rec.arrived_total
            self.rec.done_by_end = self.rec.done_total
            self.rec.in_flight_at_end = self.in_flight
            self.window = {pid: (ps.busy_area, ps.q_area, ps.work) for pid, ps in self.pools.items()}

    def _sample(self, t: float) -> None:
        self.rec.sample_t.append(t)
        self.rec.sample_in_flight.append(self.in_flight)
        for pid, ps in self.pools.items():
            self.rec.sample_q.setdefault(pid, []).append(len(ps.queue))

    # ---- requests ------------------------------------------------------------------------------------------

    def _arrive(self, wf: int, t: float, tokens: tuple[int, int, int]) -> None:
        plans = self.plans[wf]
        counted = self.warmup_s <= t < self.duration_s
        has_tokens = tokens[0] != NO_TOKENS or tokens[1] != NO_TOKENS or tokens[2] != NO_TOKENS
        req = Req(wf, t, [p.n_pred for p in plans], len(plans), tokens if has_tokens else None, counted)
        self.rec.arrived_total += 1
        self.in_flight += 1
        for i, p in enumerate(plans):
            if p.n_pred == 0:
                self._start_exec(req, i, t)

    def _start_exec(self, req: Req, si: int, t: float) -> None:
        p = self.plans[req.wf][si]
        if p.llm:
            self._start_llm(req, si, p, t)
            return
        ps = self.pools[p.pool]
        job = Job(req, si, t, p.key, self._service_factor(), p.units)
        if ps.kind == CORES:
            self._tool_submit(ps, job, p, t)
        else:
            self._batch_submit(ps, job, t)

    def _exec_done(self, req: Req, si: int, t: float) -> None:
        plans = self.plans[req.wf]
        req.reps[si] += 1
        p = plans[si]
        if req.reps[si] < p.repeat:
            self._start_exec(req, si, t)
            return
        for s in p.succ:
            req.pending[s] -= 1
            if req.pending[s] == 0:
                self._start_exec(req, s, t)
        req.left -= 1
        if req.left == 0:
            self.in_flight -= 1
            self.rec.done_total += 1
            if req.counted:
                self.rec.latency[req.wf].append(t - req.t0)

    # ---- LLM calls -----------------------------------------------------------------------------------------

    def _start_llm(self, req: Req, si: int, p: StepPlan, t: float) -> None:
        rep = req.reps[si]
        uncached, prompt, out = p.uncached, p.prompt, p.out
        if req.tokens is not None and si == self.first_llm[req.wf]:
            tp, to, tc = req.tokens
            if tp != NO_TOKENS:
                prompt = float(tp)
                uncached = float(tp - (tc if tc != NO_TOKENS else (p.prompt - p.uncached)))
                uncached = max(1.0, uncached)
            if to != NO_TOKENS:
                out = float(to)
        job = Job(req, si, t, p.key, uncached / p.uncached * self._service_factor(), uncached)
        job.out = out
        job.ctx = prompt + rep * p.growth + out / 2.0
        route = self.service.llm[p.model]
        if route.colocated is not None and (route.prefill is None or self._uniform() < route.colocated_share):
            job.route = route.colocated
            self._colocated_submit(self.pools[route.colocated], job, t)
        else:
            assert route.prefill is not None and route.decode is not None
            job.route = route.decode
            dec = self.service.pools[route.decode]
            job.extra_s = dec.transfer_s.get(p.key, 0.0) * (prompt / p.prompt)
            self._batch_submit(self.pools[route.prefill], job, t)

    def _to_decode(self, job: object, _arg: int, t: float) -> None:
        assert isinstance(job, Job)
        self._slots_submit(self.pools[job.route], job, t)

    def _call_done(self, job: object, _arg: int, t: float) -> None:
        assert isinstance(job, Job)
        if job.req.counted and job.t_first >= 0:
            key = job.key
            self.rec.ttft.setdefault(key, []).append(job.t_first - job.t0)
            if job.out > 1:
                self.rec.tpot.setdefault(key, []).append((t - job.t_first) / (job.out - 1))
        self._exec_done(job.req, job.si, t)

    # ---- BATCH pools ---------------------------------------------------------------------------------------

    def _batch_submit(self, ps: PoolState, job: Job, t: float) -> None:
        job.t_pool = t
        if ps.idle:
            ps.account(t)
            self._batch_start(ps, ps.replicas[heapq.heappop(ps.idle)], [job], t)
        else:
            ps.account(t)
            ps.queue.append(job)

    def _batch_start(self, ps: PoolState, r: Replica, jobs: list[Job], t: float) -> None:
        k = len(jobs)
        pass_s = r.cfg.pass_s
        dur = sum(pass_s[j.key][k - 1] * j.scale for j in jobs) / k
        for j in jobs:
            self._waited(ps, j, t)
        r.jobs = jobs
        ps.busy_now += 1.0
        self._push(t + dur, _BATCH_END, r, 0)

    def _batch_end(self, r: object, _arg: int, t: float) -> None:
        assert isinstance(r, Replica)
        ps = r.pool
        ps.account(t)
        ps.busy_now -= 1.0
        jobs = r.jobs
        r.jobs = []
        if ps.queue:
            take = [ps.queue.popleft() for _ in range(min(r.cfg.batch, len(ps.queue)))]
            self._batch_start(ps, r, take, t)
        else:
            heapq.heappush(ps.idle, r.rank)
        for j in jobs:
            ps.work += j.units
            if j.route:  # an LLM prefill: the KV moves to the decode pool
                j.extra_s += r.cfg.front_s
                self._push(t + j.extra_s, _TO_DECODE, j, 0)
            else:
                self._exec_done(j.req, j.si, t)

    # ---- decode: SLOTS and COLOCATED -----------------------------------------------------------------------

    def _advance(self, r: Replica, t: float) -> None:
        if r.n and r.prefilling is None and t > r.t_last:
            r.counter += (t - r.t_last) / r.step_s
        r.t_last = t

    def _reschedule(self, r: Replica, t: float) -> None:
        r.version += 1
        if r.n and r.prefilling is None:
            r.step_s = r.a[r.n - 1] + r.b[r.n - 1] * (r.ctx_sum / r.n)
            gap = r.departs[0][0] - r.counter
            self._push(t + (gap if gap > 0 else 0.0) * r.step_s, _DEPART, r, r.version)

    def _join(self, r: Replica, job: Job, t: float) -> None:
        """Start decoding `job` on `r` (its counter advanced to t)."""
        ps = r.pool
        if ps.kind == SLOTS:
            self._waited(ps, job, t)
        ps.busy_now += 1.0 / r.cfg.batch
        r.n += 1
        r.ctx_sum += job.ctx
        job.target = r.counter + job.out
        step_s = r.a[r.n - 1] + r.b[r.n - 1] * (r.ctx_sum / r.n)
        job.t_first = t + step_s
        self.seq += 1
        heapq.heappush(r.departs, (job.target, self.seq, job))

    def _slots_submit(self, ps: PoolState, job: Job, t: float) -> None:
        job.t_pool = t
        best: Replica | None = None
        for r in ps.replicas:
            if r.n < r.cfg.batch and (best is None or r.n < best.n):
                best = r
                if r.n == 0:
                    break
        ps.account(t)
        if best is None:
            ps.queue.append(job)
            return
        self._advance(best, t)
        self._join(best, job, t)
        self._reschedule(best, t)

    def _depart(self, r: object, version: int, t: float) -> None:
        assert isinstance(r, Replica)
        if version != r.version:
            return
        ps = r.pool
        ps.account(t)
        self._advance(r, t)
        done = []
        while r.departs and r.departs[0][0] <= r.counter + EPS_TOKENS:
            _, _, job = heapq.heappop(r.departs)
            r.n -= 1
            r.ctx_sum -= job.ctx
            ps.busy_now -= 1.0 / r.cfg.batch
            done.append(job)
        if not r.departs:
            r.counter = 0.0
            r.ctx_sum = 0.0
        if ps.kind == SLOTS:
            while ps.queue and r.n < r.cfg.batch:
                self._join(r, ps.queue.popleft(), t)
        elif r.prefilling is None and ps.queue and r.n < r.cfg.batch:
            self._start_prefill(r, ps.queue.popleft(), t)
        self._reschedule(r, t)
        front = r.cfg.front_s
        for job in done:
            ps.work += 1.0 if ps.kind == COLOCATED else job.out
            if ps.kind == COLOCATED:
                self._push(t + front, _CALL_DONE, job, 0)
            else:
                self._call_done(job, 0, t)

    def _colocated_submit(self, ps: PoolState, job: Job, t: float) -> None:
        job.t_pool = t
        best: Replica | None = None
        for r in ps.replicas:
            if r.prefilling is None and r.n < r.cfg.batch and (best is None or r.n < best.n):
                best = r
                if r.n == 0:
                    break
        ps.account(t)
        if best is None:
            ps.queue.append(job)
            return
        self._start_prefill(best, job, t)
        self._reschedule(best, t)

    def _start_prefill(self, r: Replica, job: Job, t: float) -> None:
        """Pause decoding on `r` and prefill `job` alone (batch 1)."""
        self._advance(r, t)
        self._waited(r.pool, job, t)
        r.prefilling = job
        r.pool.busy_now += 1.0 / r.cfg.batch
        self._push(t + r.cfg.pass_s[job.key][0] * job.scale, _PREFILL_END, r, 0)

    def _prefill_end(self, r: object, _arg: int, t: float) -> None:
        assert isinstance(r, Replica)
        ps = r.pool
        ps.account(t)
        job = r.prefilling
        assert job is not None
        r.prefilling = None
        r.t_last = t
        ps.busy_now -= 1.0 / r.cfg.batch
        self._join(r, job, t)
        if ps.queue and r.n < r.cfg.batch:
            self._start_prefill(r, ps.queue.popleft(), t)
        self._reschedule(r, t)

    # ---- CORES ---------------------------------------------------------------------------------------------

    def _tool_submit(self, ps: PoolState, job: Job, p: StepPlan, t: float) -> None:
        job.t_pool = t
        if p.cpu_s <= 0:
            self._push(t + p.latency_s, _CALL_DONE, job, 0)
            return
        ps.account(t)
        if not ps.queue and ps.free_cores >= _tool_cores(ps, p):
            self._start_tool(ps, job, p, t)
        else:
            ps.queue.append(job)

    def _start_tool(self, ps: PoolState, job: Job, p: StepPlan, t: float) -> None:
        """Run the call's CPU work on the cores its stated latency implies (`_tool_cores`), in parallel; the call
        ends at the later of its wall-clock latency (from its start) and the end of that work."""
        k = _tool_cores(ps, p)
        ps.free_cores -= k
        ps.busy_now += float(k)
        cpu_s = p.cpu_s * job.scale
        self._waited(ps, job, t)
        self._push(t + cpu_s / k, _CORE_FREE, ps, k)
        self._push(max(job.t0 + p.latency_s, t + cpu_s / k), _CALL_DONE, job, 0)
        ps.work += cpu_s

    def _core_free(self, ps: object, cores: int, t: float) -> None:
        assert isinstance(ps, PoolState)
        ps.account(t)
        ps.free_cores += cores
        ps.busy_now -= float(cores)
        while ps.queue:  # FIFO: the head waits until it has all its cores
            job = ps.queue[0]
            p = self.plans[job.req.wf][job.si]
            if ps.free_cores < _tool_cores(ps, p):
                break
            ps.queue.popleft()
            self._start_tool(ps, job, p, t)


def _tool_cores(ps: PoolState, p: StepPlan) -> int:
    """Cores one tool call occupies: ceil(cpu_s / latency_s), the parallelism its stated wall-clock latency implies
    (coding-agent's test suite: 120 CPU-s in 45 s = 3 cores), at least 1 and at most the pool's cores. One core for
    all its CPU-seconds would stretch such a call to cpu_s, past the latency the workflow states and the optimizer
    plans with."""
    if p.latency_s <= 0:
        return 1
    return max(1, min(ps.cores, math.ceil(p.cpu_s / p.latency_s - 1e-9)))


def _speed_key(cfg: ConfigTable) -> float:
    if cfg.pass_s:
        return min(v[0] for v in cfg.pass_s.values())
    if cfg.step_a_s:
        return cfg.step_a_s[0]
    return 0.0
