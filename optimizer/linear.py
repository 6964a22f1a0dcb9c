"""A solver-neutral mixed-integer linear model: named variables, linear rows, a linear objective.

Every backend (HiGHS via highspy, CBC via PuLP, OR-Tools CP-SAT) is built from this one object, so all solve the
same model.
Continuous variables carry a `resolution`: the unit CP-SAT counts them in (it only has integers), e.g. 10 µs for
times. See `_solve_cpsat` in optimizer/backends.py for how rows are scaled to integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Var:
    name: str
    lb: float
    ub: float
    integer: bool
    resolution: float = 1.0  # CP-SAT unit for continuous variables


@dataclass
class Row:
    name: str
    coeffs: dict[int, float]  # variable index -> coefficient
    sense: str  # "<=" | ">=" | "=="
    rhs: float


@dataclass
class LinearModel:
    vars: list[Var] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    objective: dict[int, float] = field(default_factory=dict)
    objective_constant: float = 0.0
    _index: dict[str, int] = field(default_factory=dict)

    def add_var(
        self, name: str, lb: float = 0.0, ub: float = float("inf"), integer: bool = False, resolution: float = 1.0
    ) -> int:
        if name in self._index:
            raise ValueError(f"duplicate variable {name}")
        self._index[name] = len(self.vars)
        self.vars.append(Var(name, lb, ub, integer, resolution))
        return self._index[name]

    def var(self, name: str) -> int:
        return self._index[name]

    def find_var(self, name: str) -> int | None:
        """The index of the variable called `name`, or None when the model has none (models built from the same
        scenario name their variables alike, so a solution of one can be carried over to another by name)."""
        return self._index.get(name)

    def add_row(self, name: str, coeffs: dict[int, float], sense: str, rhs: float) -> None:
        if sense not in ("<=", ">=", "=="):
            raise ValueError(sense)
        clean = {i: c for i, c in coeffs.items() if c != 0.0}
        self.rows.append(Row(name, clean, sense, rhs))

    def add_objective(self, index: int, coeff: float) -> None:
        self.objective[index] = self.objective.get(index, 0.0) + coeff

    def evaluate_objective(self, values: list[float]) -> float:
        return self.objective_constant + sum(c * values[i] for i, c in self.objective.items())

    def violations(self, values: list[float], tol: float = 1e-6) -> list[str]:
        """Rows and bounds `values` break (a self-check used by tests; the plan checker is independent)."""
        out = []
        for v, x in zip(self.vars, values, strict=True):
            if x < v.lb - tol or x > v.ub + tol:
                out.append(f"{v.name}={x} outside [{v.lb}, {v.ub}]")
        for r in self.rows:
            lhs = sum(c * values[i] for i, c in r.coeffs.items())
            scale = max(1.0, abs(r.rhs))
            if (
                (r.sense == "<=" and lhs > r.rhs + tol * scale)
                or (r.sense == ">=" and lhs < r.rhs - tol * scale)
                or (r.sense == "==" and abs(lhs - r.rhs) > tol * scale)
            ):
                out.append(f"{r.name}: {lhs} {r.sense} {r.rhs}")
        return out
