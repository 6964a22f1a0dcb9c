"""Owned devices that are not sunk need a price to amortise: without one in the catalog the scenario is an input
error at `hardware.owned[i].sunk` (exit 2 in validate and solve), never a crash in the cost model (issue 15,
item 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.problems.loader import load_scenario
from tests.conftest import FIXTURES, SMALL, read_yaml, write_yaml

runner = CliRunner()


def _small_with_owned(tmp_path: Path, owned: list[dict]) -> Path:
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(SMALL)
    data["hardware"]["owned"] = owned
    return write_yaml(tmp_path / "scenario.yaml", data)


@pytest.mark.parametrize("command", ["validate", "solve"])
def test_owned_not_sunk_without_a_catalog_price_is_exit_2(tmp_path: Path, command: str) -> None:
    # l4 has no capex_usd in the catalog (catalogs/devices/l4.yaml).
    scenario = _small_with_owned(tmp_path, [{"device": "l4", "count": 4, "sunk": False}])
    args = [command, str(scenario)] + (["--no-baselines"] if command == "solve" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "hardware.owned[0].sunk" in result.stderr and "'l4'" in result.stderr
    assert "Traceback" not in result.output


def test_owned_not_sunk_with_a_catalog_price_loads(tmp_path: Path) -> None:
    # h100-sxm has a catalog price: not sunk is fine (its capex is amortised like a purchase).
    scenario = _small_with_owned(
        tmp_path, [{"device": "l4", "count": 4}, {"device": "h100-sxm", "count": 8, "sunk": False}]
    )
    assert load_scenario(scenario).scenario.hardware.owned[1].sunk is False


def test_only_the_unpriced_entry_is_named(tmp_path: Path) -> None:
    scenario = _small_with_owned(
        tmp_path, [{"device": "h100-sxm", "count": 8, "sunk": False}, {"device": "t4", "count": 2, "sunk": False}]
    )
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    assert [p.field_path for p in err.value.problems] == ["hardware.owned[1].sunk"]
