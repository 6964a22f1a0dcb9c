"""Backend translation details: CP-SAT's indicator split and conservative integer rows, checked by hand."""

from __future__ import annotations

from hetplace.optimizer.backends import _conservative_row, _indicator_split, solve
from hetplace.optimizer.linear import LinearModel
from tests.conftest import present


def _model() -> tuple[LinearModel, int, int, int, int]:
    m = LinearModel()
    latency = m.add_var("L", 0, 10.0, False, 1e-5)
    replicas = m.add_var("r", 0, 7, True)
    used = m.add_var("x", 0, 1, True)
    other = m.add_var("y", 0, 1, True)
    return m, latency, replicas, used, other


def _needs_three_replicas() -> tuple[LinearModel, int, int, int, int]:
    """min r with r ≥ 3 forcing x = 1 (link row r ≤ 7x), hence L ≥ 2.5."""
    m, latency, replicas, used, other = _model()
    m.add_row("link", {replicas: 1.0, used: -7.0}, "<=", 0.0)
    m.add_row("lat", {latency: 1.0, used: -2.5}, ">=", 0.0)
    m.add_row("need", {replicas: 1.0}, ">=", 3.0)
    m.add_objective(replicas, 1.0)
    return m, latency, replicas, used, other


def test_latency_row_becomes_x_implies_bound() -> None:
    m, latency, _, used, _ = _model()
    m.add_row("lat", {latency: 1.0, used: -2.5}, ">=", 0.0)
    b, rest, rhs = present(_indicator_split(m, m.rows[0]))
    assert (b, rest) == (used, {latency: 1.0})
    assert rhs == {0: None, 1: 2.5}  # x = 0 leaves L ≥ 0, implied by its bound


def test_link_row_becomes_not_x_implies_zero() -> None:
    m, _, replicas, used, _ = _model()
    m.add_row("link", {replicas: 1.0, used: -7.0}, "<=", 0.0)
    _, _, rhs = present(_indicator_split(m, m.rows[0]))
    assert rhs == {0: 0.0, 1: None}  # x = 1 leaves r ≤ 7, implied by its bound


def test_rows_with_two_binaries_or_equalities_stay_linear() -> None:
    m, latency, _, used, other = _model()
    m.add_row("choose", {used: 1.0, other: 1.0}, ">=", 1.0)
    m.add_row("eq", {latency: 1.0, used: -1.0}, "==", 0.0)
    assert _indicator_split(m, m.rows[0]) is None
    assert _indicator_split(m, m.rows[1]) is None


def test_conservative_rounding_keeps_every_integer_solution_feasible() -> None:
    # 0.3337 a + 0.6663 b ≥ 1.0001 at scale 1e4: coefficients round down, the right-hand side up
    coeffs, rhs = _conservative_row({0: 0.3337, 1: 0.6663}, ">=", 1.0001, 1e4)
    assert (coeffs, rhs) == ({0: 3337, 1: 6663}, 10001)
    coeffs, rhs = _conservative_row({0: 0.33371}, "<=", 2.00009, 1e4)
    assert (coeffs, rhs) == ({0: 3338}, 20000)


def test_cpsat_honours_the_implications() -> None:
    """min r + 100·L with r ≥ 3 forcing x = 1 (link), hence L ≥ 2.5: optimum 3 + 250 on every backend."""
    m, latency, *_ = _needs_three_replicas()
    m.add_objective(latency, 100.0)
    for backend in ("highs", "cbc", "cpsat"):
        res = solve(m, backend)
        assert res.status == "optimal", backend
        assert res.objective is not None and abs(res.objective - 253.0) < 1e-6, (backend, res.objective)


def test_cbc_bound_is_read_from_its_log_and_the_log_removed(tmp_path) -> None:
    from hetplace.optimizer.backends import _cbc_log_bound

    log = tmp_path / "cbc.log"
    log.write_text(
        "Result - Stopped on time limit\n\nObjective value:                720333.42512000\n"
        "Lower bound:                    658188.210\nGap:                            0.09\n"
    )
    assert _cbc_log_bound(str(log)) == 658188.21
    assert not log.exists()
    assert _cbc_log_bound(str(log)) is None  # no log, no bound


def test_time_to_first_plan_is_reported_where_the_solver_tells_it() -> None:
    m, *_ = _needs_three_replicas()
    for backend in ("highs", "cpsat"):
        res = solve(m, backend)
        assert res.first_solution_s is not None and 0 <= res.first_solution_s <= res.wall_time_s, backend
    assert solve(m, "cbc").first_solution_s is None  # CBC through PuLP gives no incumbent callback


def test_starts_never_change_the_optimum() -> None:
    """A start is only an incumbent: feasible or not, partial or whole, the optimum (3 replicas) stays."""
    m, _, replicas, used, other = _needs_three_replicas()
    m.add_objective(other, 0.5)
    starts: list[list[float] | dict[int, float]] = [
        {replicas: 5.0, used: 1.0},  # partial and feasible: the solver fills in L and y
        {replicas: 1.0, used: 0.0},  # partial and infeasible (too few replicas, link row broken)
        [2.5, 6.0, 1.0, 1.0],  # whole and feasible
    ]
    for start in starts:
        for backend in ("highs", "cpsat"):
            res = solve(m, backend, start=start)
            assert (res.status, res.objective) == ("optimal", 3.0), (backend, start)
