"""Serving engines (vLLM, SGLang, TensorRT-LLM, ...): the names `analyze --engine` and calibration files use.

An engine's per-step overhead, attention kernels, MoE kernels and collectives differ; those differences are the
serving terms (calibration_schema.ServingTerms) fitted per (device, engine). The catalog entry names the engine,
cites it, and may carry defaults used where a device has no fitted terms for it (neutral unless set).
"""

from __future__ import annotations

from pydantic import Field

from hetplace.catalogs.calibration_schema import ServingTerms
from hetplace.common.schema_base import Identifier, Source, StrictModel


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
    sources: list[Source] = Field(min_length=1)
