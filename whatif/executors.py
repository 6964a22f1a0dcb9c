"""Run sweep points: in this process, on a local process pool (default), or on a Ray cluster.

Every executor calls the same `solve_point` on the same plain-data tasks and returns results in task order, so
the rows are identical whichever runs them (solver runs are single-threaded and seeded; a `--time-limit` makes a
point depend on machine speed, `--gap` does not). `on_done` is called once per finished point (progress bars).
With warm starts (`SolveOptions.warm_start`) points are handed out as the points whose plans start them finish
(whatif/warm.py); which plans start a point does not depend on the executor or the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait

from hetplace.common.interrupts import ignore_sigint
from hetplace.problems.sweep_point import PointResult
from hetplace.whatif.sweep import PointTask, solve_point, solve_point_with_plan
from hetplace.whatif.warm import BisectionSchedule

EXECUTORS = ("process", "ray")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_points(
    tasks: list[PointTask],
    executor: str = "process",
    workers: int | None = None,
    address: str | None = None,
    on_done: Callable[[PointResult], None] | None = None,
) -> list[PointResult]:
    if executor == "ray":
        results = _run_ray(tasks, workers, address, on_done)
    elif executor == "process":
        results = _run_process_pool(tasks, workers or default_workers(), on_done)
    else:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    return sorted(results, key=lambda r: r.index)


def _warm(tasks: list[PointTask]) -> bool:
    return len(tasks) > 2 and tasks[0].options.warm_start  # two points are both ends: nothing to start from


def _run_process_pool(tasks, workers: int, on_done) -> list[PointResult]:
    if workers == 1 or len(tasks) == 1:  # no pool to start: same code path, in this process
        out = []
        if _warm(tasks):
            schedule = BisectionSchedule(tasks)
            queue = schedule.first()
            while queue:
                row, plan = solve_point_with_plan(queue.pop(0))
                out.append(row)
                if on_done:
                    on_done(row)
                queue += schedule.finished(row, plan)
            return out
        for t in tasks:
            out.append(solve_point(t))
            if on_done:
                on_done(out[-1])
        return out
    # spawn, not fork: a forked child would inherit solver-library state from the parent
    ctx = multiprocessing.get_context("spawn")
    out = []
    # Workers ignore Ctrl-C; on one the parent cancels what is queued and stops the workers (no waiting for them).
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=ignore_sigint)
    try:
        if _warm(tasks):
            _drive_pool(pool, BisectionSchedule(tasks), out, on_done)
        else:
            for fut in as_completed([pool.submit(solve_point, t) for t in tasks]):
                out.append(fut.result())
                if on_done:
                    on_done(out[-1])
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before Python 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.terminate()
        raise
    pool.shutdown()
    return out


def _drive_pool(pool: ProcessPoolExecutor, schedule: BisectionSchedule, out: list[PointResult], on_done) -> None:
    """Submit each point once the points that start it have finished (the pool runs them first come, first
    served)."""
    pending: set[Future] = {pool.submit(solve_point_with_plan, t) for t in schedule.first()}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for fut in sorted(done, key=lambda f: f.result()[0].index):
            row, plan = fut.result()
            out.append(row)
            if on_done:
                on_done(row)
            pending |= {pool.submit(solve_point_with_plan, t) for t in schedule.finished(row, plan)}


def _run_ray(tasks, workers: int | None, address: str | None, on_done) -> list[PointResult]:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the ray executor needs the optional extra: pip install -e '.[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": workers or default_workers()}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
    try:
        if _warm(tasks):
            return _drive_ray(ray, BisectionSchedule(tasks), on_done)
        out = []
        remote = ray.remote(num_cpus=1)(solve_point)
        pending = [remote.remote(t) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            out.append(ray.get(done[0]))
            if on_done:
                on_done(out[-1])
        return out
    finally:
        if started_here:
            ray.shutdown()


def _drive_ray(ray, schedule: BisectionSchedule, on_done) -> list[PointResult]:
    """`_drive_pool` on Ray: a point is submitted once the points that start it have finished."""
    out = []
    remote = ray.remote(num_cpus=1)(solve_point_with_plan)
    pending = [remote.remote(t) for t in schedule.first()]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        row, plan = ray.get(done[0])
        out.append(row)
        if on_done:
            on_done(row)
        pending += [remote.remote(t) for t in schedule.finished(row, plan)]
    return out
