"""Schemas of problem inputs: agent workflows (DAGs of steps) and scenarios (demand + hardware offer + economics).

Structural rules that need more than one field (unknown step references, cycles) are checked here; references
into the catalogs (model and device ids) are checked when a file is loaded against them, in `problems.loader`
(`workflow_reference_problems` for a workflow's models, `_hardware_reference_problems` for a scenario's devices).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from hetplace.catalogs.schema import Dtype
from hetplace.common.schema_base import (
    Fraction,
    Identifier,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Source,
    StrictModel,
)
from hetplace.costmodels.precision import KV_CACHE_DTYPES
from hetplace.costmodels.tco import DEFAULT_ECONOMICS

# A purchase or rental offer without `max_count` is capped here: large enough never to bind on a real fleet, finite
# so that CP-SAT gets bounded integer variables. The optimizer and the checker both read this one number.
UNLIMITED_COUNT = 100_000

class StepBase(StrictModel):
    id: Identifier
    after: list[Identifier] = Field(
        default_factory=list, description="Steps that must finish before this one starts (the DAG's edges)."
    )
    repeat: PositiveInt = Field(
        default=1,
        description="Sequential executions per request (agent-loop iterations). A loop over a chain of steps is "
        "written as the same repeat on each step of the chain: iterations are sequential, so critical path and "
        "demand are the same.",
    )
    description: str | None = None


class LlmStep(StepBase):
    kind: Literal["llm"]
    model: Identifier
    prompt_tokens: PositiveInt = Field(description="Input tokens of the first execution, cached prefix included.")
    cached_prefix_tokens: NonNegativeInt = Field(
        default=0, description="Leading prompt tokens whose KV is reused from a cache (not recomputed)."
    )
    output_tokens: PositiveInt
    prompt_growth_tokens_per_repeat: NonNegativeInt = Field(
        default=0,
        description="Tokens the prompt grows by on each further repeat (tool results and prior turns appended). "
        "Repeat i has prompt_tokens + i·growth tokens of which cached_prefix_tokens + i·growth are cached: the "
        "previous iteration's context is reused through prefix caching, so each repeat prefills "
        "prompt_tokens − cached_prefix_tokens new tokens.",
    )
    ttft_slo_s: PositiveFloat | None = Field(default=None, description="Optional time-to-first-token target.")
    tpot_slo_s: PositiveFloat | None = Field(default=None, description="Optional time-per-output-token target.")

    @model_validator(mode="after")
    def _check_prefix(self) -> LlmStep:
        if self.cached_prefix_tokens >= self.prompt_tokens:
            raise ValueError(
                f"cached_prefix_tokens: {self.cached_prefix_tokens} must be < prompt_tokens "
                f"{self.prompt_tokens} (at least one prompt token is new)"
            )
        return self


class EmbedStep(StepBase):
    kind: Literal["embed"]
    model: Identifier
    items: PositiveInt = Field(description="Texts embedded per execution (the query, or chunks of fetched pages).")
    tokens_per_item: PositiveInt


class RetrievalStep(StepBase):
    kind: Literal["retrieval"]
    corpus_vectors: PositiveInt = Field(description="Vectors in the index.")
    dim: PositiveInt = Field(description="Vector dimension.")
    top_k: PositiveInt
    index: Literal["flat", "ivf", "hnsw"] = Field(
        default="hnsw", description="flat = brute force; ivf/hnsw = approximate nearest neighbour."
    )
    vector_dtype: Dtype = Dtype.fp32
    queries: PositiveInt = Field(default=1, description="Queries per execution.")

    @model_validator(mode="after")
    def _check_k(self) -> RetrievalStep:
        if self.top_k > self.corpus_vectors:
            raise ValueError(f"top_k: {self.top_k} exceeds corpus_vectors {self.corpus_vectors}")
        return self


class ToolStep(StepBase):
    kind: Literal["tool"]
    tool: str = Field(description="What the tool is (code execution, web fetch, ...), for reports.")
    latency_s: PositiveFloat = Field(description="Wall-clock time of one call, external waits included.")
    cpu_s: PositiveFloat = Field(
        description="CPU-seconds one call consumes on the serving fleet's CPUs (> 0: tools are sized by it; for an "
        "external API give the fleet's own share, e.g. 0.001 s for the HTTP client and parsing)."
    )


class ConvertStep(StepBase):
    kind: Literal["convert"]
    model: Identifier = Field(description="Encoder model (vision or speech) that converts the input.")
    items: PositiveInt = Field(description="Inputs converted per execution (screenshots, audio clips).")


Step = Annotated[LlmStep | EmbedStep | RetrievalStep | ToolStep | ConvertStep, Field(discriminator="kind")]


class Sla(StrictModel):
    """A workflow's end-to-end latency target. Without `percentile`: the critical path of service times (each step's
    latency on its pool's config, repeats included) is at most `e2e_latency_s`, with pools kept below
    `limits.max_utilisation` as queueing headroom. With `percentile: p`: every step also waits in its pool's queue,
    at the p-th percentile for the replica count planned (M/G/c), and that critical path is at most the target."""

    e2e_latency_s: PositiveFloat = Field(description="End-to-end latency target of one request (critical path).")
    percentile: float | None = Field(
        default=None,
        gt=0,
        lt=100,
        description="Plan for this latency percentile (e.g. 99) with queueing delay per pool; none = the critical "
        "path of service times under the flat utilisation cap.",
    )


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """Return one cycle (as a list of node ids, first repeated at the end) in a predecessor map, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    stack_path: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack_path.append(node)
        for pred in edges.get(node, []):
            if pred not in color:
                continue
            if color[pred] == grey:
                start = stack_path.index(pred)
                return [*stack_path[start:], pred]
            if color[pred] == white:
                found = visit(pred)
                if found:
                    return found
        stack_path.pop()
        color[node] = black
        return None

    for node in edges:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


class Workflow(StrictModel):
    """An agent workflow: a DAG of steps run once per request, with its demand and end-to-end SLA."""

    id: Identifier
    name: str
    description: str
    arrival_rate_rps: PositiveFloat = Field(description="Requests per second (a scenario may override it).")
    sla: Sla
    steps: list[Step] = Field(min_length=1)
    sources: list[Source] = Field(default_factory=list, description="Public descriptions the shape is based on.")

    @model_validator(mode="after")
    def _check_graph(self) -> Workflow:
        ids = [s.id for s in self.steps]
        seen: set[str] = set()
        for i, sid in enumerate(ids):
            if sid in seen:
                raise ValueError(f"steps[{i}].id: duplicate step id '{sid}'")
            seen.add(sid)
        for i, step in enumerate(self.steps):
            for j, pred in enumerate(step.after):
                if pred not in seen:
                    raise ValueError(f"steps[{i}].after[{j}]: unknown step '{pred}' (known: {', '.join(ids)})")
                if pred == step.id:
                    raise ValueError(f"steps[{i}].after[{j}]: step '{step.id}' cannot come after itself")
        cycle = find_cycle({s.id: list(s.after) for s in self.steps})
        if cycle:
            raise ValueError(
                f"steps: cycle {' -> '.join(reversed(cycle))}; workflows must be acyclic (use 'repeat' for agent loops)"
            )
        return self

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


class WorkflowDemand(StrictModel):
    """A workflow in a scenario: a bundled workflow id or a file, with optional demand/SLA overrides."""

    workflow: Identifier | None = Field(default=None, description="Id of a bundled workflow.")
    path: str | None = Field(default=None, description="Workflow YAML file, relative to the scenario file.")
    arrival_rate_rps: PositiveFloat | None = Field(default=None, description="Overrides the workflow's rate.")
    e2e_latency_s: PositiveFloat | None = Field(default=None, description="Overrides the workflow's SLA.")

    @model_validator(mode="after")
    def _one_ref(self) -> WorkflowDemand:
        if (self.workflow is None) == (self.path is None):
            raise ValueError("give exactly one of 'workflow' (bundled id) or 'path' (file)")
        return self


class OwnedDevices(StrictModel):
    device: Identifier
    count: PositiveInt
    sunk: bool = Field(default=True, description="Capex already spent: owned devices cost only energy + hosting.")
    residual_value_usd: NonNegativeFloat = Field(
        default=0.0, description="Resale value per device if retired (an opportunity cost of keeping it)."
    )


class PurchasableDevices(StrictModel):
    device: Identifier
    max_count: PositiveInt | None = Field(default=None, description="Availability limit; none = unlimited.")
    capex_usd: PositiveFloat | None = Field(default=None, description="Overrides the catalog price per device.")


class RentableDevices(StrictModel):
    device: Identifier
    max_count: PositiveInt | None = None
    usd_per_hour: PositiveFloat | None = Field(default=None, description="Overrides the catalog cloud price.")


class Hardware(StrictModel):
    owned: list[OwnedDevices] = Field(default_factory=list)
    purchasable: list[PurchasableDevices] = Field(default_factory=list)
    rentable: list[RentableDevices] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Hardware:
        for name in ("owned", "purchasable", "rentable"):
            seen: set[str] = set()
            for i, entry in enumerate(getattr(self, name)):
                if entry.device in seen:
                    raise ValueError(f"{name}[{i}].device: '{entry.device}' listed twice")
                seen.add(entry.device)
        if not (self.owned or self.purchasable or self.rentable):
            raise ValueError("no hardware: list at least one owned, purchasable or rentable device")
        return self


class Economics(StrictModel):
    """Cost parameters. Defaults (costmodels.tco.DEFAULT_ECONOMICS) and their sources: README 'Scenario defaults'."""

    energy_usd_per_kwh: NonNegativeFloat = DEFAULT_ECONOMICS.energy_usd_per_kwh
    pue: float = Field(default=DEFAULT_ECONOMICS.pue, ge=1.0, le=3.0)
    hosting_usd_per_kw_month: NonNegativeFloat = DEFAULT_ECONOMICS.hosting_usd_per_kw_month
    amortisation_years: PositiveFloat = DEFAULT_ECONOMICS.amortisation_years
    avg_load_fraction: Fraction = Field(
        default=DEFAULT_ECONOMICS.avg_load_fraction,
        description="Average power draw as a fraction of TDP for a device in service.",
    )


class Limits(StrictModel):
    power_cap_kw: PositiveFloat | None = Field(default=None, description="Facility IT power × PUE limit, kW.")
    capex_budget_usd: PositiveFloat | None = Field(default=None, description="Limit on purchases, USD.")
    annual_budget_usd: PositiveFloat | None = Field(default=None, description="Limit on annual TCO, USD.")
    max_utilisation: Fraction = Field(
        default=0.7,
        description="Pools are sized so their load stays below this fraction (queueing headroom for service-time "
        "SLAs). Pools serving only percentile SLAs are sized by their queueing delay and keep this cap only when "
        "the scenario states it.",
    )


class CatalogExtensions(StrictModel):
    devices: list[str] = Field(default_factory=list, description="Extra device YAML files (relative paths).")
    models: list[str] = Field(default_factory=list, description="Extra model YAML files (relative paths).")


class Horizon(StrictModel):
    """Several planning periods solved together (`hetplace schedule`): demand grows, prices move, and devices
    bought in one period stay in the fleet for the later ones."""

    periods: int = Field(ge=2, le=16, description="Number of periods, e.g. 4 quarters.")
    period_years: PositiveFloat = Field(default=0.25, le=5, description="Length of one period in years.")
    demand_growth_per_period: float = Field(
        default=0.0, ge=-0.9, le=10, description="Arrival rates grow by this fraction each period (0.1 = +10 %)."
    )
    price_factors: dict[Identifier, list[PositiveFloat]] = Field(
        default_factory=dict,
        description="Per device, one factor per period on its purchase and rental price (1.0 = today's price).",
    )

    @model_validator(mode="after")
    def _one_factor_per_period(self) -> Horizon:
        for device, factors in self.price_factors.items():
            if len(factors) != self.periods:
                raise ValueError(f"price_factors.{device}: {len(factors)} factors for {self.periods} periods")
        return self


# "module:function" (a module importable from sys.path) or "path/to/file.py:function" (relative to the scenario).
_EXTENSION_SPEC = re.compile(r"^(?:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|.+\.py):[A-Za-z_]\w*$")


def _check_extension_spec(spec: str) -> str:
    if not _EXTENSION_SPEC.match(spec):
        raise ValueError(f"'{spec}' is not 'module:function' (e.g. 'mypkg.rules:no_rent') or 'file.py:function'")
    return spec


ExtensionSpec = Annotated[str, AfterValidator(_check_extension_spec)]


class Scenario(StrictModel):
    """What to plan: workflows with demand and SLAs, the hardware on offer, economics and limits."""

    id: Identifier
    name: str
    description: str | None = None
    workflows: list[WorkflowDemand] = Field(min_length=1)
    hardware: Hardware
    economics: Economics = Field(default_factory=Economics)
    limits: Limits = Field(default_factory=Limits)
    catalog: CatalogExtensions = Field(default_factory=CatalogExtensions)
    calibration: str | None = Field(
        default=None,
        description="Fitted efficiency factors: a bundled calibration id (e.g. 'vidur-gemm-fp16') or a "
        "`hetplace calibrate` YAML file relative to the scenario.",
    )
    engine: Identifier | None = Field(
        default=None,
        description="Serving engine every LLM runs on (catalogs/engines, e.g. 'vllm'): menus are priced with its "
        "terms per device — the calibration's fitted `serving` entry, else the engine's defaults — exactly as "
        "`hetplace analyze --engine E --calibration F`. None = the plain roofline (no engine terms).",
    )
    robust: bool = Field(
        default=False,
        description="Plan so every SLA still holds, and every pool still has capacity, when each device runs at "
        "the slow end of its serving error band: LLM latency × (1 + band), throughput ÷ (1 + band). The band is the "
        "calibration's serving_error_band per device, else 0.25 (an assumption). Same as `hetplace solve --robust`.",
    )
    horizon: Horizon | None = Field(default=None, description="Multi-period planning (`hetplace schedule`).")
    allowed_weight_dtypes: list[Dtype] | None = Field(
        default=None,
        description="Weight quantisations the planner may also choose for every LLM (besides the model's own dtype, "
        "e.g. [fp8, int4]); none = each model's own dtype only. Accuracy effects are the user's call.",
    )
    allowed_kv_dtypes: list[Dtype] | None = Field(
        default=None,
        description="KV-cache dtypes the planner may also choose for every LLM (besides the model's own kv_dtype, "
        "e.g. [fp8]); only bf16, fp16 and fp8. Storage only: attention still computes in 16-bit, so fp8 KV runs on "
        "any device. None = each model's own kv_dtype only.",
    )
    extra_constraints: list[ExtensionSpec] = Field(
        default_factory=list,
        description="User rows added to the model before the solve: functions named 'package.module:function' "
        "(importable from sys.path) or 'file.py:function' (a path relative to this scenario file), each called as "
        "function(model, formulation). A single string is one function. See README 'Extra constraints'.",
    )

    @field_validator("allowed_kv_dtypes")
    @classmethod
    def _kv_storage_dtypes(cls, value: list[Dtype] | None) -> list[Dtype] | None:
        for i, dtype in enumerate(value or []):
            if dtype not in KV_CACHE_DTYPES:
                raise ValueError(
                    f"item {i} is '{dtype.value}', not a KV-cache dtype; use one of "
                    f"{', '.join(d.value for d in KV_CACHE_DTYPES)}"
                )
        return value

    @field_validator("extra_constraints", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value
