"""Public LLM-serving traces → a workflow document and an arrival file (`hetplace workflow from-trace`).

Formats (the columns as the public datasets publish them):
  azure-llm   Azure LLM inference traces 2023/2024 (Azure/AzurePublicDataset, CC-BY-4.0): CSV
              `TIMESTAMP,ContextTokens,GeneratedTokens`, TIMESTAMP a date-time such as 2023-11-16 18:17:03.9799600.
  burstgpt    BurstGPT (HPMLL/BurstGPT, CC-BY-4.0): CSV `Timestamp,Model,Request tokens,Response tokens,Total
              tokens,Log Type`, Timestamp in seconds from the trace start; rows with 0 response tokens (failed
              requests) are skipped and counted.
  mooncake    Mooncake traces (kvcache-ai/Mooncake, Apache-2.0): JSONL with `timestamp` (ms), `input_length`,
              `output_length`, `hash_ids` (one id per 512-token block of the prompt; equal ids = equal prefix
              blocks). A request's cached prefix is its leading run of blocks that an earlier request already
              produced (an unbounded prefix cache), capped at input_length − 1.
None of the three has session ids, so the workflow is one LLM call per request (no multi-turn structure). The
GitHub Copilot coding-agent sessions (`copilot-agent`, with sessions, agent loops and tool batches) are read by
`simulate.agent_traces`.

The workflow states the mean token counts (the optimizer plans on them); the arrival file keeps every request's
own counts, so `hetplace simulate --arrivals trace:FILE` replays the real distribution. The token-count
percentiles go into the workflow's description.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from hetplace.catalogs.loader import Catalog
from hetplace.common.errors import InputError, InputProblem
from hetplace.common.io import parse_model, read_text
from hetplace.problems.loader import workflow_reference_problems
from hetplace.problems.schema import Workflow

TRACE_FORMATS = ("azure-llm", "burstgpt", "mooncake")
MOONCAKE_BLOCK_TOKENS = 512
MAX_PROBLEMS = 20

SOURCES = {
    "azure-llm": (
        "Azure LLM inference trace (AzurePublicDataset, CC-BY-4.0)",
        "https://github.com/Azure/AzurePublicDataset/blob/master/AzureLLMInferenceDataset2023.md",
    ),
    "burstgpt": ("BurstGPT: LLM serving workload trace (CC-BY-4.0)", "https://github.com/HPMLL/BurstGPT"),
    "mooncake": ("Mooncake traces (kvcache-ai/Mooncake, Apache-2.0)", "https://github.com/kvcache-ai/Mooncake"),
}


@dataclass(frozen=True)
class TraceRequests:
    """Requests of a trace, sorted by time; times start at 0."""

    time_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray
    skipped: int  # rows left out (failed requests)

    def __len__(self) -> int:
        return int(self.time_s.size)


def read_trace(path: Path, fmt: str) -> TraceRequests:
    """Parse a trace file; a bad row is an input error naming the file, line and column."""
    if fmt not in TRACE_FORMATS:
        raise InputError.single("--format", "", f"unknown trace format '{fmt}' (known: {', '.join(TRACE_FORMATS)})")
    text = read_text(path)
    src = str(path)
    if fmt == "mooncake":
        rows, skipped = _mooncake(text, src)
    else:
        rows, skipped = _csv_trace(text, src, fmt)
    if not rows:
        raise InputError.single(src, "", "no requests in the trace")
    arr = np.asarray(rows, dtype=float)
    order = np.argsort(arr[:, 0], kind="stable")
    arr = arr[order]
    t = arr[:, 0] - arr[0, 0]
    return TraceRequests(t, arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64), arr[:, 3].astype(np.int64), skipped)


_AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_BURST = ("Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type")


def _parse_azure_time(raw: str) -> float:
    """'2023-11-16 18:17:03.9799600' (7 fractional digits) → POSIX seconds."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(?:\+00:00|Z)?", raw)
    if m is None:
        raise ValueError(raw)
    base = datetime.fromisoformat(m.group(1).replace("T", " "))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.timestamp() + frac


def _csv_trace(text: str, src: str, fmt: str) -> tuple[list[tuple[float, int, int, int]], int]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    want = _AZURE if fmt == "azure-llm" else _BURST
    missing = [c for c in want if c not in header]
    if missing:
        raise InputError.single(
            src, "line 1", f"{fmt} trace needs columns {', '.join(want)}; missing {', '.join(missing)}"
        )
    col = {c: header.index(c) for c in want}
    rows: list[tuple[float, int, int, int]] = []
    problems: list[InputProblem] = []
    skipped = 0
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(InputProblem(f"line {line_no}", f"{len(row)} fields, header has {len(header)}"))
        else:
            try:
                if fmt == "azure-llm":
                    name = "TIMESTAMP"
                    t = _parse_azure_time(row[col[name]].strip())
                    name = "ContextTokens"
                    p = int(row[col[name]])
                    name = "GeneratedTokens"
                    o = int(row[col[name]])
                else:
                    name = "Timestamp"
                    t = float(row[col[name]])
                    name = "Request tokens"
                    p = int(float(row[col[name]]))
                    name = "Response tokens"
                    o = int(float(row[col[name]]))
                if not np.isfinite(t) or p < 0 or o < 0:
                    raise ValueError
            except ValueError:
                problems.append(InputProblem(f"line {line_no}.{name}", f"'{row[col[name]]}' is not a valid value"))
            else:
                if p == 0 or o == 0:
                    skipped += 1  # failed or empty requests (BurstGPT logs failures with 0 response tokens)
                else:
                    rows.append((t, p, o, 0))
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise InputError(src, problems)
    return rows, skipped


def json_lines(text: str, problems: list[InputProblem]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every non-blank line of a JSONL text; a line that is not JSON becomes a
    problem naming it and is skipped."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(InputProblem(f"line {line_no}", f"not JSON: {exc.msg}"))


def _mooncake(text: str, src: str) -> tuple[list[tuple[float, int, int, int]], int]:
    seen: set[int] = set()
    rows: list[tuple[float, int, int, int]] = []
    problems: list[InputProblem] = []
    for line_no, rec in json_lines(text, problems):
        if not isinstance(rec, dict):
            problems.append(InputProblem(f"line {line_no}", "not a JSON object"))
            continue
        bad = [
            k
            for k in ("timestamp", "input_length", "output_length")
            if not isinstance(rec.get(k), int | float) or isinstance(rec.get(k), bool) or rec[k] < 0
        ]
        hashes = rec.get("hash_ids", [])
        if not isinstance(hashes, list) or not all(isinstance(h, int) for h in hashes):
            bad.append("hash_ids")
        if bad:
            problems.append(InputProblem(f"line {line_no}.{bad[0]}", f"missing or invalid: {rec.get(bad[0])!r}"))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        p, o = int(rec["input_length"]), int(rec["output_length"])
        lead = 0
        for h in hashes:
            if h not in seen:
                break
            lead += 1
        seen.update(hashes)
        cached = min(lead * MOONCAKE_BLOCK_TOKENS, max(p - 1, 0))
        if p > 0 and o > 0:
            rows.append((float(rec["timestamp"]) / 1000.0, p, o, cached))
    if problems:
        raise InputError(src, problems)
    return rows, 0


@dataclass(frozen=True)
class TraceWorkflow:
    workflow: dict[str, Any]  # the workflow document (validated)
    arrivals_csv: str
    requests: int
    skipped: int
    span_s: float


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return (s or "trace")[:80]


def pct_text(a: np.ndarray, fmt: str = ".0f") -> str:
    """'mean …, p50 …, p90 …, p99 …' of an array, for workflow descriptions."""
    p = np.percentile(a, [50, 90, 99])
    return f"mean {a.mean():{fmt}}, p50 {p[0]:{fmt}}, p90 {p[1]:{fmt}}, p99 {p[2]:{fmt}}"


def trace_workflow(
    trace: TraceRequests,
    fmt: str,
    source_name: str,
    model: str,
    sla_s: float,
    catalog: Catalog,
    workflow_id: str | None = None,
) -> TraceWorkflow:
    """One LLM step at the trace's mean token counts and arrival rate; the arrival CSV with every request."""
    n = len(trace)
    span = float(trace.time_s[-1]) if n > 1 else 0.0
    if span <= 0:
        raise InputError.single(source_name, "", "the trace needs at least two requests at different times")
    rate = (n - 1) / span  # arrivals per second between the first and the last
    prompt = max(1, round(float(trace.prompt_tokens.mean())))
    cached = min(round(float(trace.cached_tokens.mean())), prompt - 1)
    output = max(1, round(float(trace.output_tokens.mean())))
    gaps = np.diff(trace.time_s)
    cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else 1.0
    wf_id = workflow_id or slug(f"{fmt}-{Path(source_name).stem}")
    title, url = SOURCES[fmt]
    cached_share = float(trace.cached_tokens.sum() / max(trace.prompt_tokens.sum(), 1))
    doc: dict[str, Any] = {
        "id": wf_id,
        "name": f"{fmt} trace {Path(source_name).name}",
        "description": (
            f"Derived by `hetplace workflow from-trace` from {n} requests over {span:.1f} s of a {fmt} trace "
            f"({trace.skipped} failed rows skipped). Prompt tokens {pct_text(trace.prompt_tokens.astype(float))}; "
            f"output tokens {pct_text(trace.output_tokens.astype(float))}; cached-prefix share {cached_share:.1%} of "
            f"prompt tokens; inter-arrival CV {cv:.2f} (1 = Poisson). The step states the means; the arrival "
            "file keeps each request's own counts for `hetplace simulate --arrivals trace:FILE`."
        ),
        "arrival_rate_rps": rate,
        "sla": {"e2e_latency_s": sla_s},
        "steps": [
            {
                "id": "generate",
                "kind": "llm",
                "model": model,
                "prompt_tokens": prompt,
                "cached_prefix_tokens": max(cached, 0),
                "output_tokens": output,
                "description": "one request of the trace at its mean token counts",
            }
        ],
        "sources": [{"title": title, "url": url, "note": f"schema of the {fmt} format"}],
    }
    wf = parse_model(Workflow, doc, source_name)
    problems = workflow_reference_problems(wf, catalog)
    if problems:
        raise InputError("--model", problems)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_s", "workflow", "prompt_tokens", "output_tokens", "cached_tokens"])
    for t, p, o, c in zip(
        trace.time_s.tolist(),
        trace.prompt_tokens.tolist(),
        trace.output_tokens.tolist(),
        trace.cached_tokens.tolist(),
        strict=True,
    ):
        w.writerow([f"{t:.6f}", wf_id, p, o, c])
    return TraceWorkflow(wf.model_dump(mode="json", exclude_none=True), buf.getvalue(), n, trace.skipped, span)
