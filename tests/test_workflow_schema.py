"""Workflow structure rules (schema + DAG) and catalog references, each broken by a hand-written input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hetplace.common.errors import InputError
from hetplace.common.io import parse_model
from hetplace.problems.loader import load_workflow
from hetplace.problems.schema import Workflow, find_cycle
from tests.conftest import schema_problems, write_yaml


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return schema_problems(Workflow, data, "wf.yaml")


def test_valid_workflow_parses(tiny_workflow: dict[str, Any]) -> None:
    wf = parse_model(Workflow, tiny_workflow, "wf.yaml")
    assert [s.kind for s in wf.steps] == ["llm", "tool", "retrieval", "llm"]
    assert wf.step("answer").after == ["run", "look"]


def _step(wf: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in wf["steps"] if s["id"] == step_id)


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda w: _step(w, "answer")["after"].append("ghost"), "steps[3].after[2]", "unknown step 'ghost'"),
        (lambda w: _step(w, "plan").update(after=["answer"]), "steps", "cycle"),
        (lambda w: _step(w, "run").update(after=["run"]), "steps[1].after[0]", "cannot come after itself"),
        (lambda w: _step(w, "look").update(id="run"), "steps[2].id", "duplicate step id 'run'"),
        (lambda w: w.update(arrival_rate_rps=0), "arrival_rate_rps", "greater than 0"),
        (lambda w: w.update(arrival_rate_rps=-1.5), "arrival_rate_rps", "greater than 0"),
        (lambda w: w["sla"].update(e2e_latency_s=0), "sla.e2e_latency_s", "greater than 0"),
        (lambda w: w["sla"].update(e2e_latency_s=-3), "sla.e2e_latency_s", "greater than 0"),
        (lambda w: w.update(steps=[]), "steps", "at least 1 item"),
        (lambda w: _step(w, "plan").update(kind="think"), "steps[0]", "does not match any of the expected tags"),
        (lambda w: _step(w, "plan").pop("output_tokens"), "steps[0].output_tokens", "Field required"),
        (
            lambda w: _step(w, "answer").update(cached_prefix_tokens=900),
            "steps[3].cached_prefix_tokens",
            "must be < prompt_tokens 900",
        ),
        (lambda w: _step(w, "plan").update(repeat=0), "steps[0].repeat", "greater than 0"),
        (lambda w: _step(w, "run").update(latency_s=0), "steps[1].latency_s", "greater than 0"),
        (lambda w: _step(w, "run").update(cpu_s=0), "steps[1].cpu_s", "greater than 0"),
        (lambda w: _step(w, "look").update(top_k=2_000_000), "steps[2].top_k", "exceeds corpus_vectors"),
        (lambda w: _step(w, "look").update(index="lsh"), "steps[2].index", "Input should be"),
        (lambda w: _step(w, "plan").update(tokens=5), "steps[0].tokens", "Extra inputs are not permitted"),
    ],
)
def test_workflow_rule_violations(tiny_workflow: dict[str, Any], mutate, field: str, fragment: str) -> None:
    mutate(tiny_workflow)
    found = problems_of(tiny_workflow)
    assert any(path == field and fragment in msg for path, msg in found), found


def test_cycle_message_names_the_loop(tiny_workflow: dict[str, Any]) -> None:
    _step(tiny_workflow, "plan")["after"] = ["answer"]
    ((_path, msg),) = problems_of(tiny_workflow)
    assert "plan -> " in msg and "answer" in msg and "use 'repeat' for agent loops" in msg


def test_find_cycle_on_hand_built_graphs() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    cycle = find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda w: _step(w, "plan").update(model="gpt-7"), "steps[0].model", "unknown model 'gpt-7'"),
        (lambda w: _step(w, "plan").update(model="bge-large-en-v1.5"), "steps[0].model", "needs a decoder model"),
        (lambda w: _step(w, "plan").update(prompt_tokens=200_000), "steps[0]", "max_context_tokens 131072"),
        (
            lambda w: _step(w, "answer").update(repeat=30, prompt_growth_tokens_per_repeat=5000),
            "steps[3]",
            "context reaches 146100 tokens",
        ),
    ],
)
def test_workflow_reference_violations(
    tmp_path: Path, tiny_workflow: dict[str, Any], mutate, field: str, fragment: str
) -> None:
    mutate(tiny_workflow)
    path = write_yaml(tmp_path / "wf.yaml", tiny_workflow)
    with pytest.raises(InputError) as exc:
        load_workflow(path)
    assert exc.value.source == str(path)
    found = [(p.field_path, p.message) for p in exc.value.problems]
    assert any(p == field and fragment in m for p, m in found), found
