"""Serving engines (vLLM, SGLang, TensorRT-LLM, ...): the names `analyze --engine` and calibration files use.

An engine's per-step overhead, attention kernels, MoE kernels and collectives differ; those differences are the
serving terms (calibration_schema.ServingTerms) fitted per (device, engine). The catalog entry names the engine,
cites it, and may carry defaults used where a device has no fitted terms for it (neutral unless set).

`scheduler` holds the engine's documented scheduler defaults — how many sequences it runs at once and how many
tokens one forward step may carry — read from its source at a named release (each entry cites file and line).
They cap `--max-load` below the KV-cache capacity (costmodels.engine_limits; README "Serving estimate").
"""

from __future__ import annotations

from pydantic import Field, model_validator

from hetplace.catalogs.calibration_schema import ServingTerms
from hetplace.common.schema_base import (
    Identifier,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Source,
    StrictModel,
)


class SchedulerRule(StrictModel):
    """Defaults an engine picks by the device it runs on (vLLM's per-GPU batch defaults, SGLang's chunk size by
    memory). A rule matches a device with at least `min_device_mem_gib` and less than `below_device_mem_gib` of
    memory (GiB = 2³⁰ bytes, the catalog's `mem_gb` converted) whose id contains none of
    `unless_device_id_contains`; the first matching rule's values replace the scheduler's base values."""

    min_device_mem_gib: NonNegativeFloat = 0.0
    below_device_mem_gib: PositiveFloat | None = None
    unless_device_id_contains: list[str] = Field(default_factory=list)
    max_running_seqs: PositiveInt | None = None
    max_tokens_per_step: PositiveInt | None = None

    @model_validator(mode="after")
    def _range(self) -> SchedulerRule:
        if self.below_device_mem_gib is not None and self.below_device_mem_gib <= self.min_device_mem_gib:
            raise ValueError("below_device_mem_gib must be above min_device_mem_gib")
        if self.max_running_seqs is None and self.max_tokens_per_step is None:
            raise ValueError("a rule sets max_running_seqs, max_tokens_per_step or both")
        return self


class RunningSeqsFromKv(StrictModel):
    """A running-request cap sized from the KV cache (SGLang's request pool):
    clamp(KV tokens · seqs_per_max_context / the model's max context length, min_seqs, max_seqs)."""

    seqs_per_max_context: PositiveFloat
    min_seqs: PositiveInt
    max_seqs: PositiveInt

    @model_validator(mode="after")
    def _order(self) -> RunningSeqsFromKv:
        if self.min_seqs > self.max_seqs:
            raise ValueError("min_seqs must not exceed max_seqs")
        return self


class SchedulerDefaults(StrictModel):
    """An engine's default scheduler limits (null: none below the KV cache). Units in the names: sequences running
    at once, tokens per forward step."""

    max_running_seqs: PositiveInt | None = Field(
        default=None, description="Sequences the engine runs at once by default (vLLM max_num_seqs, ...)."
    )
    max_tokens_per_step: PositiveInt | None = Field(
        default=None, description="Token budget of one forward step (vLLM max_num_batched_tokens, ...)."
    )
    running_seqs_from_kv: RunningSeqsFromKv | None = Field(
        default=None, description="A running cap sized from the KV cache instead of a fixed one (SGLang)."
    )
    decode_tokens_in_budget: bool = Field(
        default=True,
        description="Decode tokens count against max_tokens_per_step (vLLM, TensorRT-LLM); false when the budget "
        "is for prefill tokens only (SGLang's chunked_prefill_size).",
    )
    chunked_prefill: bool = Field(
        default=True, description="A prompt longer than the step's room is split over several steps."
    )
    rules: list[SchedulerRule] = Field(default_factory=list, description="Per-device overrides, first match wins.")
    sources: list[Source] = Field(min_length=1, description="Engine source files at a named release.")


class Engine(StrictModel):
    id: Identifier
    name: str = Field(min_length=2)
    family: str = Field(
        min_length=2,
        description="Engine class for fitting priors, e.g. 'vllm-class' (vLLM, SGLang) or 'trtllm-class'.",
    )
    description: str = Field(min_length=3)
    aliases: list[Identifier] = Field(
        default_factory=list,
        description="Other names the engine goes by in benchmarks and on the command line (e.g. 'trtllm').",
    )
    serving_defaults: ServingTerms = Field(
        default_factory=ServingTerms,
        description="Terms for a device with no fitted entry for this engine (neutral: the plain roofline).",
    )
    scheduler: SchedulerDefaults | None = Field(
        default=None, description="Default scheduler limits (running sequences, tokens per step); null: none."
    )
    sources: list[Source] = Field(min_length=1)
