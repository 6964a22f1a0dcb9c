"""Shared fixtures: the bundled catalog and helpers to write YAML inputs into a temp dir."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from hetplace.catalogs.loader import Catalog, bundled_dir, load_catalog
from hetplace.common.errors import InputError
from hetplace.common.io import parse_model
from hetplace.problems.loader import ResolvedScenario, bundled_problems_dir, load_scenario

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_case(case: dict[str, Any]) -> ResolvedScenario:
    """A generated {"workflow", "scenario"} pair (property tests) written to a temp dir and loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        write_yaml(Path(tmp) / "w.yaml", case["workflow"])
        return load_scenario(write_yaml(Path(tmp) / "s.yaml", case["scenario"]))


@pytest.fixture
def h100() -> dict[str, Any]:
    """A fresh, valid device mapping to break in tests."""
    return copy.deepcopy(read_yaml(bundled_dir("devices") / "h100-sxm.yaml"))


@pytest.fixture
def llama8b() -> dict[str, Any]:
    return copy.deepcopy(read_yaml(bundled_dir("models") / "llama-3.1-8b.yaml"))


@pytest.fixture
def tiny_workflow() -> dict[str, Any]:
    """A minimal valid workflow: llm -> (tool, retrieval) -> llm, using bundled model ids."""
    return {
        "id": "tiny",
        "name": "Tiny",
        "description": "test workflow",
        "arrival_rate_rps": 2.0,
        "sla": {"e2e_latency_s": 10.0},
        "steps": [
            {"id": "plan", "kind": "llm", "model": "llama-3.1-8b", "prompt_tokens": 500, "output_tokens": 100},
            {"id": "run", "kind": "tool", "tool": "shell", "latency_s": 1.5, "cpu_s": 0.5, "after": ["plan"]},
            {"id": "look", "kind": "retrieval", "corpus_vectors": 1000000, "dim": 1024, "top_k": 10, "after": ["plan"]},
            {
                "id": "answer",
                "kind": "llm",
                "model": "llama-3.1-8b",
                "prompt_tokens": 900,
                "cached_prefix_tokens": 500,
                "output_tokens": 200,
                "after": ["run", "look"],
            },
        ],
    }


@pytest.fixture
def tiny_scenario(tmp_path: Path, tiny_workflow: dict[str, Any]) -> dict[str, Any]:
    """A valid scenario dict referring to `tiny.yaml` written beside it in tmp_path."""
    write_yaml(tmp_path / "tiny.yaml", tiny_workflow)
    return {
        "id": "tiny-scenario",
        "name": "Tiny scenario",
        "workflows": [{"path": "tiny.yaml"}],
        "hardware": {
            "owned": [{"device": "h100-sxm", "count": 8}],
            "purchasable": [{"device": "h100-sxm", "max_count": 16}],
        },
    }


def schema_problems(model_cls: type, data: dict[str, Any], source: str) -> list[tuple[str, str]]:
    """(field path, message) of every problem `data` has against `model_cls`; fails if it is valid."""
    with pytest.raises(InputError) as exc:
        parse_model(model_cls, data, source)
    assert exc.value.source == source
    return [(p.field_path, p.message) for p in exc.value.problems]


def bundled_yaml_files() -> list[Path]:
    root = bundled_problems_dir()
    files = sorted((root / "workflows").glob("*.yaml")) + sorted((root / "scenarios").glob("*.yaml"))
    for kind in ("devices", "models", "calibrations"):
        files += sorted(bundled_dir(kind).glob("*.yaml"))
    return files
