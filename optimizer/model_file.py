"""Write the built model as an LP or MPS file (`hetplace solve --write-model`), to open a slow or surprising model
in any MILP solver.

Variables and rows keep the model's own names (`r[<config>]`, `fleet[<device>]`, `user:...`), made writable:
every character other than letters, digits, "_" and "." becomes "_", and a name that then collides gets a
"_<n>" suffix. An objective constant (LP files have none) rides on a variable fixed at 1. The file goes to a
temporary file first and is renamed into place (common/io), so an interrupted write leaves no partial file.
PuLP writes both formats. `hetplace solve` writes the model, then solves it as usual.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hetplace.common.io import atomic_write_bytes
from hetplace.optimizer.backends import pulp_problem
from hetplace.optimizer.linear import LinearModel

MODEL_SUFFIXES = (".lp", ".mps")
_UNWRITABLE = re.compile(r"[^A-Za-z0-9_.]")


def model_file_problem(path: Path) -> str | None:
    """Why `path` cannot be a model file (None if it can): the suffix says the format."""
    if path.suffix.lower() not in MODEL_SUFFIXES:
        return f"unknown model format '{path.suffix or path.name}': use a .lp or .mps file name"
    return None


def writable_names(names: list[str], prefix: str) -> list[str]:
    """Names every LP/MPS reader accepts, unique, starting with a letter."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = _UNWRITABLE.sub("_", name).strip("_") or prefix
        if not base[0].isalpha():
            base = f"{prefix}_{base}"
        candidate, n = base, 1
        while candidate.lower() in seen:  # some readers fold case
            n += 1
            candidate = f"{base}_{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def write_model(model: LinearModel, path: Path) -> None:
    """Write `model` in the format `path`'s suffix names (.lp or .mps); ValueError for another suffix."""
    problem = model_file_problem(path)
    if problem:
        raise ValueError(problem)
    import pulp

    var_names = writable_names([v.name for v in model.vars], "v")
    prob, _ = pulp_problem(model, var_names, writable_names([r.name for r in model.rows], "c"))
    if model.objective_constant:  # LP files have no objective constant: carry it on a variable fixed at 1
        prob.objective.constant = 0.0
        one = pulp.LpVariable(writable_names([*var_names, "objective_constant"], "v")[-1], 1, 1)
        prob.objective += model.objective_constant * one
    with tempfile.TemporaryDirectory(prefix="hetplace-model-") as tmp:
        scratch = Path(tmp) / f"model{path.suffix.lower()}"
        if scratch.suffix == ".lp":
            prob.writeLP(str(scratch))
        else:
            prob.writeMPS(str(scratch))
        atomic_write_bytes(path, scratch.read_bytes())
