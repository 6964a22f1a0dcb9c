"""User rows (`extra_constraints`) on the small scenario: effects hand-computed from catalog prices or found by an
independent brute force, on HiGHS and CP-SAT; schedule honours them; the checker notes them; bad hooks exit 2.

Hand numbers (default economics: 0.08 USD/kWh, PUE 1.3, 184 USD/kW-month hosting, 4-year amortisation, 70 % load):
running cost per kW of TDP and year = 0.7·1.3·8760·0.08 + 184·12 = 2845.728 USD, so
  l4 (72 W, owned, sunk)          0.072 · 2845.728                 =   204.892416 USD/year
  xeon-6980p (500 W, 12,460 USD)  0.5 · 2845.728 + 12460 / 4       =  4537.864 USD/year
  a10g (rented at 1.006 USD/h)    1.006 · 8760                     =  8812.56 USD/year
  h100-sxm (700 W, 27,000 USD)    0.7 · 2845.728 + 27000 / 4       =  8742.0096 USD/year
The unconstrained optimum is 2 l4 + 4 xeon = 18,561.240832 USD/year.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.optimizer.backends import solve
from hetplace.optimizer.checker import check_notes, check_plan
from hetplace.optimizer.multiperiod import solve_schedule
from hetplace.optimizer.solve import formulate, solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, write_yaml

SMALL = FIXTURES / "scenarios" / "small-agent.yaml"
EXAMPLES = "hetplace.optimizer.extension_examples"
L4, XEON, A10G, H100 = 204.892416, 4537.864, 8812.56, 8742.0096
runner = CliRunner()


def _scenario(tmp_path: Path, extra: Any = None, change=None) -> Path:
    """The small scenario copied to tmp_path, with `extra_constraints: extra` and an optional further change."""
    shutil.copy(SMALL.parent / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text())
    if extra is not None:
        data["extra_constraints"] = extra
    if change is not None:
        change(data)
    return write_yaml(tmp_path / "scenario.yaml", data)


def _fleet(plan: Plan) -> dict[str, tuple[int, int, int]]:
    return {e.device: (e.owned_used, e.bought, e.rented) for e in plan.fleet}


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_cpu_cap_moves_decode_to_rented_a10g(tmp_path: Path, backend: str) -> None:
    """At most 2 CPU sockets: the co-located LLM pool (on 3 xeons) no longer fits beside the tool pool, so decode
    moves to 2 rented a10g (tp 2) and prefill keeps one xeon: 2 l4 + 2 xeon + 2 a10g."""
    resolved = load_scenario(_scenario(tmp_path, f"{EXAMPLES}:cpu_devices_at_most_2"))
    outcome = solve_scenario(resolved, backend, baselines=False)
    plan = outcome.plan
    assert outcome.status == "optimal" and plan is not None
    assert _fleet(plan) == {"l4": (2, 0, 0), "xeon-6980p": (0, 2, 0), "a10g": (0, 0, 2)}
    assert plan.tco.total_usd_per_year == pytest.approx(2 * L4 + 2 * XEON + 2 * A10G, rel=1e-9)  # 27,110.632832
    assert plan.solver.extra_constraints == [f"{EXAMPLES}:cpu_devices_at_most_2"]
    assert check_plan(resolved, plan) == []
    assert check_notes(resolved, plan) == [
        f"the plan was solved with user rows from extra_constraints ({EXAMPLES}:cpu_devices_at_most_2); "
        "they are not re-checked here"
    ]


def test_cpu_cap_equals_the_scenario_availability_limit(tmp_path: Path) -> None:
    """Independent route to the same optimum: xeon max_count 2 in the scenario (an offer bound, no user row)."""
    hooked = solve_scenario(load_scenario(_scenario(tmp_path, f"{EXAMPLES}:cpu_devices_at_most_2")), baselines=False)
    (tmp_path / "b").mkdir()
    capped = _scenario(tmp_path / "b", change=lambda d: d["hardware"]["purchasable"][1].update(max_count=2))
    plain = solve_scenario(load_scenario(capped), baselines=False)
    assert hooked.plan is not None and plain.plan is not None
    assert hooked.plan.tco.total_usd_per_year == pytest.approx(plain.plan.tco.total_usd_per_year, rel=1e-9)


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_two_device_types_per_llm_against_brute_force(tmp_path: Path, backend: str) -> None:
    """Resilience: the LLM on at least 2 device types. By hand: the cheapest fix keeps the co-located pool on the
    4 xeons and adds a prefill replica on one more owned l4 (a standby: the co-located route keeps the traffic):
    18,561.24 + 204.89 = 18,766.13 USD/year. Brute force: for every pair of devices, force a replica of the LLM on
    each (plain rows, no binaries) and take the cheapest optimum. (The brute force caught an earlier version of the
    example that also put the embedding pool on two device types.)"""
    resolved = load_scenario(_scenario(tmp_path, [f"{EXAMPLES}:two_device_types_per_llm"]))
    outcome = solve_scenario(resolved, backend, baselines=False)
    plan = outcome.plan
    assert outcome.status == "optimal" and plan is not None
    assert plan.tco.total_usd_per_year == pytest.approx(3 * L4 + 4 * XEON, rel=1e-9)
    assert len({a.device for a in plan.pools if a.model == "llama-3.1-8b"}) >= 2
    assert check_plan(resolved, plan) == []

    plain = load_scenario(SMALL)  # the same scenario without the hook
    f = formulate(plain)
    llm_configs = [c for p in f.pools if p.family == "llama-3.1-8b" for c in p.configs if c.key in f.config_vars]
    devices = sorted({c.device for c in llm_configs})
    best = float("inf")
    for pair in itertools.combinations(devices, 2):
        g = formulate(plain)
        for d in pair:
            g.model.add_row(
                f"force[{d}]", {g.config_vars[c.key].replicas: 1.0 for c in llm_configs if c.device == d}, ">=", 1
            )
        res = solve(g.model, "highs")
        if res.objective is not None:
            best = min(best, res.objective)
    assert len(devices) >= 3
    assert plan.tco.total_usd_per_year == pytest.approx(best, rel=1e-3 if backend == "cpsat" else 1e-6)


@pytest.mark.parametrize("backend", ["highs", "cpsat"])
def test_rented_share_cap_buys_an_h100_node(tmp_path: Path, backend: str) -> None:
    """Without the owned l4s the optimum rents 2 a10g (100 % of its accelerators). At most 30 % rented: the only
    purchasable accelerator is h100 in nodes of 8, and 8 bought allow at most 3 rented (3 ≤ 0.3 · 11); the
    cheapest such fleet serves everything on the node and 2 xeons: 8 · 8742.0096 + 2 · 4537.864 = 79,011.80."""

    def no_owned(d: dict[str, Any]) -> None:
        d["hardware"].pop("owned")

    free = solve_scenario(load_scenario(_scenario(tmp_path, None, no_owned)), backend, baselines=False).plan
    assert free is not None and _fleet(free)["a10g"] == (0, 0, 2)
    capped_path = _scenario(tmp_path, f"{EXAMPLES}:rented_share_at_most_30pct", no_owned)
    plan = solve_scenario(load_scenario(capped_path), backend, baselines=False).plan
    assert plan is not None
    assert _fleet(plan) == {"h100-sxm": (0, 8, 0), "xeon-6980p": (0, 2, 0)}
    assert plan.tco.total_usd_per_year == pytest.approx(8 * H100 + 2 * XEON, rel=1e-9)


def test_file_path_relative_to_the_scenario_and_several_functions(tmp_path: Path) -> None:
    """A rules file beside the scenario, named by its relative path, combined with a bundled example."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.py").write_text(
        "from hetplace.optimizer.extensions import fleet_terms\n\n\n"
        "def at_most_one_a10g(model, f):\n"
        '    model.add_row("user:a10g", fleet_terms(f, ["a10g"]), "<=", 1)\n'
    )
    specs = ["rules/mine.py:at_most_one_a10g", f"{EXAMPLES}:cpu_devices_at_most_2"]
    plan = solve_scenario(load_scenario(_scenario(tmp_path, specs)), baselines=False).plan
    assert plan is not None and plan.solver.extra_constraints == specs
    fleet = _fleet(plan)
    assert fleet.get("a10g", (0, 0, 0))[2] <= 1 and fleet["xeon-6980p"][1] <= 2
    # One a10g and two xeons cannot serve it all: something dearer than the 27,110.63 of the cpu cap alone.
    assert plan.tco.total_usd_per_year > 2 * L4 + 2 * XEON + 2 * A10G


def test_schedule_applies_the_rows_in_every_period(tmp_path: Path) -> None:
    """Constant demand over 4 quarters costs one year of the single-period optimum (as without rows), here the
    capped one: 27,110.632832 USD; every period's plan has at most 2 xeons."""

    def horizon(d: dict[str, Any]) -> None:
        d["horizon"] = {"periods": 4, "period_years": 0.25}

    status, schedule = solve_schedule(
        load_scenario(_scenario(tmp_path, f"{EXAMPLES}:cpu_devices_at_most_2", horizon)), greedy=False
    )
    assert status == "optimal" and schedule is not None
    assert schedule.total_usd == pytest.approx(2 * L4 + 2 * XEON + 2 * A10G, rel=1e-6)
    assert schedule.solver.extra_constraints == [f"{EXAMPLES}:cpu_devices_at_most_2"]
    for period in schedule.periods:
        assert _fleet(period.plan)["xeon-6980p"][1] <= 2
        assert period.plan.solver.extra_constraints == [f"{EXAMPLES}:cpu_devices_at_most_2"]


def test_checker_notes_rows_the_plan_was_solved_without(tmp_path: Path) -> None:
    plan = solve_scenario(load_scenario(SMALL), baselines=False).plan
    assert plan is not None and plan.solver.extra_constraints == []
    assert check_notes(load_scenario(SMALL), plan) == []
    hooked = load_scenario(_scenario(tmp_path, f"{EXAMPLES}:no_renting"))
    assert check_plan(hooked, plan) == []  # the unconstrained plan rents nothing: valid, and the note says why
    assert check_notes(hooked, plan) == [
        f"the scenario names extra_constraints ({EXAMPLES}:no_renting) but the plan records none: it was solved "
        "without them, and they are not checked here"
    ]


RULES = """\
def boom(model, f):
    raise RuntimeError("kaboom")


def objective(model, f):
    model.objective = {}


def unknown_variable(model, f):
    model.add_row("user:x", {len(model.vars) + 5: 1.0}, "<=", 0.0)


not_a_function = 3
"""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch_pkg.rules:f", "cannot import 'nosuch_pkg.rules:f': ModuleNotFoundError"),
        (f"{EXAMPLES}:nothere", f"'{EXAMPLES}' has no function 'nothere'"),
        ("missing.py:f", "cannot import 'missing.py:f': FileNotFoundError: file not found"),
        ("rules.py:not_a_function", "'rules.py' has a non-callable 'not_a_function'"),
        ("rules.py:boom", "'rules.py:boom' failed: RuntimeError: kaboom"),
        ("rules.py:objective", "'rules.py:objective' changed the objective"),
        ("rules.py:unknown_variable", "added row 'user:x' with unknown variable index"),
    ],
)
def test_bad_hooks_are_input_errors_naming_file_and_field(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "rules.py").write_text(RULES)
    path = _scenario(tmp_path, [f"{EXAMPLES}:no_renting", spec])
    with pytest.raises(InputError) as exc:
        solve_scenario(load_scenario(path), baselines=False)
    assert exc.value.source == str(path)
    assert [p.field_path for p in exc.value.problems] == ["extra_constraints[1]"]
    assert message in exc.value.problems[0].message
    result = runner.invoke(app, ["solve", str(path), "--no-baselines"])
    assert result.exit_code == 2
    assert f"{path}: extra_constraints[1]: " in result.output


def test_spec_syntax_is_checked_when_the_scenario_loads(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_scenario(_scenario(tmp_path, ["ok.rules:f", "no colon here"]))
    assert [(p.field_path, p.message) for p in exc.value.problems] == [
        (
            "extra_constraints[1]",
            "'no colon here' is not 'module:function' (e.g. 'mypkg.rules:no_rent') or 'file.py:function'",
        )
    ]
