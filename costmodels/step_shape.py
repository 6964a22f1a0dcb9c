"""The shape of an LLM step's calls: the one definition the optimizer's pools and the reports both price.

A step runs `repeat` times per request; repeat i (0-based) sends prompt_tokens + i·growth tokens of which
cached_prefix_tokens + i·growth are already in the KV cache (an agent loop re-sends its growing transcript), so
every repeat prefills the same prompt_tokens − cached_prefix_tokens new tokens. Averaged over the repeats:

  uncached  = prompt − cached_prefix                          (prefilled per call)
  cached    = cached_prefix + growth · (repeat − 1) / 2        (mean prefix already cached)
  context   = prompt + growth · (repeat − 1) / 2 + output / 2  (mean context a decode step attends to)

A pool serves many steps; its capacity is priced at the demand-weighted mean call: prefill shapes weighted by
uncached tokens per second, the decode context by output tokens per second. Plain numbers only (no workflow
types), so the optimizer and the reports can share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hetplace.costmodels.arrays import FloatArray

MIN_DEMAND = 1e-12  # guards the weighted means of a pool with no demand


@dataclass(frozen=True)
class LlmCallShape:
    """One LLM call, averaged over a step's repeats (or over a pool's steps)."""

    uncached_tokens: float  # prompt tokens prefilled per call
    cached_tokens: float  # prompt tokens already in the KV cache (mean)
    decode_context_tokens: float  # context a decode step attends to (mean over the output)

    @property
    def prompt_tokens(self) -> float:
        """The whole prompt the prefill pass sees (cached + uncached)."""
        return self.uncached_tokens + self.cached_tokens


def llm_call_shape(
    prompt_tokens: int,
    cached_prefix_tokens: int,
    output_tokens: int,
    repeat: int = 1,
    prompt_growth_tokens_per_repeat: int = 0,
) -> LlmCallShape:
    """Mean call of a step over its repeats (see the module docstring)."""
    growth_mean = prompt_growth_tokens_per_repeat * (repeat - 1) / 2.0
    return LlmCallShape(
        uncached_tokens=float(prompt_tokens - cached_prefix_tokens),
        cached_tokens=cached_prefix_tokens + growth_mean,
        decode_context_tokens=prompt_tokens + growth_mean + output_tokens / 2.0,
    )


@dataclass(frozen=True)
class LlmPoolShape:
    """Demand of the steps one LLM model serves and the mean call its pools are priced at."""

    prefill_tokens_per_s: float  # uncached prompt tokens per second
    decode_tokens_per_s: float  # output tokens per second
    mean_call: LlmCallShape


def llm_pool_shape(
    calls_per_s: Sequence[float] | FloatArray,
    calls: Sequence[LlmCallShape],
    output_tokens: Sequence[float] | FloatArray,
) -> LlmPoolShape:
    """Demand and demand-weighted mean call of the steps served together (aligned sequences, one per step)."""
    execs = np.asarray(calls_per_s, dtype=float)
    table = np.array([(c.uncached_tokens, c.cached_tokens, c.decode_context_tokens) for c in calls], dtype=float)
    uncached, cached, context = table.reshape(-1, 3).T
    outputs = np.asarray(output_tokens, dtype=float)
    prefill = float(np.sum(execs * uncached))
    decode = float(np.sum(execs * outputs))
    weights_p = execs * uncached / max(prefill, MIN_DEMAND)
    weights_d = execs * outputs / max(decode, MIN_DEMAND)
    mean = LlmCallShape(float(weights_p @ uncached), float(weights_p @ cached), float(weights_d @ context))
    return LlmPoolShape(prefill, decode, mean)
