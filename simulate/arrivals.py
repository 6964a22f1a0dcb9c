"""Request arrivals: Poisson or gamma renewal processes per workflow at its arrival rate, or a trace file.

`--arrivals poisson` (exponential gaps), `gamma:CV` (gamma gaps with coefficient of variation CV: CV > 1 is
burstier than Poisson, CV < 1 smoother; the mean gap stays 1/rate), `trace:FILE` (an arrival CSV, e.g. from
`hetplace workflow from-trace --arrivals-out`): columns `time_s` (required), `workflow` (a workflow id of the
scenario; optional when the scenario has one workflow), and optionally `prompt_tokens`, `output_tokens`,
`cached_tokens` — per-request token counts for the workflow's first LLM step (empty = the workflow's own).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetplace.common.errors import InputError, InputProblem
from hetplace.common.io import read_text

ARRIVAL_COLUMNS = ("time_s", "workflow", "prompt_tokens", "output_tokens", "cached_tokens")
NO_TOKENS = -1  # a token column left empty: the workflow's own count


@dataclass(frozen=True)
class Arrivals:
    """Arrival times (s, sorted), the workflow index of each, and per-request token overrides (NO_TOKENS = none)."""

    time_s: np.ndarray
    workflow: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.time_s.size)


@dataclass(frozen=True)
class ArrivalSpec:
    kind: str  # "poisson", "gamma" or "trace"
    cv: float = 1.0
    path: Path | None = None

    @property
    def label(self) -> str:
        return {"poisson": "poisson", "gamma": f"gamma:{self.cv:g}", "trace": f"trace:{self.path}"}[self.kind]


def parse_arrival_spec(text: str) -> ArrivalSpec:
    """`poisson`, `gamma:CV` or `trace:FILE`; anything else is an input error naming --arrivals."""
    kind, _, arg = text.partition(":")
    if kind == "poisson" and not arg:
        return ArrivalSpec("poisson")
    if kind == "gamma":
        try:
            cv = float(arg)
        except ValueError:
            cv = -1.0
        if not (cv > 0 and np.isfinite(cv)):
            raise InputError.single(
                "--arrivals", "", f"'{text}': gamma needs a coefficient of variation > 0, e.g. gamma:2"
            )
        return ArrivalSpec("gamma", cv=cv)
    if kind == "trace" and arg:
        return ArrivalSpec("trace", path=Path(arg))
    raise InputError.single("--arrivals", "", f"'{text}': use poisson, gamma:CV or trace:FILE")


def renewal_arrivals(rates_rps: list[float], duration_s: float, rng: np.random.Generator, cv: float = 1.0) -> Arrivals:
    """Independent renewal processes, one per workflow, over [0, duration_s): exponential gaps (cv = 1 draws
    Poisson) or gamma gaps of shape 1/cv² and mean 1/rate."""
    times, wfs = [], []
    for i, rate in enumerate(rates_rps):
        mean_gap = 1.0 / rate
        n = int(duration_s * rate * 1.2 + 10 * np.sqrt(duration_s * rate) + 20)
        chunks = []
        total = 0.0
        while total < duration_s:
            if cv == 1.0:
                gaps = rng.exponential(mean_gap, n)
            else:
                shape = 1.0 / (cv * cv)
                gaps = rng.gamma(shape, mean_gap / shape, n)
            t = total + np.cumsum(gaps)
            chunks.append(t)
            total = float(t[-1])
        t_all = np.concatenate(chunks)
        t_all = t_all[t_all < duration_s]
        times.append(t_all)
        wfs.append(np.full(t_all.size, i, dtype=np.int64))
    return _merged(times, wfs)


def _merged(times: list[np.ndarray], wfs: list[np.ndarray]) -> Arrivals:
    t = np.concatenate(times) if times else np.zeros(0)
    w = np.concatenate(wfs) if wfs else np.zeros(0, dtype=np.int64)
    order = np.lexsort((w, t))
    none = np.full(t.size, NO_TOKENS, dtype=np.int64)
    return Arrivals(t[order], w[order], none, none.copy(), none.copy())


def read_arrival_file(path: Path, workflow_ids: list[str], duration_s: float | None) -> Arrivals:
    """Parse an arrival CSV (see the module docstring); rows may come in any order; times are shifted so the first
    arrival is at 0. Rows at or after `duration_s` (when given) are dropped."""
    src = str(path)
    text = read_text(path)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InputError.single(src, "", "file is empty")
    cols = [h.strip() for h in header]
    unknown = [c for c in cols if c not in ARRIVAL_COLUMNS]
    if unknown or "time_s" not in cols:
        raise InputError.single(
            src,
            "line 1",
            f"columns must include time_s and be among {', '.join(ARRIVAL_COLUMNS)} (got {', '.join(cols)})",
        )
    if "workflow" not in cols and len(workflow_ids) != 1:
        raise InputError.single(src, "line 1", "no workflow column, but the scenario has several workflows")
    index = {w: i for i, w in enumerate(workflow_ids)}
    t_list: list[float] = []
    w_list: list[int] = []
    tok: dict[str, list[int]] = {c: [] for c in ("prompt_tokens", "output_tokens", "cached_tokens")}
    problems: list[InputProblem] = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(cols):
            problems.append(InputProblem(f"line {line_no}", f"{len(row)} fields, header has {len(cols)}"))
            continue
        rec = dict(zip(cols, (c.strip() for c in row), strict=True))
        try:
            t = float(rec["time_s"])
            if not np.isfinite(t) or t < 0:
                raise ValueError
        except ValueError:
            problems.append(InputProblem(f"line {line_no}.time_s", f"'{rec['time_s']}' is not a time ≥ 0 in seconds"))
            continue
        wf = rec.get("workflow", workflow_ids[0] if len(workflow_ids) == 1 else "")
        if wf not in index:
            problems.append(
                InputProblem(
                    f"line {line_no}.workflow", f"unknown workflow '{wf}' (scenario: {', '.join(workflow_ids)})"
                )
            )
            continue
        ok = True
        for c, values in tok.items():
            raw = rec.get(c, "")
            if raw == "":
                values.append(NO_TOKENS)
                continue
            try:
                v = int(raw)
                if v < 0 or (c != "cached_tokens" and v == 0):
                    raise ValueError
            except ValueError:
                problems.append(InputProblem(f"line {line_no}.{c}", f"'{raw}' is not a valid token count"))
                ok = False
                values.append(NO_TOKENS)
            else:
                values.append(v)
        p, cached = tok["prompt_tokens"][-1], tok["cached_tokens"][-1]
        if ok and p != NO_TOKENS and cached != NO_TOKENS and cached >= p:
            problems.append(InputProblem(f"line {line_no}.cached_tokens", f"{cached} must be < prompt_tokens {p}"))
            ok = False
        if not ok:
            for values in tok.values():
                values.pop()
            continue
        t_list.append(t)
        w_list.append(index[wf])
        if len(problems) > 20:
            break
    if problems:
        raise InputError(src, problems[:20])
    if not t_list:
        raise InputError.single(src, "", "no arrivals")
    t_arr = np.asarray(t_list)
    t_arr = t_arr - t_arr.min()
    keep = t_arr < duration_s if duration_s is not None else np.ones(t_arr.size, dtype=bool)
    order = np.lexsort((np.asarray(w_list)[keep], t_arr[keep]))
    arrays = [
        np.asarray(tok[c], dtype=np.int64)[keep][order] for c in ("prompt_tokens", "output_tokens", "cached_tokens")
    ]
    return Arrivals(t_arr[keep][order], np.asarray(w_list, dtype=np.int64)[keep][order], *arrays)
