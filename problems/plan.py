"""The Plan and the SchedulePlan: the optimizer's outputs, written as JSON/YAML and read back by `hetplace check`,
`hetplace validate` and the reports. They live beside the input documents so that every consumer imports them from
below the optimizer.

Versioned (`schema_version`) so downstream tooling can rely on the shape; `hetplace schema plan` prints it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from hetplace.common.enums import Backend, Objective, Phase, SolverStatus, TerminationCondition
from hetplace.common.schema_base import Identifier, NonNegativeFloat, NonNegativeInt, PositiveInt, StrictModel

PLAN_SCHEMA_VERSION: Literal["1"] = "1"


def _without_unset(data: Any, keys: tuple[str, ...], model: Any) -> Any:
    """Drop optional robust/engine keys that are None, so nominal plans serialise exactly as before they existed."""
    if isinstance(data, dict):
        for k in keys:
            if getattr(model, k) is None:
                data.pop(k, None)
    return data


class FleetEntry(StrictModel):
    """How many devices of one type the plan uses and where they come from."""

    device: Identifier
    owned_used: NonNegativeInt
    owned_idle: NonNegativeInt = Field(description="Owned devices the plan leaves unused (retire or keep as spare).")
    bought: NonNegativeInt
    rented: NonNegativeInt
    nodes: NonNegativeInt = Field(description="Nodes (servers) the used devices occupy.")
    power_kw: NonNegativeFloat = Field(description="Facility power at average load (TDP × load × PUE), kW.")


class PoolAssignment(StrictModel):
    """One serving configuration chosen for a pool (a pool may mix several configs)."""

    pool: str = Field(
        description="Pool id, a readable name: '<model>:<phase>' for LLM pools, '<kind>:<model>' for encoders, "
        "'retrieval:<workflow>.<step>', 'tool:cpu'. Read the pool's identity from phase, model, workflow and step."
    )
    phase: Phase
    model: Identifier | None = None
    workflow: Identifier | None = Field(default=None, description="The workflow of a retrieval pool's step.")
    step: Identifier | None = Field(default=None, description="The step a retrieval pool serves.")
    device: Identifier
    weight_dtype: str | None = None
    kv_dtype: str | None = Field(
        default=None,
        description="KV-cache dtype of an LLM config; None (plans written before it was recorded) = the model's own.",
    )
    tensor_parallel: PositiveInt = 1
    batch: PositiveInt = 1
    replicas: PositiveInt
    devices: PositiveInt = Field(description="replicas × tensor_parallel.")
    throughput: NonNegativeFloat = Field(description="Capacity of these replicas in the pool's work unit per second.")
    throughput_unit: str = Field(description="e.g. 'prefill_tokens', 'decode_tokens', 'requests', 'items'.")
    demand: NonNegativeFloat = Field(description="Share of the pool's demand served here, same unit per second.")
    utilisation: float = Field(ge=0, le=1)
    load_limit: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="A co-located config's load level: its prefill stall is priced at this load and its replicas "
        "count for capacity at min(load_limit, max_utilisation). None = max_utilisation (plans before it existed).",
    )


class StepTiming(StrictModel):
    workflow: Identifier
    step: Identifier
    pool: str
    device: Identifier
    repeat: PositiveInt
    latency_s: NonNegativeFloat = Field(description="Latency of all repeats of the step (per request).")
    start_s: NonNegativeFloat = Field(description="Earliest start on the critical-path schedule.")
    transfer_s: NonNegativeFloat = Field(default=0.0, description="KV transfer time included (disaggregated serving).")
    latency_nominal_s: NonNegativeFloat | None = Field(
        default=None,
        description="Robust plans: the step's latency at the nominal estimate; latency_s is then the slow end "
        "(each LLM device at latency × (1 + its error band)), so the step's range is [latency_nominal_s, latency_s].",
    )

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unset(handler(self), ("latency_nominal_s",), self)


class WorkflowTiming(StrictModel):
    workflow: Identifier
    arrival_rate_rps: float = Field(gt=0)
    critical_path_s: NonNegativeFloat
    sla_s: float = Field(gt=0)
    slack_s: float = Field(description="sla_s − critical_path_s (negative = violated).")
    critical_steps: list[Identifier]
    critical_path_nominal_s: NonNegativeFloat | None = Field(
        default=None,
        description="Robust plans: the critical path at the nominal estimate; critical_path_s (held to the SLA) is "
        "then the slow end.",
    )

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unset(handler(self), ("critical_path_nominal_s",), self)


class TcoBreakdown(StrictModel):
    """Annual cost of the fleet, USD per year."""

    capex_usd_per_year: NonNegativeFloat = Field(description="Amortised purchases (+ residual value forgone).")
    energy_usd_per_year: NonNegativeFloat
    hosting_usd_per_year: NonNegativeFloat
    rental_usd_per_year: NonNegativeFloat
    total_usd_per_year: NonNegativeFloat
    usd_per_request: NonNegativeFloat
    usd_per_million_tokens: NonNegativeFloat
    purchases_usd: NonNegativeFloat = Field(description="Up-front spend on bought devices, USD.")


class SolverReport(StrictModel):
    backend: Backend
    status: SolverStatus
    termination: TerminationCondition | None = Field(
        default=None, description="Why the solver stopped (None in plans written before it was recorded)."
    )
    objective: float | None
    best_bound: float | None
    gap: float | None = Field(description="Relative gap (objective − bound) / objective; 0 when optimal.")
    wall_time_s: NonNegativeFloat
    time_limit_s: float | None = None
    threads: PositiveInt = 1
    first_solution_s: NonNegativeFloat | None = Field(default=None, description="Seconds to the first feasible plan.")
    extra_constraints: list[str] = Field(
        default_factory=list, description="The scenario's user functions whose rows the model held (not re-checked)."
    )


class Baseline(StrictModel):
    """Best fleet using a single accelerator type (for the saving reported beside every plan): that type serves
    every LLM, embedding and encoder step; CPU sockets serve only tool calls and retrieval."""

    device: Identifier
    status: SolverStatus
    total_usd_per_year: float | None
    saving_fraction: float | None = Field(
        description="(baseline − plan) / baseline; None when the baseline is infeasible."
    )


class RobustReport(StrictModel):
    """How a robust plan was priced: every LLM config at the slow end of its device's serving error band."""

    error_band: dict[Identifier, NonNegativeFloat] = Field(
        description="Per offered device: the relative error band planned for (calibration's serving_error_band, "
        "else the default assumption)."
    )
    latency: str = "× (1 + band): LLM step latencies (prefill, decode, co-located) held to the SLA at this slow end"
    throughput: str = "÷ (1 + band): LLM replica capacity derated too (a slower device serves less)"
    not_scaled: str = "KV transfers over the NIC, encoders, retrieval and tool calls (not the serving estimate)"


class Plan(StrictModel):
    schema_version: Literal["1"] = PLAN_SCHEMA_VERSION
    scenario: Identifier
    objective: Objective = Objective.min_tco
    fleet: list[FleetEntry]
    pools: list[PoolAssignment]
    steps: list[StepTiming]
    workflows: list[WorkflowTiming]
    tco: TcoBreakdown
    mean_critical_path_s: NonNegativeFloat | None = Field(
        default=None, description="Arrival-weighted mean of the workflows' critical paths (what min_latency minimises)."
    )
    solver: SolverReport
    baselines: list[Baseline] = Field(default_factory=list)
    assumptions: list[str] = Field(
        default_factory=list,
        description="Modelling approximations the numbers rest on (e.g. utilisation headroom stands in for queueing).",
    )
    engine: Identifier | None = Field(
        default=None, description="Serving engine the LLM menus were priced with (None = plain roofline)."
    )
    robust: RobustReport | None = Field(
        default=None, description="Set when the plan was made robust to the serving error band (`--robust`)."
    )

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_unset(handler(self), ("engine", "robust"), self)


class PeriodPlan(StrictModel):
    period: int
    demand_factor: float
    cost_usd: float = Field(description="Cost of this period (owned, rented, running and amortised purchases).")
    bought: dict[str, int] = Field(description="Devices bought at the start of this period.")
    held: dict[str, int] = Field(description="Bought devices in the fleet this period (this and earlier purchases).")
    plan: Plan


class SchedulePlan(StrictModel):
    scenario: str
    period_years: float
    periods: list[PeriodPlan]
    total_usd: float = Field(description="Cost over the whole horizon, USD.")
    purchases_usd: float
    greedy_total_usd: float | None = Field(description="The same horizon planned one period at a time, myopically.")
    greedy_excess_fraction: float | None = Field(description="(greedy − joint) / joint.")
    solver: SolverReport
    greedy_wall_time_s: float | None = None
