"""`simulate --switch`: one arrival stream served by a schedule of plans (switching at given times), against the
first plan kept static over the same arrivals.

Each plan is served at the rates it was made for (`at_plan_rates`), since its route split is a share of those; the
arrivals come from the trace (or the scenario's rates). A switch is blue-green: from its time on, every new request
goes to the new plan's fleet, which starts empty; the requests already in flight finish on the fleet they started
on. The fleets do not share devices while the old one drains (a re-placement with `solve --fleet` reuses the same
devices, so this is optimistic for the seconds of overlap). Each segment is simulated on its own (engine seed =
seed + 1 + segment index); the measured window is the static run's (after the warm-up, before the end of arrivals).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from rich.table import Table

from hetplace.common.errors import InputError
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan
from hetplace.simulate.arrivals import Arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.results import WorkflowStats
from hetplace.simulate.run import SimOptions, draw_arrivals, run_window, simulate_plan, workflow_stats
from hetplace.simulate.service import build_service_model


@dataclass(frozen=True)
class Segment:
    start_s: float
    plan: Plan
    source: str  # the plan's file, for messages and the report


@dataclass(frozen=True)
class SwitchComparison:
    scenario: str
    arrivals: str
    seed: int
    duration_s: float
    warmup_s: float
    schedule: list[tuple[float, str]]  # (start s, plan file) per segment, the first at 0
    static: list[WorkflowStats]  # the first plan for the whole run
    switched: list[WorkflowStats]

    def summary(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> Table:
        """Per workflow: p99 and attainment of the static plan beside the switched schedule's."""
        plans = ", ".join(f"{t:g} s: {src}" for t, src in self.schedule)
        table = Table(
            title=f"{self.scenario}: {self.duration_s:,.0f} s of {self.arrivals} arrivals (seed {self.seed}), measured "
            f"after {self.warmup_s:,.0f} s; static = {self.schedule[0][1]}; switched = {plans}"
        )
        for col in ("workflow", "requests", "SLA s", "static p99 s", "static attained", "switched p99 s",
                    "switched attained"):  # fmt: skip
            table.add_column(col, justify="left" if col == "workflow" else "right")
        for a, b in zip(self.static, self.switched, strict=True):
            table.add_row(
                a.workflow, f"{a.requests:,}", f"{a.sla_s:g}", f"{a.p99_s:.2f}", f"{a.attainment:.1%}",
                f"{b.p99_s:.2f}", f"{b.attainment:.1%}",
            )  # fmt: skip
        return table


def simulate_switching(resolved: ResolvedScenario, segments: list[Segment], options: SimOptions) -> SwitchComparison:
    """Simulate the schedule `segments` (the first starts at 0; starts strictly increasing) and the first plan alone."""
    starts = [s.start_s for s in segments]
    if starts[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(starts)):
        raise InputError.single("--switch", "", f"switch times must increase and be > 0, got {starts[1:]}")
    workflows = resolved.workflows
    arrivals = draw_arrivals(options, workflows)  # the same stream the static run draws
    duration, warmup, drain = run_window(options, workflows, arrivals)
    if starts[-1] >= duration:
        raise InputError.single(
            "--switch", "", f"switch at {starts[-1]:g} s is after the arrivals end ({duration:g} s)"
        )
    services = [build_service_model(at_plan_rates(resolved, s.plan), s.plan, s.source) for s in segments]
    static = simulate_plan(resolved, segments[0].plan, options, segments[0].source, services[0])
    finished: dict[int, list[float]] = {i: [] for i in range(len(workflows))}
    ends = [*starts[1:], duration]
    for k, (seg, end) in enumerate(zip(segments, ends, strict=True)):
        part = _window(arrivals, seg.start_s, end)
        seg_warmup = min(max(warmup - seg.start_s, 0.0), end - seg.start_s)
        engine = Engine(
            workflows,
            services[k],
            part,
            end - seg.start_s,
            seg_warmup,
            drain,
            options.seed + 1 + k,
            10,
            options.service_cv,
        )
        for i, lat in engine.run().latency.items():
            finished[i] += lat
    paths = {w.workflow: w.critical_path_s for w in segments[0].plan.workflows}
    switched = []
    for i, wf in enumerate(workflows):
        arrived = int(np.sum((arrivals.workflow == i) & (arrivals.time_s >= warmup) & (arrivals.time_s < duration)))
        switched.append(workflow_stats(wf, arrived, finished[i], paths.get(wf.id))[0])
    return SwitchComparison(
        scenario=resolved.scenario.id,
        arrivals=options.arrivals.label,
        seed=options.seed,
        duration_s=duration,
        warmup_s=warmup,
        schedule=[(s.start_s, s.source) for s in segments],
        static=static.workflows,
        switched=switched,
    )


def at_plan_rates(resolved: ResolvedScenario, plan: Plan) -> ResolvedScenario:
    """`resolved` with each workflow at the arrival rate `plan` was made for: a plan's split of a model between
    co-located and disaggregated routes is a share of the calls it planned for (a plan re-placed for another
    demand, e.g. by `solve --fleet`, splits another rate)."""
    rates = {w.workflow: w.arrival_rate_rps for w in plan.workflows}
    workflows = [
        w.model_copy(update={"arrival_rate_rps": rates[w.id]}) if w.id in rates else w for w in resolved.workflows
    ]
    return replace(resolved, workflows=workflows)


def _window(arrivals: Arrivals, start_s: float, end_s: float) -> Arrivals:
    """The arrivals in [start_s, end_s), shifted to start at 0."""
    m = (arrivals.time_s >= start_s) & (arrivals.time_s < end_s)
    return Arrivals(
        arrivals.time_s[m] - start_s,
        arrivals.workflow[m],
        arrivals.prompt_tokens[m],
        arrivals.output_tokens[m],
        arrivals.cached_tokens[m],
    )
