"""Load workflows and scenarios, resolve their references, and check them against the catalogs.

A loaded scenario is a `ResolvedScenario`: the scenario, its workflows with overrides applied, and the catalog
(bundled plus any extension files the scenario names). Reference errors name the file and the field path.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hetplace.catalogs.calibration_schema import CalibrationFile
from hetplace.catalogs.loader import Catalog, load_catalog, load_engines, resolve_calibration, resolve_engine_id
from hetplace.catalogs.schema import ModelKind
from hetplace.common.errors import InputError, InputProblem
from hetplace.common.io import load_mapping, parse_model
from hetplace.problems.schema import (
    ConvertStep,
    EmbedStep,
    LlmStep,
    PurchasableDevices,
    RentableDevices,
    Scenario,
    Sla,
    Workflow,
)

STEP_MODEL_KIND = {LlmStep: ModelKind.decoder, EmbedStep: ModelKind.embedding, ConvertStep: ModelKind.encoder}


def bundled_problems_dir() -> Path:
    return Path(str(resources.files("hetplace.problems")))


def bundled_workflow_path(workflow_id: str) -> Path:
    return bundled_problems_dir() / "workflows" / f"{workflow_id}.yaml"


def default_scenario_path() -> Path:
    """The embedded default scenario that `hetplace solve` uses without arguments."""
    return bundled_problems_dir() / "scenarios" / "default.yaml"


def bundled_workflow_ids() -> list[str]:
    return sorted(p.stem for p in (bundled_problems_dir() / "workflows").glob("*.yaml"))


def workflow_reference_problems(workflow: Workflow, catalog: Catalog, prefix: str = "") -> list[InputProblem]:
    """Model ids a workflow uses that the catalog lacks or that are of the wrong kind for the step."""
    problems = []
    for i, step in enumerate(workflow.steps):
        if not isinstance(step, LlmStep | EmbedStep | ConvertStep):
            continue
        wanted = STEP_MODEL_KIND[type(step)]
        path = f"{prefix}steps[{i}].model"
        model = catalog.models.get(step.model)
        if model is None:
            problems.append(InputProblem(path, f"unknown model '{step.model}' (see `hetplace catalog list models`)"))
        elif model.kind != wanted:
            problems.append(
                InputProblem(
                    path, f"'{step.kind}' step needs a {wanted.value} model; '{step.model}' is {model.kind.value}"
                )
            )
        elif isinstance(step, LlmStep):
            longest = step.prompt_tokens + step.prompt_growth_tokens_per_repeat * (step.repeat - 1) + step.output_tokens
            if longest > model.max_context_tokens:
                problems.append(
                    InputProblem(
                        f"{prefix}steps[{i}]",
                        f"context reaches {longest} tokens (prompt + growth × (repeat−1) + output) > "
                        f"{step.model} max_context_tokens {model.max_context_tokens}",
                    )
                )
    return problems


def load_workflow(path: Path, catalog: Catalog | None = None) -> Workflow:
    """Parse a workflow file and check its model references against `catalog` (bundled if None)."""
    workflow = parse_model(Workflow, load_mapping(path), str(path))
    problems = workflow_reference_problems(workflow, catalog or load_catalog())
    if problems:
        raise InputError(str(path), problems)
    return workflow


@dataclass
class ResolvedScenario:
    scenario: Scenario
    workflows: list[Workflow]  # overrides (rate, SLA) applied, in scenario order
    catalog: Catalog
    source: str
    base_dir: Path | None = None  # the scenario file's folder: relative paths (extra_constraints files) resolve here
    calibration: CalibrationFile | None = None  # the scenario's `calibration:` (serving terms and error bands)


def purchase_price_usd(entry: PurchasableDevices, catalog: Catalog) -> float | None:
    """What one device costs to buy: the scenario's capex_usd, else the catalog's (None if neither has one)."""
    return entry.capex_usd if entry.capex_usd is not None else catalog.device(entry.device).capex_usd


def rental_usd_per_hour(entry: RentableDevices, catalog: Catalog) -> float | None:
    """What one device costs to rent: the scenario's usd_per_hour, else the catalog's cloud price."""
    return entry.usd_per_hour if entry.usd_per_hour is not None else catalog.device(entry.device).cloud_usd_per_hour


def _resolve_workflow(scenario_path: Path, index: int, demand, catalog: Catalog) -> Workflow:
    field = f"workflows[{index}]"
    if demand.workflow is not None:
        path = bundled_workflow_path(demand.workflow)
        if not path.is_file():
            raise InputError.single(
                str(scenario_path),
                f"{field}.workflow",
                f"unknown bundled workflow '{demand.workflow}' (bundled: {', '.join(bundled_workflow_ids())})",
            )
    else:
        path = (scenario_path.parent / demand.path).resolve()
        if not path.is_file():
            raise InputError.single(str(scenario_path), f"{field}.path", f"workflow file not found: {path}")
    workflow = load_workflow(path, catalog)
    updates = {}
    if demand.arrival_rate_rps is not None:
        updates["arrival_rate_rps"] = demand.arrival_rate_rps
    if demand.e2e_latency_s is not None:
        updates["sla"] = Sla(e2e_latency_s=demand.e2e_latency_s, percentile=workflow.sla.percentile)
    return workflow.model_copy(update=updates)


def _hardware_reference_problems(scenario: Scenario, catalog: Catalog) -> list[InputProblem]:
    problems = []
    hw = scenario.hardware
    for group in ("owned", "purchasable", "rentable"):
        for i, entry in enumerate(getattr(hw, group)):
            device = catalog.devices.get(entry.device)
            path = f"hardware.{group}[{i}].device"
            if device is None:
                problems.append(
                    InputProblem(path, f"unknown device '{entry.device}' (see `hetplace catalog list devices`)")
                )
                continue
            if group == "owned" and not entry.sunk and device.capex_usd is None:
                problems.append(
                    InputProblem(
                        f"hardware.owned[{i}].sunk",
                        f"'{entry.device}' is not sunk (sunk: false) but has no catalog price to amortise; set "
                        "sunk: true (and residual_value_usd to price keeping it) or give the device a capex_usd in a "
                        "catalog extension",
                    )
                )
            if group == "purchasable" and entry.capex_usd is None and device.capex_usd is None:
                problems.append(
                    InputProblem(f"hardware.purchasable[{i}]", f"'{entry.device}' has no catalog price; set capex_usd")
                )
            if group == "rentable" and entry.usd_per_hour is None and device.cloud_usd_per_hour is None:
                problems.append(
                    InputProblem(
                        f"hardware.rentable[{i}]", f"'{entry.device}' has no catalog cloud price; set usd_per_hour"
                    )
                )
    return problems


def load_scenario(path: Path) -> ResolvedScenario:
    """Parse a scenario, load its workflows and extension catalogs, and check every cross-reference."""
    path = Path(path)
    return resolve_scenario_mapping(load_mapping(path), path)


def resolve_scenario_mapping(data: dict, path: Path, source: str | None = None) -> ResolvedScenario:
    """Validate a scenario given as a mapping (e.g. a what-if variant of a file). Relative paths resolve against
    `path`'s folder; errors name `source` (default: the path)."""
    path = Path(path)
    src = source or str(path)
    scenario = parse_model(Scenario, data, src)
    base = path.parent
    for kind in ("devices", "models"):
        for i, rel in enumerate(getattr(scenario.catalog, kind)):
            if not (base / rel).is_file():
                raise InputError.single(src, f"catalog.{kind}[{i}]", f"file not found: {base / rel}")
    catalog = load_catalog().extended(
        [base / p for p in scenario.catalog.devices], [base / p for p in scenario.catalog.models]
    )
    calibration = None
    if scenario.calibration is not None:
        calibration = resolve_calibration(scenario.calibration, base, src, catalog)
        catalog = catalog.with_calibration(calibration)
    engines = load_engines()
    if scenario.engine is not None and scenario.engine not in engines:
        scenario = scenario.model_copy(update={"engine": resolve_engine_id(scenario.engine, engines, src)})
    problems = _hardware_reference_problems(scenario, catalog)
    if problems:
        raise InputError(src, problems)
    workflows = [_resolve_workflow(path, i, d, catalog) for i, d in enumerate(scenario.workflows)]
    seen: dict[str, int] = {}
    for i, wf in enumerate(workflows):
        if wf.id in seen:
            raise InputError.single(
                src, f"workflows[{i}]", f"workflow '{wf.id}' already listed at workflows[{seen[wf.id]}]"
            )
        seen[wf.id] = i
    return ResolvedScenario(scenario, workflows, catalog, src, base, calibration)
