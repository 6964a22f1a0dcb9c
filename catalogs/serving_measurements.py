"""Public end-to-end serving measurements: one row per (source, config, workload, metric), read from CSV.

The bundled rows live in `catalogs/measurements/serving/*.csv` (schema in that folder's README). They feed
`hetplace calibrate --serving` and `python -m benchmarks.accuracy`; every row names its source so that errors can be
reported leave-one-source-out, i.e. as transfer to a source the fit never saw.
"""

from __future__ import annotations

import csv
import re
from enum import StrEnum
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from hetplace.catalogs.loader import bundled_dir
from hetplace.catalogs.schema import Dtype
from hetplace.common.errors import InputError, InputProblem
from hetplace.common.schema_base import Identifier, PositiveFloat, PositiveInt, StrictModel

COLUMNS = (
    "source_id", "url", "published", "device", "model", "engine", "engine_version", "weight_dtype", "kv_dtype",
    "tp", "isl", "osl", "mode", "load", "metric", "value", "derived", "notes",
)  # fmt: skip
OPTIONAL_COLUMNS = ("prompts", "length_ratio")
"""The benchmark client's setup where a source states it (README of the measurements folder): how many requests
it sent, and the low end of its uniform length draw (`--random-range-ratio`)."""


class LoadMode(StrEnum):
    batch = "batch"  # one static batch of `load` requests
    concurrency = "concurrency"  # closed loop, `load` requests in flight
    request_rate = "request_rate"  # open loop, `load` requests per second
    offline_max = "offline_max"  # offline throughput run at whatever batch the engine chose


class ServingMetric(StrEnum):
    ttft_s = "ttft_s"
    tpot_s = "tpot_s"
    itl_s = "itl_s"
    e2e_latency_s = "e2e_latency_s"
    output_tokens_per_s = "output_tokens_per_s"
    total_tokens_per_s = "total_tokens_per_s"
    requests_per_s = "requests_per_s"

    @property
    def is_latency(self) -> bool:
        """Latencies (seconds per request or token) fall as speed rises; throughputs (… per second) rise."""
        return self in LATENCY_METRICS


LATENCY_METRICS = frozenset(
    {ServingMetric.ttft_s, ServingMetric.tpot_s, ServingMetric.itl_s, ServingMetric.e2e_latency_s}
)


class ServingRow(StrictModel):
    """One published number and the setup it was measured under."""

    source_id: Identifier
    url: str = Field(min_length=8)
    published: str = ""
    device: Identifier
    model: Identifier
    engine: str = Field(min_length=1)
    engine_version: str = ""
    weight_dtype: Dtype
    kv_dtype: Dtype
    tp: PositiveInt
    isl: PositiveFloat = Field(description="Input tokens per request (a dataset's mean may be fractional).")
    osl: PositiveFloat = Field(description="Output tokens per request (mean).")
    mode: LoadMode
    load: PositiveFloat | None = None
    prompts: PositiveInt | None = Field(
        default=None, description="Requests the benchmark client sent in the run (num-prompts), when stated."
    )
    length_ratio: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Lengths drawn uniformly in [ratio·L, L] for nominal isl/osl L (random-range-ratio); 1 = fixed.",
    )
    metric: ServingMetric
    value: PositiveFloat
    derived: bool = False
    notes: str = ""

    @model_validator(mode="after")
    def _load_matches_mode(self) -> ServingRow:
        if self.mode != LoadMode.offline_max and self.load is None:
            raise ValueError(f"mode '{self.mode.value}' needs a load (batch size, concurrency or requests/s)")
        return self


class StackEra(StrEnum):
    current = "current"  # a serving stack from ERA_CUT on: what deployments run today
    older = "older"  # an earlier stack (often 2-3x slower on the same GPU), or one whose date is unknown


ERA_CUT = "2025-09"
"""Rows published from this month on come from a current stack (README of the measurements folder, "Stack era")."""
ENGINE_CURRENT_FROM: dict[str, tuple[int, ...]] = {
    "vllm": (0, 10, 2),
    "sglang": (0, 5, 2),
    "trtllm": (1, 0),
    "tensorrt-llm": (1, 0),
}
"""The first release of each engine published in or after ERA_CUT (vLLM 0.10.2: 2025-09; SGLang 0.5.2: 2025-09;
TensorRT-LLM 1.0: 2025-09): a row without a date is current when its engine_version is at least this."""


def version_tuple(version: str) -> tuple[int, ...] | None:
    """The leading numeric release of an engine version string ('v0.5.5.post3-rocm700' -> (0, 5, 5), '1.2.0rc2' ->
    (1, 2, 0), '0.7.3.dev138+g21f6' -> (0, 7, 3)), or None when it does not start with one."""
    m = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def stack_era(row: ServingRow) -> StackEra:
    """Current when the row is published in or after ERA_CUT; a row without a date is current when its engine's
    version is at least ENGINE_CURRENT_FROM; anything else (an earlier date, an older or unstated version, an
    engine without a cut) is older."""
    if row.published:
        return StackEra.current if row.published[:7] >= ERA_CUT else StackEra.older
    cut = ENGINE_CURRENT_FROM.get(row.engine)
    version = version_tuple(row.engine_version)
    if cut is None or version is None:
        return StackEra.older
    return StackEra.current if version >= cut else StackEra.older


def _row_problems(exc: ValidationError, line: int) -> list[InputProblem]:
    problems = []
    for err in exc.errors():
        column = ".".join(str(p) for p in err["loc"]) or "row"
        problems.append(InputProblem(f"line {line}: {column}", err["msg"]))
    return problems


def load_serving_csv(path: Path) -> list[ServingRow]:
    """Rows of one CSV file; every problem names the file, the line and the column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.single(str(path), "file", f"cannot read: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError.single(str(path), "header", f"missing columns: {', '.join(missing)}")
    rows: list[ServingRow] = []
    problems: list[InputProblem] = []
    for line, raw in enumerate(reader, start=2):
        data = {
            k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k in COLUMNS + OPTIONAL_COLUMNS
        }
        data["derived"] = data.get("derived", "").lower() in ("yes", "true", "1")
        for optional in ("load", *OPTIONAL_COLUMNS):
            if not data.get(optional):
                data[optional] = None
        try:
            rows.append(ServingRow.model_validate(data))
        except ValidationError as exc:
            problems.extend(_row_problems(exc, line))
    if problems:
        raise InputError(str(path), problems)
    return rows


def bundled_serving_dir() -> Path:
    return bundled_dir("measurements") / "serving"


def load_serving_measurements(paths: list[Path] | None = None) -> list[ServingRow]:
    """The bundled rows (every CSV in the bundled folder) or those of the files given."""
    files = paths if paths is not None else sorted(bundled_serving_dir().glob("*.csv"))
    return [row for f in files for row in load_serving_csv(f)]
