"""What every export format reads from a plan: its identity (scenario, hetplace version, hash) and one deployment
unit per config in use, with the model's Hugging Face repo, context length and each unit's share of the traffic.

A unit is one `PoolAssignment` of the plan (a pool may mix configs: devices, tp and batch differ, so each config
is deployed on its own); its name is stable and readable, e.g. `deepseek-v3-decode-mi300x-tp8-b32`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from hetplace.catalogs.schema import Device, Dtype, ModelArch
from hetplace.common.enums import LLM_PHASES, Phase
from hetplace.common.errors import InputError
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, PoolAssignment
from hetplace.problems.schema import EmbedStep, LlmStep

ENGINE_PHASES = LLM_PHASES | {Phase.embed}  # pools a serving engine runs (LLMs and embedding models)
COLOCATED, DISAGGREGATED, SINGLE = "colocated", "disaggregated", "single"


def hetplace_version() -> str:
    try:
        return version("hetplace")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def plan_hash(plan: Plan) -> str:
    """sha256 of the plan's canonical JSON (sorted keys, no spaces): the same plan always hashes the same."""
    canonical = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Header:
    scenario: str
    hetplace_version: str
    plan_sha256: str

    def lines(self) -> list[str]:
        return [
            f"hetplace export of a plan for scenario '{self.scenario}'",
            f"hetplace {self.hetplace_version}; plan sha256 {self.plan_sha256}",
        ]

    def as_dict(self) -> dict[str, str]:
        return {"scenario": self.scenario, "hetplace_version": self.hetplace_version, "plan_sha256": self.plan_sha256}


@dataclass(frozen=True)
class Unit:
    """One config of a pool as deployed: `replicas` copies of a `tp`-device engine (or service)."""

    name: str
    index: int  # position in plan.pools (for messages: pools[index])
    pool: str
    phase: Phase
    route: str  # colocated | disaggregated | single
    model: ModelArch | None
    device: Device
    tp: int
    batch: int
    replicas: int
    weight_dtype: Dtype | None
    kv_dtype: Dtype | None
    max_model_len: int | None  # LLM and embedding units: the longest context a served step reaches
    demand_share: float  # share of the pool's demand this unit serves (its configs' shares add to 1)

    @property
    def nodes_per_replica(self) -> int:
        """Whole nodes a replica spans when tp exceeds one node (multi-node tensor parallelism)."""
        return max(1, math.ceil(self.tp / self.device.devices_per_node))

    @property
    def devices_per_pod(self) -> int:
        return self.tp // self.nodes_per_replica


def slug(text: str) -> str:
    """A DNS-1123 label fragment: lower case, digits and '-' (Kubernetes names, file names)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def unit_name(p: PoolAssignment) -> str:
    kv = f"-kv{p.kv_dtype}" if p.kv_dtype is not None else ""
    return slug(f"{p.pool}-{p.device}-tp{p.tensor_parallel}-b{p.batch}-{p.weight_dtype or ''}{kv}")[:63].strip("-")


@dataclass
class PlanView:
    plan: Plan
    resolved: ResolvedScenario
    plan_source: str
    header: Header
    units: list[Unit]

    def route_shares(self) -> dict[str, dict[str, float]]:
        """Per LLM model: the share of its calls each route serves (colocated vs disaggregated); every other pool
        family serves its steps alone (share 1)."""
        return route_shares(self.plan, self.resolved)


def llm_calls_per_s(resolved: ResolvedScenario) -> dict[str, float]:
    """LLM calls per second per model: the co-located pool's demand unit (arrival rate × repeats, summed)."""
    out: dict[str, float] = {}
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep):
                out[s.model] = out.get(s.model, 0.0) + wf.arrival_rate_rps * s.repeat
    return out


def route_shares(plan: Plan, resolved: ResolvedScenario) -> dict[str, dict[str, float]]:
    calls = llm_calls_per_s(resolved)
    out: dict[str, dict[str, float]] = {}
    for model in {p.model for p in plan.pools if p.phase in LLM_PHASES and p.model is not None}:
        rows = [p for p in plan.pools if p.model == model and p.phase in LLM_PHASES]
        has_col = any(p.phase == Phase.colocated for p in rows)
        has_dis = any(p.phase != Phase.colocated for p in rows)
        if has_col and has_dis:
            col = min(1.0, sum(p.demand for p in rows if p.phase == Phase.colocated) / calls[model])
            out[model] = {COLOCATED: col, DISAGGREGATED: 1.0 - col}
        else:
            out[model] = {COLOCATED if has_col else DISAGGREGATED: 1.0}
    return out


def max_context_tokens(resolved: ResolvedScenario, model: ModelArch) -> int | None:
    """The longest sequence a served step reaches: its last repeat's prompt plus the output (LLMs), or the tokens
    of one item (embedding); capped at the model's own maximum."""
    longest = 0
    for wf in resolved.workflows:
        for s in wf.steps:
            if isinstance(s, LlmStep) and s.model == model.id:
                prompt = s.prompt_tokens + (s.repeat - 1) * s.prompt_growth_tokens_per_repeat
                longest = max(longest, prompt + s.output_tokens)
            elif isinstance(s, EmbedStep) and s.model == model.id:
                longest = max(longest, s.tokens_per_item)
    return min(longest, model.max_context_tokens) if longest else None


def route_of(phase: Phase) -> str:
    if phase == Phase.colocated:
        return COLOCATED
    return DISAGGREGATED if phase in LLM_PHASES else SINGLE


def _dtype(source: str, field: str, value: str | None) -> Dtype | None:
    if value is None:
        return None
    try:
        return Dtype(value)
    except ValueError:
        known = ", ".join(d.value for d in Dtype)
        raise InputError.single(source, field, f"unknown dtype '{value}' (known: {known})") from None


def build_view(plan: Plan, resolved: ResolvedScenario, plan_source: str, need_hf_repo: bool) -> PlanView:
    """Check that the plan belongs to the scenario and its models can be deployed; build the units.
    `need_hf_repo`: formats that launch engines need every served model's Hugging Face repo."""
    scenario_id = resolved.scenario.id
    if plan.scenario != scenario_id:
        raise InputError.single(
            plan_source, "scenario", f"plan is for scenario '{plan.scenario}', not '{scenario_id}' ({resolved.source})"
        )
    catalog = resolved.catalog
    totals: dict[str, float] = {}
    for p in plan.pools:
        totals[p.pool] = totals.get(p.pool, 0.0) + p.demand
    units = []
    names: dict[str, int] = {}
    for i, p in enumerate(plan.pools):
        if p.device not in catalog.devices:
            raise InputError.single(plan_source, f"pools[{i}].device", f"unknown device '{p.device}'")
        model = None
        if p.model is not None:
            if p.model not in catalog.models:
                raise InputError.single(plan_source, f"pools[{i}].model", f"unknown model '{p.model}'")
            model = catalog.model(p.model)
            if need_hf_repo and p.phase in ENGINE_PHASES and not model.hf_repo:
                raise InputError.single(
                    plan_source,
                    f"pools[{i}].model",
                    f"model '{p.model}' has no Hugging Face repo (hf_repo) in its catalog entry; an engine cannot "
                    "load it — add hf_repo to the model's YAML",
                )
        name = unit_name(p)
        if name in names:  # two configs that differ only in characters the slug drops
            name = f"{name[:58]}-{i}"
        names[name] = i
        total = totals[p.pool]
        units.append(
            Unit(
                name=name,
                index=i,
                pool=p.pool,
                phase=p.phase,
                route=route_of(p.phase),
                model=model,
                device=catalog.device(p.device),
                tp=p.tensor_parallel,
                batch=p.batch,
                replicas=p.replicas,
                weight_dtype=_dtype(plan_source, f"pools[{i}].weight_dtype", p.weight_dtype),
                kv_dtype=_dtype(plan_source, f"pools[{i}].kv_dtype", p.kv_dtype)
                or (model.kv_dtype if model and p.phase in LLM_PHASES else None),
                max_model_len=max_context_tokens(resolved, model) if model is not None else None,
                demand_share=p.demand / total if total > 0 else 1.0 / sum(q.pool == p.pool for q in plan.pools),
            )
        )
    header = Header(scenario_id, hetplace_version(), plan_hash(plan))
    return PlanView(plan, resolved, plan_source, header, units)
