"""The CLI through typer's CliRunner: outputs, JSON shapes and exit codes (0 ok, 2 invalid input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.loader import bundled_dir
from hetplace.cli import app
from hetplace.problems.loader import bundled_problems_dir, default_scenario_path
from tests.conftest import FIXTURES, bundled_yaml_files, write_yaml

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("hetplace ")


def test_catalog_list_devices_json_shape() -> None:
    result = run("catalog", "list", "devices", "--json")
    assert result.exit_code == 0, result.output
    devices = json.loads(result.stdout)
    assert len(devices) >= 16
    assert len({d["tier"] for d in devices}) >= 3
    for d in devices:
        for key in ("id", "kind", "mem_gb", "mem_bw_gbs", "peak_tflops", "tdp_w", "capex_usd", "sources"):
            assert key in d, (d["id"], key)
        assert d["sources"] and d["sources"][0]["url"].startswith("http")
    h100 = next(d for d in devices if d["id"] == "h100-sxm")
    assert h100["peak_tflops"]["bf16"] == 989.5 and h100["mem_gb"] == 80


def test_catalog_list_tables() -> None:
    devices = run("catalog", "list", "devices")
    assert devices.exit_code == 0 and "h100-sxm" in devices.stdout and "older_gpu" in devices.stdout
    models = run("catalog", "list", "models")
    assert models.exit_code == 0 and "deepseek-v3" in models.stdout and "mla" in models.stdout


def test_catalog_list_rejects_unknown_kind() -> None:
    result = run("catalog", "list", "gpus")
    assert result.exit_code == 2


def test_catalog_show_device_and_model() -> None:
    dev = run("catalog", "show", "h100-sxm", "--json")
    assert dev.exit_code == 0 and json.loads(dev.stdout)["mem_bw_gbs"] == 3350
    model = run("catalog", "show", "llama-3.1-8b")
    assert model.exit_code == 0 and "num_kv_heads: 8" in model.stdout


def test_catalog_show_unknown_id_suggests() -> None:
    result = run("catalog", "show", "h100-sx")
    assert result.exit_code == 2
    assert "no device or model 'h100-sx'" in result.stderr and "h100-sxm" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("path", bundled_yaml_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_validate_accepts_every_bundled_file(path: Path) -> None:
    result = run("validate", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True


def test_validate_detects_each_kind(
    tmp_path: Path,
    tiny_scenario: dict[str, Any],
    tiny_workflow: dict[str, Any],
    h100: dict[str, Any],
    llama8b: dict[str, Any],
) -> None:
    files = {
        "scenario": write_yaml(tmp_path / "s.yaml", tiny_scenario),
        "workflow": write_yaml(tmp_path / "w.yaml", tiny_workflow),
        "device": write_yaml(tmp_path / "d.yaml", h100),
        "model": write_yaml(tmp_path / "m.yaml", llama8b),
    }
    for kind, path in files.items():
        result = run("validate", str(path), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["kind"] == kind


BAD_FILES = {
    "syntax.yaml": (b"id: x\nsteps: [\n", "YAML syntax error at line 3"),
    "empty.yaml": (b"", "file is empty"),
    "garbage.yaml": (bytes(range(256)), "binary data"),
    "list.yaml": (b"- a\n- b\n", "top level must be a mapping"),
    "unknown.yaml": (b"colour: blue\n", "cannot tell which kind of document"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_validate_rejects_malformed_files(tmp_path: Path, name: str) -> None:
    content, fragment = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert str(path) in result.stderr and fragment in result.stderr
    assert "Traceback" not in result.output


def test_validate_missing_file_and_directory(tmp_path: Path) -> None:
    for target, fragment in ((tmp_path / "none.yaml", "file not found"), (tmp_path, "is a directory")):
        result = run("validate", str(target))
        assert result.exit_code == 2 and fragment in result.stderr and "Traceback" not in result.output


def test_validate_names_field_path_of_bad_workflow(tmp_path: Path, tiny_workflow: dict[str, Any]) -> None:
    tiny_workflow["arrival_rate_rps"] = 0
    tiny_workflow["sla"]["e2e_latency_s"] = -2
    path = write_yaml(tmp_path / "wf.yaml", tiny_workflow)
    result = run("validate", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {path}: 2 problems"
    assert "  - arrival_rate_rps: Input should be greater than 0" in lines
    assert "  - sla.e2e_latency_s: Input should be greater than 0" in lines


def test_validate_names_field_path_of_bad_scenario(tmp_path: Path, tiny_scenario: dict[str, Any]) -> None:
    tiny_scenario["hardware"]["owned"][0]["device"] = "h900"
    path = write_yaml(tmp_path / "s.yaml", tiny_scenario)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert f"{path}: hardware.owned[0].device: unknown device 'h900'" in " ".join(result.stderr.split())


def test_validate_forced_kind(tmp_path: Path, h100: dict[str, Any]) -> None:
    path = write_yaml(tmp_path / "d.yaml", h100)
    result = run("validate", str(path), "--kind", "model")
    assert result.exit_code == 2 and "num_layers" in result.stderr


# kind: (fields a document must have, optional fields that have defaults, a real document of that kind)
SCHEMA_CASES: dict[str, tuple[set[str], set[str], Path | None]] = {
    "device": (
        {"id", "mem_gb", "mem_bw_gbs", "peak_tflops", "tdp_w", "sources"},
        {"capex_usd"},
        bundled_dir("devices") / "h100-sxm.yaml",
    ),
    "model": (
        {"id", "num_layers", "hidden_size", "num_heads", "vocab_size", "sources"},
        {"moe"},
        bundled_dir("models") / "llama-3.1-8b.yaml",
    ),
    "workflow": ({"id", "arrival_rate_rps", "sla", "steps"}, set(), bundled_problems_dir() / "workflows" / "chat.yaml"),
    "scenario": ({"id", "workflows", "hardware"}, {"economics", "limits"}, default_scenario_path()),
    "plan": ({"scenario", "fleet", "pools", "tco", "solver"}, {"baselines"}, None),  # the small scenario's plan
    "calibration": ({"devices"}, set(), bundled_dir("calibrations") / "vidur-gemm-fp16.yaml"),
    "engine": ({"id", "name", "family", "sources"}, {"serving_defaults"}, bundled_dir("engines") / "vllm.yaml"),
}


@pytest.mark.parametrize("kind", sorted(SCHEMA_CASES))
def test_schema_prints_json_schema(kind: str, small_plans) -> None:
    result = run("schema", kind)
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["$schema"].startswith("https://json-schema.org/")
    required, defaulted, example_file = SCHEMA_CASES[kind]
    assert required <= set(schema["required"]), set(schema["required"])
    assert not defaulted & set(schema["required"])
    # a real document's keys are all in the schema (with additionalProperties false it would be rejected otherwise)
    plan = small_plans["highs"].plan
    example = yaml.safe_load(example_file.read_text()) if example_file else plan.model_dump(mode="json")
    assert example and set(example) <= set(schema["properties"]), set(example) - set(schema["properties"])


def test_import_hf_writes_valid_yaml_atomically(tmp_path: Path) -> None:
    out = tmp_path / "llama.yaml"
    result = run(
        "catalog",
        "import-hf",
        str(FIXTURES / "hf" / "llama-3.1-8b.config.json"),
        "--hf-repo",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--id",
        "my-llama",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    check = run("validate", str(out), "--json")
    assert check.exit_code == 0 and json.loads(check.stdout)["id"] == "my-llama"


def test_import_hf_bad_input_exits_2_without_output(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 4096')
    out = tmp_path / "out.yaml"
    result = run("catalog", "import-hf", str(bad), "--out", str(out))
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    assert not out.exists()
    bad.write_text(json.dumps({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32}))
    result = run("catalog", "import-hf", str(bad), "--hf-repo", "x/y", "--out", str(out))
    assert result.exit_code == 2 and "num_hidden_layers" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_validate_detects_an_engine_file() -> None:
    result = run("validate", str(bundled_dir("engines") / "sglang.yaml"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "engine" and json.loads(result.stdout)["id"] == "sglang"
