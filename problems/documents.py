"""The kinds of YAML/JSON documents hetplace reads, how to recognise each, and how to validate one file.

`hetplace validate FILE` and `hetplace schema KIND` are thin wrappers over this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hetplace.catalogs.calibration_schema import CalibrationFile
from hetplace.catalogs.engine_schema import Engine
from hetplace.catalogs.loader import load_calibration, load_catalog
from hetplace.catalogs.schema import Device, ModelArch
from hetplace.common.errors import InputError
from hetplace.common.io import load_mapping, parse_model
from hetplace.problems.loader import load_scenario, workflow_reference_problems
from hetplace.problems.plan import Plan
from hetplace.problems.schema import Scenario, Workflow

SCHEMAS: dict[str, type[BaseModel]] = {
    "device": Device,
    "model": ModelArch,
    "workflow": Workflow,
    "scenario": Scenario,
    "plan": Plan,
    "calibration": CalibrationFile,
    "engine": Engine,
}

# Keys that only one kind of document has at its top level, checked in this order.
_SIGNATURES: list[tuple[str, set[str]]] = [
    ("calibration", {"method", "held_back_fraction"}),
    ("engine", {"serving_defaults", "family"}),
    ("plan", {"schema_version", "fleet", "solver"}),
    ("scenario", {"hardware"}),
    ("workflow", {"steps"}),
    ("model", {"num_layers", "hidden_size"}),
    ("device", {"peak_tflops", "mem_bw_gbs"}),
]


def detect_kind(data: dict[str, Any], source: str) -> str:
    """Which document kind `data` is, from its top-level keys."""
    for kind, keys in _SIGNATURES:
        if keys & data.keys():
            return kind
    hints = "; ".join(f"{kind}: {', '.join(sorted(keys))}" for kind, keys in _SIGNATURES)
    raise InputError.single(
        source,
        "",
        f"cannot tell which kind of document this is (expected a top-level key of — {hints}); pass --kind to say",
    )


@dataclass
class ValidationReport:
    kind: str
    id: str
    summary: str


def validate_file(path: Path, kind: str | None = None) -> ValidationReport:
    """Validate one file fully (schema, graph, catalog references). Raises InputError on any problem."""
    path = Path(path)
    src = str(path)
    data = load_mapping(path)
    kind = kind or detect_kind(data, src)
    if kind == "scenario":
        resolved = load_scenario(path)
        hw = resolved.scenario.hardware
        summary = (
            f"{len(resolved.workflows)} workflows, {sum(o.count for o in hw.owned)} owned devices "
            f"({len(hw.owned)} types), {len(hw.purchasable)} purchasable and {len(hw.rentable)} rentable types"
        )
        return ValidationReport(kind, resolved.scenario.id, summary)
    if kind == "calibration":
        cal = load_calibration(path)
        return ValidationReport(kind, path.stem, f"factors for {', '.join(cal.devices)}")
    if kind == "workflow":
        wf = parse_model(Workflow, data, src)
        problems = workflow_reference_problems(wf, load_catalog())
        if problems:
            raise InputError(src, problems)
        summary = f"{len(wf.steps)} steps, {wf.arrival_rate_rps:g} req/s, SLA {wf.sla.e2e_latency_s:g} s"
        return ValidationReport(kind, wf.id, summary)
    if kind == "device":
        dev = parse_model(Device, data, src)
        summary = f"{dev.kind.value}/{dev.tier.value}, {dev.mem_gb:g} GB, {dev.mem_bw_gbs:g} GB/s"
        return ValidationReport(kind, dev.id, summary)
    if kind == "model":
        arch = parse_model(ModelArch, data, src)
        summary = f"{arch.kind.value}, {arch.num_layers} layers, hidden {arch.hidden_size}, {arch.attention.value}"
        return ValidationReport(kind, arch.id, summary)
    if kind == "engine":
        engine = parse_model(Engine, data, src)
        return ValidationReport(kind, engine.id, f"{engine.name} ({engine.family})")
    plan = parse_model(Plan, data, src)
    summary = f"plan for scenario '{plan.scenario}', {len(plan.fleet)} device types, status {plan.solver.status}"
    return ValidationReport(kind, plan.scenario, summary)


def json_schema(kind: str) -> dict[str, Any]:
    """JSON Schema of a document kind, generated from the pydantic model (never hand-maintained)."""
    schema = SCHEMAS[kind].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
