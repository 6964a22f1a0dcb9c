"""The closed sets of names the library, the CLI and the plan documents share, as string enums.

StrEnum members are their values ("highs" == Backend.highs), so documents keep the same JSON strings and code that
compares with plain strings keeps working. A solve's outcome is two things, as in linopy: its `SolverStatus` (is
there a plan, and is it proven optimal) and its `TerminationCondition` (why the solver stopped).
"""

from __future__ import annotations

from enum import StrEnum


class Backend(StrEnum):
    """Solver behind the solver-neutral model."""

    highs = "highs"
    cbc = "cbc"
    cpsat = "cpsat"


class Objective(StrEnum):
    min_tco = "min_tco"  # cheapest fleet meeting every SLA and limit
    min_latency = "min_latency"  # lowest arrival-weighted mean latency within the limits, then cheapest


class Method(StrEnum):
    """How a min-TCO model is solved."""

    milp = "milp"  # the whole MILP, from the budget heuristic's plan (and a restricted warm start on large models)
    decomposition = "decomposition"  # column generation by model family, then an integer master (decomposition/)


class Phase(StrEnum):
    """What a pool's replicas do: an LLM phase (or both, co-located), or the kind of a non-LLM step."""

    prefill = "prefill"
    decode = "decode"
    colocated = "colocated"
    embed = "embed"
    convert = "convert"
    retrieval = "retrieval"
    tool = "tool"


LLM_PHASES = frozenset({Phase.prefill, Phase.decode, Phase.colocated})


class SolverStatus(StrEnum):
    """Whether a solve gave a plan: optimal (within the requested gap), feasible (a plan, not proven within the gap),
    infeasible (proven: no plan exists), no_solution (stopped before finding any plan)."""

    optimal = "optimal"
    feasible = "feasible"
    infeasible = "infeasible"
    no_solution = "no_solution"


class TerminationCondition(StrEnum):
    """Why the solver stopped: it proved optimality (within the gap) or infeasibility, reached its time limit, was
    interrupted, or stopped for another reason (e.g. an unbounded or invalid model)."""

    optimal = "optimal"
    infeasible = "infeasible"
    time_limit = "time_limit"
    interrupted = "interrupted"
    other = "other"
