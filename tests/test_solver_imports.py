"""Guard against the known crash when highspy >= 1.15 and ortools share a process.

Imports PuLP's HiGHS backend and OR-Tools CP-SAT together and solves the same tiny integer program with both.
"""

from __future__ import annotations

import importlib.metadata

import pulp
from ortools.sat.python import cp_model


def test_highspy_version_is_pinned_below_1_15() -> None:
    major, minor = (int(x) for x in importlib.metadata.version("highspy").split(".")[:2])
    assert (major, minor) >= (1, 14) and (major, minor) < (1, 15)


def test_pulp_highs_and_cpsat_solve_in_one_process() -> None:
    # max 3x + 2y  s.t.  x + y <= 4,  x + 3y <= 6,  x, y integer >= 0  -> optimum x=4, y=0, value 12
    prob = pulp.LpProblem("guard", pulp.LpMaximize)
    x = pulp.LpVariable("x", lowBound=0, cat="Integer")
    y = pulp.LpVariable("y", lowBound=0, cat="Integer")
    prob += 3 * x + 2 * y
    prob += x + y <= 4
    prob += x + 3 * y <= 6
    status = prob.solve(pulp.HiGHS(msg=False))
    assert pulp.LpStatus[status] == "Optimal"
    assert (x.value(), y.value(), pulp.value(prob.objective)) == (4, 0, 12)

    model = cp_model.CpModel()
    cx = model.new_int_var(0, 10, "x")
    cy = model.new_int_var(0, 10, "y")
    model.add(cx + cy <= 4)
    model.add(cx + 3 * cy <= 6)
    model.maximize(3 * cx + 2 * cy)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    assert solver.solve(model) == cp_model.OPTIMAL
    assert (solver.value(cx), solver.value(cy), solver.objective_value) == (4, 0, 12)

    # HiGHS still works after CP-SAT ran (the crash showed on the second solver touched).
    status = prob.solve(pulp.HiGHS(msg=False))
    assert pulp.value(prob.objective) == 12


def test_cbc_is_available() -> None:
    assert pulp.PULP_CBC_CMD(msg=False).available()
