"""Cut families (optimizer/cuts.py): hand-computed coefficients, and every cut holds at every integer-feasible point
found by brute force — on the cut functions' own small sets and on the rows a tiny scenario's model gets."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hetplace.optimizer.pools as pools_module
from hetplace.optimizer.backends import solve
from hetplace.optimizer.cuts import Cut, capacity_mir, mir_multipliers, node_use, step_floor
from hetplace.optimizer.formulation import CUTS, build_formulation, coverage
from hetplace.problems.loader import ResolvedScenario
from tests.conftest import load_case, one_llm_call


def lhs(cut: Cut, values: dict[str, float]) -> float:
    return sum(c * values[k] for k, c in cut.coeffs.items())


def test_capacity_mir_coefficients_by_hand() -> None:
    # coverage a = (0.4, 0.7, 0.1), λ = 1/0.4 = 2.5: g = 0.5, ⌈λ⌉ = 3.
    # λa = (1.0, 1.75, 0.25): 1.0 is integral -> 1; frac 0.75 ≥ g -> ⌈1.75⌉ = 2; frac 0.25 < g -> 1 - 0.25/0.5 = 0.5.
    cover = {"a": 0.4, "b": 0.7, "c": 0.1}
    cut = capacity_mir(cover, 2.5, with_share=False)
    assert cut.coeffs == pytest.approx({"r:a": 1.0, "r:b": 2.0, "r:c": 0.5})
    assert cut.rhs == pytest.approx(3.0)
    # the LP point "2.5 replicas of a" meets the capacity row exactly and breaks the cut (2.5 < 3)
    assert lhs(cut, {"r:a": 2.5, "r:b": 0, "r:c": 0}) < cut.rhs - 0.4
    # with a route share s: + (λ/g)(1 - s), i.e. share coefficient -5 and right-hand side 3 - 5 = -2
    shared = capacity_mir(cover, 2.5, with_share=True)
    assert shared.coeffs["share"] == pytest.approx(-5.0)
    assert shared.rhs == pytest.approx(-2.0)


def test_capacity_mir_integral_multiplier_is_chvatal_gomory() -> None:
    # λ = 1/0.25 = 4: Σ ⌈4a⌉ r ≥ 4 (no share) and Σ ⌈4a⌉ r - 4s ≥ 0 (share)
    cover = {"a": 0.25, "b": 0.6}
    assert capacity_mir(cover, 4.0, False).coeffs == {"r:a": 1.0, "r:b": 3.0}
    assert capacity_mir(cover, 4.0, False).rhs == pytest.approx(4.0)
    assert capacity_mir(cover, 4.0, True).coeffs == {"r:a": 1.0, "r:b": 3.0, "share": -4.0}


def test_mir_multipliers_rank_by_cost_per_coverage() -> None:
    cover = {"a": 0.5, "b": 0.25, "c": 1.0, "d": 0.2}
    unit = {"a": 10.0, "b": 1.0, "c": 1.0, "d": 100.0}  # per coverage: a 20, b 4, c 1 (covers alone), d 500
    assert mir_multipliers(cover, unit, 2) == pytest.approx([4.0, 2.0])


def test_step_floor_and_node_use_by_hand() -> None:
    assert step_floor({"a": 0.3, "b": 0.2}, False) == Cut({"L": 1.0}, 0.2)
    assert step_floor({"a": 0.3, "b": 0.2}, True) == Cut({"L": 1.0, "share": -0.2}, 0.0)
    assert step_floor({"a": 0.3, "b": 0.2}, True, slack_s=0.05).coeffs == pytest.approx({"L": 1.0, "share": -0.15})
    assert node_use(["own", "nodes"], "c1") == Cut({"own": 1.0, "nodes": 1.0, "x:c1": -1.0}, 0.0)


SHARES = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.05, 1.0), min_size=1, max_size=3),
    st.floats(1.01, 6.0),
    st.booleans(),
)
def test_capacity_mir_holds_at_every_integer_point(cover_list: list[float], lam: float, with_share: bool) -> None:
    """Brute force: every r ∈ {0..6}^n and share s on a grid with Σ a r ≥ s satisfies the cut."""
    cover = {f"c{i}": a for i, a in enumerate(cover_list)}
    cut = capacity_mir(cover, lam, with_share)
    for vec in itertools.product(range(7), repeat=len(cover)):
        for s in SHARES if with_share else [1.0]:
            if sum(a * r for a, r in zip(cover.values(), vec, strict=True)) < s - 1e-12:
                continue
            point = {f"r:{k}": float(r) for k, r in zip(cover, vec, strict=True)} | {"share": s}
            assert lhs(cut, point) >= cut.rhs - 1e-9, (vec, s)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 5.0), min_size=1, max_size=4), st.booleans())
def test_step_floor_holds_at_every_integer_point(latencies: list[float], with_share: bool) -> None:
    """Brute force: every in-use vector x ∈ {0,1}^n meeting the choose row Σx ≥ s, with L at its least
    (max ℓ_c x_c), satisfies L ≥ min ℓ · s."""
    lat = {f"c{i}": t for i, t in enumerate(latencies)}
    cut = step_floor(lat, with_share)
    for x in itertools.product((0, 1), repeat=len(lat)):
        for s in SHARES if with_share else [1.0]:
            if sum(x) < s:
                continue
            least_l = max((t * xi for t, xi in zip(lat.values(), x, strict=True)), default=0.0)
            assert lhs(cut, {"L": least_l, "share": s}) >= cut.rhs - 1e-12


def test_node_use_holds_at_every_integer_point() -> None:
    """Brute force: configs of tp 1, 2 and 8 on nodes of 8 devices with 3 owned and 2 rentable; every replica
    vector with its in-use flags (r ≥ x, r ≤ 4x) and the least fleet covering it satisfies own + nodes + rent ≥ x."""
    tps = {"c1": 1, "c2": 2, "c8": 8}
    for reps in itertools.product(range(3), repeat=3):
        for xs in itertools.product((0, 1), repeat=3):
            if any(r < x or r > 4 * x for r, x in zip(reps, xs, strict=True)):
                continue
            use = sum(r * tp for r, tp in zip(reps, tps.values(), strict=True))
            own = min(use, 3)
            rent = min(use - own, 2)
            nodes = math.ceil((use - own - rent) / 8)
            values = {"own": own, "nodes": nodes, "rent": rent} | {
                f"x:{k}": float(x) for k, x in zip(tps, xs, strict=True)
            }
            for key in tps:
                cut = node_use(["own", "nodes", "rent"], key)
                assert lhs(cut, values) >= cut.rhs, (reps, xs)


def _tiny_resolved(rate: float, sla: float) -> ResolvedScenario:
    return load_case(
        one_llm_call(
            rate,
            sla,
            {
                "owned": [{"device": "l4", "count": 2}],
                "purchasable": [{"device": "l4", "max_count": 8, "capex_usd": 3000}],
                "rentable": [{"device": "a10g", "max_count": 3}],
            },
        )
    )


@pytest.mark.parametrize(("rate", "sla"), [(1.0, 6.0), (3.0, 8.0)])
def test_model_cut_rows_hold_at_every_brute_forced_pool_plan(
    monkeypatch: pytest.MonkeyPatch, rate: float, sla: float
) -> None:
    """Every pool of a tiny scenario: every replica vector within the available devices that covers the pool at
    a route share s (s on a grid; 1 for a pool of a one-route family), with its in-use flags, its least latency and
    the least fleet, satisfies every cut row of that pool in the model as built (values set by variable index)."""
    monkeypatch.setattr(pools_module, "TENSOR_PARALLEL", (1, 2))
    monkeypatch.setattr(pools_module, "PREFILL_BATCHES", (1, 4))
    monkeypatch.setattr(pools_module, "DECODE_BATCHES", (1, 16))
    f = build_formulation(_tiny_resolved(rate, sla), cuts=frozenset(CUTS))  # every family, on or off
    cut_rows = [r for r in f.model.rows if r.name.startswith(("mir[", "floor[", "node_use["))]
    assert any(r.name.startswith("mir[") for r in cut_rows)
    checked = 0
    for pool in f.pools:
        mine = [r for r in cut_rows if pool.id in r.name or any(c.key in r.name for c in pool.configs)]
        share = f.share_vars.get(pool.family, {}).get(pool.route)
        for vec in itertools.product(range(3), repeat=len(pool.configs)):
            cov = sum(coverage(f, pool, c) * r for c, r in zip(pool.configs, vec, strict=True))
            for s in SHARES if share is not None else [1.0]:
                if cov < s - 1e-12 or (s > 0) != any(vec):
                    continue
                values: dict[int, float] = {}
                if share is not None:
                    values[share] = s
                use: dict[str, int] = {}
                for c, r in zip(pool.configs, vec, strict=True):
                    cv = f.config_vars[c.key]
                    values[cv.replicas], values[cv.in_use] = r, float(r > 0)
                    use[c.device] = use.get(c.device, 0) + r * c.tp
                for ref in pool.steps:
                    values[f.latency_vars[(pool.id, ref)]] = max(
                        (c.floor_latency_s(ref) for c, r in zip(pool.configs, vec, strict=True) if r), default=0.0
                    )
                if any(n > f.offers[dev].available for dev, n in use.items()):
                    continue
                for dev, n in use.items():
                    off, fv = f.offers[dev], f.fleet_vars[dev]
                    own = min(n, off.owned)
                    rent = min(n - own, off.rent_max)
                    nodes = math.ceil((n - own - rent) / off.device.devices_per_node)
                    for i, v in ((fv.own_devices, own), (fv.rent_devices, rent), (fv.buy_nodes, nodes)):
                        if i is not None:
                            values[i] = v
                for row in mine:
                    got = sum(c * values.get(i, 0.0) for i, c in row.coeffs.items())
                    assert got >= row.rhs - 1e-9, (row.name, vec, s)
                checked += 1
    assert checked > 50


@pytest.mark.parametrize(("rate", "sla"), [(1.0, 6.0), (3.0, 8.0), (0.5, 20.0)])
def test_cuts_keep_the_optimum(monkeypatch: pytest.MonkeyPatch, rate: float, sla: float) -> None:
    """The same scenario's model with every cut family and with none has the same optimal TCO (HiGHS, 0 gap), and
    CBC and CP-SAT reach it with the cuts too."""
    monkeypatch.setattr(pools_module, "TENSOR_PARALLEL", (1, 2))
    resolved = _tiny_resolved(rate, sla)
    with_cuts = solve(build_formulation(resolved, cuts=frozenset(CUTS)).model, "highs", gap=0.0)
    without = solve(build_formulation(resolved, cuts=frozenset()).model, "highs", gap=0.0)
    assert with_cuts.status == without.status == "optimal"
    assert with_cuts.objective == pytest.approx(without.objective, rel=1e-9)
    for backend, rel in (("cbc", 1e-6), ("cpsat", 1e-3)):  # CP-SAT's integer rows round conservatively
        other = solve(build_formulation(resolved, cuts=frozenset(CUTS)).model, backend, gap=0.0)
        assert other.objective == pytest.approx(without.objective, rel=rel), backend
