"""The GitHub Copilot coding-agent traces (Azure/AzurePublicDataset, GitHubCopilotCodingAgentDataset2026,
CC-BY-4.0) → an agent-loop workflow and an arrival file (`hetplace workflow from-trace --format copilot-agent`).

Schema (`analysis/GitHubCopilotCodingAgents/schema.json` in that repository): JSONL (or .jsonl.gz), one session
per line: `session_id`, `date`, `turns[]`; a turn has `llm_calls[]` (`timestamp` ISO-8601, `duration_ms`,
`initiator_type` 'user' | 'agent', `tokens` {prompt, completion, cached, ...}) and `tool_batches[]` (`timestamp`,
`duration_ms`, `function_calls[]` {name, status, duration_ms}).

A user turn is one request of the workflow (it arrives at its first LLM call), shaped like the bundled
coding-agent: `first_call` (the user-initiated call) → `tools` (one tool batch, repeated R times) → `agent_call`
(the follow-up calls, repeated R times, the prompt growing by the mean per-call growth, each call prefilling the
mean uncached tokens of the agent calls). R = the mean number of agent-initiated calls per turn; the tool
latency is the mean tool-batch wall time, and so is its cpu_s (an assumption: the batch holds one core of the
fleet's CPUs for its whole wall time — conservative; tools in a sandbox elsewhere would need none). Sessions
give the multi-turn structure: later turns reuse earlier ones through the cached tokens of their user-initiated
call, and the description states the turns per session. The arrival file has one row per turn with its
user-initiated call's own token counts.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from hetplace.catalogs.loader import Catalog
from hetplace.common.errors import InputError, InputProblem
from hetplace.common.io import MAX_INPUT_BYTES, parse_model, read_text
from hetplace.problems.loader import workflow_reference_problems
from hetplace.problems.schema import Workflow
from hetplace.simulate.traces import MAX_PROBLEMS, TraceWorkflow, json_lines, pct_text, slug

SOURCE = (
    "GitHub Copilot coding-agent traces 2026 (AzurePublicDataset, CC-BY-4.0)",
    "https://github.com/Azure/AzurePublicDataset/blob/master/GitHubCopilotCodingAgentDataset2026.md",
)


@dataclass(frozen=True)
class Call:
    prompt: int
    completion: int
    cached: int


@dataclass(frozen=True)
class Turn:
    session: str
    start_s: float  # POSIX seconds of its first LLM call
    first: Call  # the user-initiated call (else the turn's first call)
    agent: list[Call]  # follow-up calls in order
    tool_batch_s: list[float]


def _text(path: Path) -> str:
    if path.suffix != ".gz":
        return read_text(path)
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise InputError.single(str(path), "", f"not a readable gzip file: {exc}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError.single(str(path), "", f"more than {MAX_INPUT_BYTES} bytes uncompressed")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(str(path), "", f"not UTF-8 text (byte {exc.start})") from None


def _seconds(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _call(c: dict[str, Any]) -> Call:
    tok = c.get("tokens")
    if not isinstance(tok, dict):
        raise ValueError("tokens")
    p, o, k = (tok.get(f) for f in ("prompt", "completion", "cached"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (p, o, k)):
        raise ValueError("tokens")
    assert isinstance(p, int) and isinstance(o, int) and isinstance(k, int)
    return Call(p, o, min(k, max(p - 1, 0)))


def read_sessions(path: Path) -> list[Turn]:
    """Every turn with at least one LLM call of non-zero tokens, sorted by start time."""
    src = str(path)
    turns: list[Turn] = []
    problems: list[InputProblem] = []
    for line_no, sess in json_lines(_text(path), problems):
        if not isinstance(sess, dict) or not isinstance(sess.get("turns"), list):
            problems.append(InputProblem(f"line {line_no}.turns", "missing or not a list"))
            continue
        for t_idx, turn in enumerate(sess["turns"]):
            where = f"line {line_no}.turns[{t_idx}]"
            try:
                calls = [c for c in turn.get("llm_calls") or [] if isinstance(c, dict)]
                timed = sorted(((_seconds(c.get("timestamp")), i, c) for i, c in enumerate(calls)), key=lambda x: x[:2])
                parsed = [(t, c.get("initiator_type"), _call(c)) for t, _, c in timed]
                batches = [
                    float(b["duration_ms"]) / 1000.0
                    for b in turn.get("tool_batches") or []
                    if isinstance(b, dict) and b.get("function_calls")
                ]
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                problems.append(InputProblem(where, f"invalid llm_calls or tool_batches ({exc})"))
                continue
            parsed = [x for x in parsed if x[2].prompt > 0 and x[2].completion > 0]
            if not parsed:
                continue
            first_i = next((i for i, x in enumerate(parsed) if x[1] == "user"), 0)
            agent = [x[2] for i, x in enumerate(parsed) if i != first_i]
            turns.append(Turn(str(sess.get("session_id", line_no)), parsed[0][0], parsed[first_i][2], agent, batches))
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InputError(src, problems)
    if len(turns) < 2:
        raise InputError.single(src, "", "the trace needs at least two user turns with LLM calls")
    turns.sort(key=lambda t: t.start_s)
    return turns


def copilot_workflow(
    turns: list[Turn], source_name: str, model: str, sla_s: float, catalog: Catalog, workflow_id: str | None = None
) -> TraceWorkflow:
    t0 = turns[0].start_s
    span = turns[-1].start_s - t0
    if span <= 0:
        raise InputError.single(source_name, "", "the trace's turns all start at the same time")
    first = [t.first for t in turns]
    agent_counts = np.array([len(t.agent) for t in turns], dtype=float)
    repeat = max(0, round(float(agent_counts.mean())))
    agent = [c for t in turns for c in t.agent]
    batches = np.array([b for t in turns for b in t.tool_batch_s], dtype=float)
    sessions = len({t.session for t in turns})

    def mean(xs: list[int]) -> float:
        return float(np.mean(xs)) if xs else 0.0

    f_prompt = max(2, round(mean([c.prompt for c in first])))
    f_cached = min(round(mean([c.cached for c in first])), f_prompt - 1)
    steps: list[dict[str, Any]] = [
        {
            "id": "first_call",
            "kind": "llm",
            "model": model,
            "prompt_tokens": f_prompt,
            "cached_prefix_tokens": f_cached,
            "output_tokens": max(1, round(mean([c.completion for c in first]))),
            "description": "the user-initiated LLM call of a turn (earlier turns reused from the prefix cache)",
        }
    ]
    growth = 0
    if repeat >= 1 and agent:
        # per-call prompt growth: mean over turns of (last agent prompt − first agent prompt) / (calls − 1)
        grow = [(t.agent[-1].prompt - t.agent[0].prompt) / (len(t.agent) - 1) for t in turns if len(t.agent) > 1]
        growth = max(0, round(float(np.mean(grow)))) if grow else 0
        a0 = max(2, round(mean([t.agent[0].prompt for t in turns if t.agent])))
        uncached = max(1, round(mean([c.prompt - c.cached for c in agent])))
        tool_s = float(batches.mean()) if batches.size else 0.001
        steps += [
            {
                "id": "tools",
                "kind": "tool",
                "tool": "agent tool batch (sandbox)",
                "after": ["first_call"],
                "repeat": repeat,
                "latency_s": max(tool_s, 0.001),
                "cpu_s": max(tool_s, 0.001),
                "description": "one tool batch between LLM calls, on one fleet CPU core for its wall time",
            },
            {
                "id": "agent_call",
                "kind": "llm",
                "model": model,
                "after": ["tools"],
                "repeat": repeat,
                "prompt_tokens": a0,
                "cached_prefix_tokens": max(0, a0 - uncached),
                "output_tokens": max(1, round(mean([c.completion for c in agent]))),
                "prompt_growth_tokens_per_repeat": growth,
                "description": "the agent's follow-up calls of the turn (same loop as tools)",
            },
        ]
    cached_share = sum(c.cached for c in first + agent) / max(sum(c.prompt for c in first + agent), 1)
    b_text = pct_text(batches, ".2f") if batches.size else "none"
    prompts = np.array([c.prompt for c in first + agent], dtype=float)
    doc: dict[str, Any] = {
        "id": workflow_id or slug(f"copilot-agent-{Path(source_name).stem}"),
        "name": f"copilot-agent trace {Path(source_name).name}",
        "description": (
            f"Derived by `hetplace workflow from-trace` from {len(turns)} user turns of {sessions} sessions "
            f"({len(turns) / sessions:.2f} turns per session) over {span:.1f} s. Agent calls per turn "
            f"{pct_text(agent_counts, '.1f')}; prompt tokens of all calls {pct_text(prompts)}; "
            f"cached-prefix share {cached_share:.1%}; tool-batch wall time s {b_text}; prompt growth per agent call "
            f"{growth} tokens. The steps state the means; the arrival file keeps each turn's own first-call tokens."
        ),
        "arrival_rate_rps": (len(turns) - 1) / span,
        "sla": {"e2e_latency_s": sla_s},
        "steps": steps,
        "sources": [{"title": SOURCE[0], "url": SOURCE[1], "note": "schema of the copilot-agent format"}],
    }
    wf = parse_model(Workflow, doc, source_name)
    problems = workflow_reference_problems(wf, catalog)
    if problems:
        raise InputError("--model", problems)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_s", "workflow", "prompt_tokens", "output_tokens", "cached_tokens"])
    for t in turns:
        w.writerow([f"{t.start_s - t0:.6f}", wf.id, t.first.prompt, t.first.completion, t.first.cached])
    return TraceWorkflow(wf.model_dump(mode="json", exclude_none=True), buf.getvalue(), len(turns), 0, span)
