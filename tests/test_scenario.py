"""Scenario rules: schema, hardware references, workflow resolution and overrides, catalog extensions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hetplace.common.errors import InputError
from hetplace.problems.loader import default_scenario_path, load_scenario
from tests.conftest import write_yaml


def load_problems(tmp_path: Path, scenario: dict[str, Any]) -> list[tuple[str, str]]:
    path = write_yaml(tmp_path / "scenario.yaml", scenario)
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert exc.value.source == str(path)
    return [(p.field_path, p.message) for p in exc.value.problems]


def test_valid_scenario_resolves_workflow_file(tmp_path: Path, tiny_scenario: dict[str, Any]) -> None:
    resolved = load_scenario(write_yaml(tmp_path / "scenario.yaml", tiny_scenario))
    assert [w.id for w in resolved.workflows] == ["tiny"]
    assert resolved.workflows[0].arrival_rate_rps == 2.0
    # documented defaults
    assert resolved.scenario.limits.max_utilisation == 0.7
    assert resolved.scenario.economics.pue == 1.3
    assert resolved.scenario.hardware.owned[0].sunk is True


def test_overrides_replace_rate_and_sla_only(tmp_path: Path, tiny_scenario: dict[str, Any]) -> None:
    tiny_scenario["workflows"][0].update(arrival_rate_rps=7.5, e2e_latency_s=4.0)
    wf = load_scenario(write_yaml(tmp_path / "scenario.yaml", tiny_scenario)).workflows[0]
    assert (wf.arrival_rate_rps, wf.sla.e2e_latency_s, len(wf.steps)) == (7.5, 4.0, 4)


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (
            lambda s: s["hardware"]["owned"][0].update(device="h900"),
            "hardware.owned[0].device",
            "unknown device 'h900'",
        ),
        (
            lambda s: s["hardware"]["purchasable"].append({"device": "h100-sxm"}),
            "hardware.purchasable[1].device",
            "listed twice",
        ),
        (lambda s: s.update(hardware={}), "hardware", "no hardware"),
        (lambda s: s["hardware"]["owned"][0].update(count=0), "hardware.owned[0].count", "greater than 0"),
        (lambda s: s["workflows"][0].update(workflow="chat"), "workflows[0]", "exactly one of"),
        (lambda s: s["workflows"][0].update(path="missing.yaml"), "workflows[0].path", "workflow file not found"),
        (
            lambda s: s.update(workflows=[{"workflow": "no-such-flow"}]),
            "workflows[0].workflow",
            "unknown bundled workflow 'no-such-flow'",
        ),
        (lambda s: s.update(workflows=[]), "workflows", "at least 1 item"),
        (lambda s: s["workflows"].append({"path": "tiny.yaml"}), "workflows[1]", "already listed at workflows[0]"),
        (lambda s: s["workflows"][0].update(arrival_rate_rps=0), "workflows[0].arrival_rate_rps", "greater than 0"),
        (lambda s: s["workflows"][0].update(e2e_latency_s=-1), "workflows[0].e2e_latency_s", "greater than 0"),
        (lambda s: s.update(limits={"max_utilisation": 1.2}), "limits.max_utilisation", "less than or equal to 1"),
        (lambda s: s.update(limits={"power_cap_kw": 0}), "limits.power_cap_kw", "greater than 0"),
        (lambda s: s.update(economics={"pue": 0.9}), "economics.pue", "greater than or equal to 1"),
        (
            lambda s: s.update(economics={"energy_usd_per_kwh": -0.1}),
            "economics.energy_usd_per_kwh",
            "greater than or equal to 0",
        ),
        (lambda s: s.update(catalog={"devices": ["nope.yaml"]}), "catalog.devices[0]", "file not found"),
        (lambda s: s.update(budget=5), "budget", "Extra inputs are not permitted"),
    ],
)
def test_scenario_rule_violations(
    tmp_path: Path, tiny_scenario: dict[str, Any], mutate, field: str, fragment: str
) -> None:
    mutate(tiny_scenario)
    found = load_problems(tmp_path, tiny_scenario)
    assert any(path == field and fragment in msg for path, msg in found), found


def test_errors_inside_referenced_workflow_name_that_file(
    tmp_path: Path, tiny_scenario: dict[str, Any], tiny_workflow: dict[str, Any]
) -> None:
    tiny_workflow["steps"][0]["model"] = "gpt-7"
    wf_path = write_yaml(tmp_path / "tiny.yaml", tiny_workflow)
    with pytest.raises(InputError) as exc:
        load_scenario(write_yaml(tmp_path / "scenario.yaml", tiny_scenario))
    assert exc.value.source == str(wf_path.resolve())
    assert exc.value.problems[0].field_path == "steps[0].model"


def test_purchasable_device_without_price_needs_override(
    tmp_path: Path, tiny_scenario: dict[str, Any], h100: dict[str, Any]
) -> None:
    h100.update(id="mystery-chip", capex_usd=None, capex_basis=None, estimated_fields=[], cloud_usd_per_hour=None)
    write_yaml(tmp_path / "mystery.yaml", h100)
    tiny_scenario["catalog"] = {"devices": ["mystery.yaml"]}
    tiny_scenario["hardware"]["purchasable"] = [{"device": "mystery-chip"}]
    tiny_scenario["hardware"]["rentable"] = [{"device": "mystery-chip"}]
    found = load_problems(tmp_path, tiny_scenario)
    assert ("hardware.purchasable[0]", "'mystery-chip' has no catalog price; set capex_usd") in found
    assert ("hardware.rentable[0]", "'mystery-chip' has no catalog cloud price; set usd_per_hour") in found
    tiny_scenario["hardware"]["purchasable"][0]["capex_usd"] = 20000
    tiny_scenario["hardware"]["rentable"][0]["usd_per_hour"] = 2.0
    resolved = load_scenario(write_yaml(tmp_path / "scenario.yaml", tiny_scenario))
    assert "mystery-chip" in resolved.catalog.devices


def test_extension_cannot_redefine_a_bundled_id(
    tmp_path: Path, tiny_scenario: dict[str, Any], h100: dict[str, Any]
) -> None:
    write_yaml(tmp_path / "dup.yaml", h100)
    tiny_scenario["catalog"] = {"devices": ["dup.yaml"]}
    path = write_yaml(tmp_path / "scenario.yaml", tiny_scenario)
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert exc.value.source == str(tmp_path / "dup.yaml")
    assert "already defined" in exc.value.problems[0].message


def test_default_scenario_loads_all_bundled_workflows() -> None:
    resolved = load_scenario(default_scenario_path())
    ids = {w.id for w in resolved.workflows}
    assert {"chat", "coding-agent", "web-agent", "computer-use"} <= ids
    hw = resolved.scenario.hardware
    tiers = {resolved.catalog.device(o.device).tier.value for o in hw.owned}
    assert tiers == {"older_gpu"}, "the default scenario owns older GPUs"
    offered = {resolved.catalog.device(p.device).tier.value for p in hw.purchasable}
    assert {"new_accelerator", "cpu"} <= offered
