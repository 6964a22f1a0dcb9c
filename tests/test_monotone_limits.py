"""Relaxing a limit never raises the optimal TCO: max_utilisation, an SLA, the annual budget, availability.

The co-located prefill stall used to be priced at the cap, so relaxing `max_utilisation` made co-located configs
slower and could raise the optimum (issue 16: on the small scenario at 3 req/s and an 8 s SLA, 18,356 USD/year at
a 0.8 cap but 18,561 at 0.9). Load levels on a fixed grid (optimizer/pools.py) make every menu at a higher cap a
superset, in latency and capacity, of the one at a lower cap.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hetplace.optimizer.pools import levels_below
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from tests.conftest import small_at, write_yaml

REL = 1e-6  # optima are solved to a 1e-6 gap


def optimum(tmp: Path, rate: float, sla: float, percentile: float | None = None, **limits: Any) -> float | None:
    """Optimal TCO of the small scenario at this rate and SLA with these limits (None when infeasible); owned L4s
    and purchasable H100s may be set with `owned_l4` / `h100_max`."""
    sc = small_at(tmp, rate, sla, percentile)
    hw = sc["hardware"]
    if "owned_l4" in limits:
        hw["owned"][0]["count"] = limits.pop("owned_l4")
    if "h100_max" in limits:
        hw["purchasable"][0]["max_count"] = limits.pop("h100_max")
    sc["limits"].update(limits)
    outcome = solve_scenario(load_scenario(write_yaml(tmp / "s.yaml", sc)), "highs", baselines=False, gap=1e-6)
    return outcome.plan.tco.total_usd_per_year if outcome.plan is not None else None


def assert_not_raised(tight: float | None, relaxed: float | None) -> None:
    if tight is not None:
        assert relaxed is not None, "relaxing a limit made a feasible scenario infeasible"
        assert relaxed <= tight * (1 + REL), (tight, relaxed)


def test_relaxing_the_cap_from_08_to_09_no_longer_raises_tco(tmp_path: Path) -> None:
    # Before the fix: 18,561.24 → 18,356.35 → 18,561.24 USD/year at caps 0.7 → 0.8 → 0.9 (co-located stall priced
    # at the cap pushed the answer step over the 8 s SLA at 0.9).
    at = {u: optimum(tmp_path / str(u), 3.0, 8.0, max_utilisation=u) for u in (0.7, 0.8, 0.9, 1.0)}
    assert at[0.7] == pytest.approx(18_561.240832, rel=1e-9)  # the small scenario's optimum, unchanged
    assert at[0.8] == pytest.approx(18_356.348416, rel=1e-9)
    assert at[0.9] == pytest.approx(18_356.348416, rel=1e-9)
    assert_not_raised(at[0.8], at[0.9])
    assert_not_raised(at[0.9], at[1.0])


def test_load_levels_on_the_menu() -> None:
    # Every level below the cap and the first at or above it; the grid starts at the default cap 0.7, so at 0.7
    # the menu is exactly the cap-priced one and a lower cap prices the stall at 0.7.
    assert levels_below(0.7) == [0.7]
    assert levels_below(0.5) == [0.7]
    assert levels_below(0.85) == [0.7, 0.8, 0.9]
    assert levels_below(1.0) == [0.7, 0.8, 0.9, 0.95, 1.0]
    # A higher cap's levels contain a lower cap's: the monotonicity argument.
    caps = [0.3, 0.6, 0.7, 0.72, 0.8, 0.88, 0.9, 0.97, 1.0]
    for lo, hi in itertools.pairwise(caps):
        assert set(levels_below(lo)) <= set(levels_below(hi))


PROPERTY = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
rates = st.sampled_from([2.0, 3.0, 5.0])
slas = st.sampled_from([6.5, 7.5, 8.0, 9.0])


@PROPERTY
@given(
    rates,
    slas,
    st.sampled_from([0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]),
    st.sampled_from([0.05, 0.1, 0.2]),
    st.sampled_from([None, None, 99.0]),  # a stated cap also limits pools serving percentile SLAs
)
def test_relaxing_max_utilisation_never_raises_tco(
    tmp_path: Path, rate: float, sla: float, cap: float, more: float, percentile: float | None
) -> None:
    tight = optimum(tmp_path / "a", rate, sla, percentile, max_utilisation=cap)
    assert_not_raised(tight, optimum(tmp_path / "b", rate, sla, percentile, max_utilisation=min(1.0, cap + more)))


@PROPERTY
@given(rates, slas, st.sampled_from([0.25, 1.0, 3.0]), st.sampled_from([None, 90.0, 99.0]))
def test_relaxing_an_sla_never_raises_tco(
    tmp_path: Path, rate: float, sla: float, more_s: float, percentile: float | None
) -> None:
    tight = optimum(tmp_path / "a", rate, sla, percentile)
    assert_not_raised(tight, optimum(tmp_path / "b", rate, sla + more_s, percentile))


@PROPERTY
@given(rates, st.sampled_from([15_000.0, 18_400.0, 19_000.0, 30_000.0]), st.sampled_from([500.0, 5_000.0]))
def test_relaxing_the_annual_budget_never_raises_tco(tmp_path: Path, rate: float, budget: float, more: float) -> None:
    tight = optimum(tmp_path / "a", rate, 8.0, annual_budget_usd=budget)
    assert_not_raised(tight, optimum(tmp_path / "b", rate, 8.0, annual_budget_usd=budget + more))


@PROPERTY
@given(rates, st.integers(0, 3), st.integers(1, 2), st.sampled_from([0, 8]), st.sampled_from([None, 99.0]))
def test_more_devices_available_never_raise_tco(
    tmp_path: Path, rate: float, owned: int, more: int, h100: int, percentile: float | None
) -> None:
    extra = {"h100_max": h100} if h100 else {}
    tight = optimum(tmp_path / "a", rate, 8.0, percentile, owned_l4=owned + 1, **extra)
    relaxed_extra = {"h100_max": h100 + 8} if h100 else {}
    assert_not_raised(tight, optimum(tmp_path / "b", rate, 8.0, percentile, owned_l4=owned + 1 + more, **relaxed_extra))
