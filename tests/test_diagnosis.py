"""Diagnosis of running out of devices (issue 15, item 11): the device types whose availability binds and how many
more devices it takes, checked against independent re-solves of the scenario with that many more; and a purchasable
device whose max_count is below one node is named (it can never be bought)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hetplace.common.enums import SolverStatus
from hetplace.optimizer.availability import fewest_extra_devices, node_limited_purchases
from hetplace.optimizer.solve import formulate, solve_model, solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from tests.conftest import FIXTURES, SMALL, read_yaml, write_yaml


def _scarce(tmp_path: Path, l4: int = 2, a10g: int = 2, xeon: int = 4, h100: int | None = None) -> Path:
    """The small agent workflow at 40 req/s on 2 owned L4s, 2 rentable A10Gs and 4 Xeon sockets to buy."""
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL)
    data["workflows"] = [{"path": "small-agent-workflow.yaml", "arrival_rate_rps": 40}]
    purchasable: list[dict[str, Any]] = [{"device": "xeon-6980p", "max_count": xeon}]
    if h100 is not None:
        purchasable.append({"device": "h100-sxm", "max_count": h100})
    data["hardware"] = {
        "owned": [{"device": "l4", "count": l4}],
        "purchasable": purchasable,
        "rentable": [{"device": "a10g", "max_count": a10g}],
    }
    name = f"scarce-{l4}-{a10g}-{xeon}-{h100}.yaml"
    return write_yaml(tmp_path / name, data)


def _feasible(resolved: ResolvedScenario) -> bool:
    f = formulate(resolved)
    if any(not p.configs for p in f.pools):
        return False
    return solve_model(resolved, f, "highs", None, 1e-4, 1).values is not None


def test_running_out_of_devices_names_the_types_and_the_count(tmp_path: Path) -> None:
    outcome = solve_scenario(load_scenario(_scarce(tmp_path)), baselines=False)
    assert outcome.status == SolverStatus.infeasible
    first = outcome.diagnosis[0]
    assert "no single cause" not in " ".join(outcome.diagnosis)
    assert first.startswith("availability binds: at least ")
    extras = fewest_extra_devices(load_scenario(_scarce(tmp_path)))
    assert extras.status == SolverStatus.optimal
    short = {s.device: s.extra for s in extras.binding if s.extra}
    assert short and set(short) <= {"l4", "a10g", "xeon-6980p"}
    for device, n in short.items():
        assert f"{n} more {device}" in first
    assert f"at least {extras.total} more devices are needed" in first


def test_the_reported_extras_are_enough_and_the_fewest(tmp_path: Path) -> None:
    """Independent re-solves of the scenario itself: with the extras the diagnosis names (as more availability,
    purchases in whole nodes), it is feasible; with one device fewer of any one type it is not."""
    extras = fewest_extra_devices(load_scenario(_scarce(tmp_path)))
    base = {"l4": 2, "a10g": 2, "xeon": 4}
    more = {s.device: s.extra for s in extras.binding}
    counts = {
        "l4": base["l4"] + more.get("l4", 0),
        "a10g": base["a10g"] + more.get("a10g", 0),
        "xeon": base["xeon"] + more.get("xeon-6980p", 0),
    }
    assert counts["xeon"] % 2 == 0  # whole dual-socket nodes, so the count can be offered as it is
    assert _feasible(load_scenario(_scarce(tmp_path, **counts)))
    for key, device in (("l4", "l4"), ("a10g", "a10g"), ("xeon", "xeon-6980p")):
        if more.get(device, 0) == 0:
            continue
        fewer = dict(counts)
        fewer[key] -= 1
        assert not _feasible(load_scenario(_scarce(tmp_path, **fewer))), key


def test_a_purchase_limit_below_one_node_is_named(tmp_path: Path) -> None:
    resolved = load_scenario(_scarce(tmp_path, h100=4))
    line = (
        "h100-sxm: hardware.purchasable[1].max_count 4 is below one node of 8 devices and purchases come in whole "
        "nodes, so none can be bought (allow 8, or rent it)"
    )
    assert node_limited_purchases(resolved) == [line]
    outcome = solve_scenario(resolved, baselines=False)
    assert outcome.status == SolverStatus.infeasible
    assert line in outcome.diagnosis
    assert any(s.device == "h100-sxm" and s.available == 0 for s in fewest_extra_devices(resolved).binding)


@pytest.mark.parametrize(("max_count", "expected"), [(8, []), (16, []), (12, ["only 8 can be bought"])])
def test_purchase_limits_in_whole_nodes(tmp_path: Path, max_count: int, expected: list[str]) -> None:
    lines = node_limited_purchases(load_scenario(_scarce(tmp_path, h100=max_count)))
    assert [e for e in expected if any(e in line for line in lines)] == expected
    assert len(lines) == len(expected)


def test_an_sla_cause_is_not_reported_as_availability(tmp_path: Path) -> None:
    """More devices cannot make an SLA below the fastest possible critical path: that stays the cause."""
    data = read_yaml(_scarce(tmp_path))
    data["workflows"][0]["e2e_latency_s"] = 0.5
    outcome = solve_scenario(load_scenario(write_yaml(tmp_path / "fast.yaml", data)), baselines=False)
    assert outcome.status == SolverStatus.infeasible
    assert outcome.diagnosis[0].startswith("workflow small-agent: fastest possible critical path")
    assert not any(c.startswith("availability binds") for c in outcome.diagnosis)
