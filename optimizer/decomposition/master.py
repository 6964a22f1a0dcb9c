"""The integer master over generated columns: a solver-neutral LinearModel (HiGHS, CBC or CP-SAT solve it through
optimizer.backends), and the way back from its solution to values of the whole model.

Variables: the master variables as they are in the model (fleet counts stay integer, starts keep their CP-SAT
resolution) and one binary per column; rows: the linking rows with each column's coefficients, and one "pick
exactly one plan" row per family. Every solution is a solution of the whole model (the columns are points of the
families' blocks), so its objective is a true plan cost; its optimum is not a bound (it sees only these columns).
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplace.optimizer.decomposition.colgen import Column
from hetplace.optimizer.decomposition.partition import Partition
from hetplace.optimizer.linear import LinearModel


@dataclass
class IntegerMaster:
    model: LinearModel
    master_index: dict[int, int]  # whole-model variable -> master variable
    column_index: list[int]  # column k -> its binary
    columns: list[Column]
    part: Partition
    n_whole: int  # variables of the whole model

    @classmethod
    def build(cls, whole: LinearModel, part: Partition, columns: list[Column]) -> IntegerMaster:
        m = LinearModel()
        m.objective_constant = whole.objective_constant
        where: dict[int, int] = {}
        for i in part.master_vars:
            v = whole.vars[i]
            where[i] = m.add_var(v.name, v.lb, v.ub, v.integer, v.resolution)
            if i in whole.objective:
                m.add_objective(where[i], whole.objective[i])
        picks = []
        per_row: dict[int, dict[int, float]] = {}
        per_block: dict[int, dict[int, float]] = {}
        for k, col in enumerate(columns):
            b = m.add_var(f"plan[{part.blocks[col.block].family}#{k}]", 0, 1, True)
            picks.append(b)
            if col.cost:
                m.add_objective(b, col.cost)
            for p, c in col.link.items():
                per_row.setdefault(p, {})[b] = c
            per_block.setdefault(col.block, {})[b] = 1.0
        for p, k in enumerate(part.linking_rows):
            r = whole.rows[k]
            coeffs = {where[i]: c for i, c in r.coeffs.items() if i in where}
            coeffs.update(per_row.get(p, {}))
            m.add_row(r.name, coeffs, r.sense, r.rhs)
        for n, block in enumerate(part.blocks):
            m.add_row(f"one_plan[{block.family}]", per_block.get(n, {}), "==", 1.0)
        return cls(m, where, picks, columns, part, len(whole.vars))

    def objective_of(self, whole_objective: dict[int, float]) -> dict[int, float]:
        """A whole-model objective over master variables only, in master indices (TCO, mean latency)."""
        out: dict[int, float] = {}
        for i, c in whole_objective.items():
            if i in self.master_index:
                out[self.master_index[i]] = c
            elif c:
                raise ValueError("objective term on a family variable")
        return out

    def lift(self, values: list[float]) -> list[float]:
        """Whole-model values of a master solution: the master variables and each family's picked column."""
        out = [0.0] * self.n_whole
        for i, j in self.master_index.items():
            out[i] = values[j]
        for k, col in enumerate(self.columns):
            if values[self.column_index[k]] > 0.5:
                for g, x in zip(self.part.blocks[col.block].variables, col.values.tolist(), strict=True):
                    out[g] = x
        return out

    def start_of(self, picked: list[int]) -> dict[int, float]:
        """A partial start picking these columns (the solver completes the master variables)."""
        chosen = set(picked)
        return {b: 1.0 if k in chosen else 0.0 for k, b in enumerate(self.column_index)}
