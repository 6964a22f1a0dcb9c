"""User rows added to the model before the solve: a scenario's `extra_constraints` (like PyPSA's
`extra_functionality`).

A scenario names functions as `"package.module:function"` (a module importable from sys.path) or
`"path/to/file.py:function"` (a file path relative to the scenario file's folder). Each is called once with the
built, solver-neutral model and its formulation, after the model is complete and before any solve:

    from hetplace.optimizer.extensions import fleet_terms
    def no_renting(model: LinearModel, f: Formulation) -> None:
        model.add_row("user:no_renting", fleet_terms(f, sources=("rented",)), "<=", 0.0)

A function adds rows with `model.add_row(name, {variable index: coefficient}, sense, rhs)` and, if it needs them,
variables with `model.add_var` (integers need finite bounds for CP-SAT; a continuous variable's `resolution` is
its CP-SAT unit). It must not change the objective. The helpers below give the variables by meaningful keys
(device ids, model families) as linear expressions `{variable index: coefficient}`:

  fleet_terms(f, devices, sources)     devices in the fleet: owned in use, bought, rented
  accelerator_ids(f)                   offered devices that are not CPUs
  family_ids(f) / family_devices(f, family)   pool families (an LLM's model id, else the pool id) and the
                                       devices their configs run on
  replica_terms(f, family, device)     replicas of a family's configs on a device (either may be None = all)
  device_terms(f, family, device)      devices those replicas occupy (replicas × tensor parallel)

The rows live in the LinearModel, so HiGHS, CBC and CP-SAT all solve them. The plan records the functions
(`solver.extra_constraints`); `hetplace check` notes them and does not re-check their rows. They apply to
`solve`, `whatif`, `report` and `schedule` (each period's model gets them), not to the single-accelerator
baselines, the infeasibility diagnosis or the warm start's restricted model.

A function that cannot be found or imported, raises, changes the objective or writes a row with an unknown
variable or a non-finite number is an input error naming the scenario file and `extra_constraints[i]`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hetplace.catalogs.schema import DeviceKind
from hetplace.common.errors import InputError
from hetplace.optimizer.formulation import Formulation
from hetplace.optimizer.linear import LinearModel
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan

ExtraConstraints = Callable[[LinearModel, Formulation], None]
SOURCES = ("owned", "bought", "rented")


@dataclass(frozen=True)
class Extension:
    """One resolved `extra_constraints` entry."""

    spec: str  # as written in the scenario
    field_path: str  # extra_constraints[i], for errors
    function: ExtraConstraints


def _import(spec: str, base_dir: Path) -> object:
    """The module part of `spec`: a file path ending in .py (relative to `base_dir`) or a dotted module name."""
    module_part = spec.rpartition(":")[0]
    if not module_part.endswith(".py"):
        return importlib.import_module(module_part)
    path = (base_dir / module_part).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    name = "hetplace_extra_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    loader_spec.loader.exec_module(module)
    return module


def load_extensions(resolved: ResolvedScenario) -> list[Extension]:
    """Import every function the scenario names (before the model is built, so a typo fails fast)."""
    base_dir = resolved.base_dir or Path.cwd()
    out = []
    for i, spec in enumerate(resolved.scenario.extra_constraints):
        field_path = f"extra_constraints[{i}]"
        try:
            module = _import(spec, base_dir)
        except Exception as exc:  # whatever user code raises on import is an input problem, not a crash
            raise InputError.single(resolved.source, field_path, f"cannot import '{spec}': {_describe(exc)}") from None
        name = spec.rpartition(":")[2]
        function = getattr(module, name, None)
        if not callable(function):
            what = "no function" if function is None else "a non-callable"
            module_name = spec.rpartition(":")[0]
            raise InputError.single(resolved.source, field_path, f"'{module_name}' has {what} '{name}'")
        out.append(Extension(spec, field_path, function))
    return out


def apply_extensions(f: Formulation, extensions: list[Extension], source: str) -> list[str]:
    """Call every function on the built model; returns their specs (what the plan records)."""
    for ext in extensions:
        objective = dict(f.model.objective)
        first_row, vars_before = len(f.model.rows), len(f.model.vars)
        try:
            ext.function(f.model, f)
        except Exception as exc:
            raise InputError.single(source, ext.field_path, f"'{ext.spec}' failed: {_describe(exc)}") from None
        if f.model.objective != objective:
            raise InputError.single(
                source, ext.field_path, f"'{ext.spec}' changed the objective; extra constraints may only add rows"
            )
        for row in f.model.rows[first_row:]:
            problem = _row_problem(row.coeffs, row.rhs, len(f.model.vars))
            if problem:
                raise InputError.single(source, ext.field_path, f"'{ext.spec}' added row '{row.name}' with {problem}")
        for var in f.model.vars[vars_before:]:
            if var.integer and math.isinf(var.ub):
                raise InputError.single(
                    source, ext.field_path, f"'{ext.spec}' added integer variable '{var.name}' without an upper bound"
                )
    return [ext.spec for ext in extensions]


def record_extensions(plan: Plan | None, specs: list[str]) -> None:
    """Say in the plan that its model held user rows (the checker cannot re-check them)."""
    if plan is not None:
        plan.solver.extra_constraints = list(specs)


def diagnosis_note(specs: list[str]) -> list[str]:
    """The infeasibility diagnosis works on the model without user rows: say so when there were some."""
    if not specs:
        return []
    return [f"the diagnosis leaves out the user rows of extra_constraints ({', '.join(specs)}); they may be the cause"]


def _row_problem(coeffs: dict[int, float], rhs: float, n_vars: int) -> str | None:
    for i, c in coeffs.items():
        if not (isinstance(i, int) and 0 <= i < n_vars):
            return f"unknown variable index {i!r} (use the index the helpers or model.add_var return)"
        if not math.isfinite(c):
            return f"coefficient {c} on variable {i}"
    return None if math.isfinite(rhs) else f"right-hand side {rhs}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- Helpers: the model's variables by meaningful keys -----------------------------------------------------


def fleet_terms(
    f: Formulation, devices: Iterable[str] | None = None, sources: Iterable[str] = SOURCES
) -> dict[int, float]:
    """Devices in the fleet as a linear expression: owned devices in service, bought devices (nodes × devices per
    node) and rented devices, for `devices` (default: every offered device) and the `sources` named."""
    wanted = set(sources)
    unknown = wanted - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown fleet sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    terms: dict[int, float] = {}
    for dev_id in f.fleet_vars if devices is None else devices:
        if dev_id not in f.fleet_vars:
            continue  # not offered (or filtered out): no devices of it
        fv = f.fleet_vars[dev_id]
        dpn = float(f.offers[dev_id].device.devices_per_node)
        for source, index, per_unit in (
            ("owned", fv.own_devices, 1.0),
            ("bought", fv.buy_nodes, dpn),
            ("rented", fv.rent_devices, 1.0),
        ):
            if source in wanted and index is not None:
                terms[index] = terms.get(index, 0.0) + per_unit
    return terms


def accelerator_ids(f: Formulation) -> list[str]:
    """Offered devices that are not CPUs (GPUs and other accelerators), sorted."""
    return sorted(d for d, off in f.offers.items() if off.device.kind != DeviceKind.cpu)


def family_ids(f: Formulation) -> list[str]:
    """Pool families: an LLM's model id (its prefill, decode and co-located pools), else the pool's own id."""
    return sorted({p.family for p in f.pools})


def family_devices(f: Formulation, family: str) -> list[str]:
    """Devices some config of the family's pools runs on (after presolve), sorted."""
    return sorted({c.device for p in f.pools if p.family == family for c in p.configs})


def _config_terms(
    f: Formulation, family: str | None, device: str | None, per_replica: Callable[[int], float]
) -> dict[int, float]:
    terms: dict[int, float] = {}
    for pool in f.pools:
        if family is not None and pool.family != family:
            continue
        for c in pool.configs:
            if (device is None or c.device == device) and c.key in f.config_vars:
                r = f.config_vars[c.key].replicas
                terms[r] = terms.get(r, 0.0) + per_replica(c.tp)
    return terms


def replica_terms(f: Formulation, family: str | None = None, device: str | None = None) -> dict[int, float]:
    """Replicas of the family's configs (default: all pools) on `device` (default: any device)."""
    return _config_terms(f, family, device, lambda _tp: 1.0)


def device_terms(f: Formulation, family: str | None = None, device: str | None = None) -> dict[int, float]:
    """Devices the family's replicas occupy on `device`: replicas × tensor-parallel degree."""
    return _config_terms(f, family, device, float)
