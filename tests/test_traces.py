"""`hetplace workflow from-trace`: the three trace formats on synthetic fixtures in the real schemas
(tests/fixtures/traces/README.md), the workflow and arrival file they become, bad rows, and a trace-derived
workflow solved and simulated end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.loader import Catalog
from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import load_scenario
from hetplace.problems.schema import LlmStep, ToolStep, Workflow
from hetplace.simulate.agent_traces import copilot_workflow, read_sessions
from hetplace.simulate.arrivals import ArrivalSpec, read_arrival_file
from hetplace.simulate.run import SimOptions, simulate_plan
from hetplace.simulate.traces import read_trace, trace_workflow
from tests.conftest import FIXTURES, present, write_yaml

TRACES = FIXTURES / "traces"
runner = CliRunner()


def test_azure_llm_times_and_tokens() -> None:
    tr = read_trace(TRACES / "azure-llm.csv", "azure-llm")
    assert len(tr) == 200 and tr.skipped == 0
    # rows 1-2: 18:15:46.1950370 and 18:15:46.8405890 → 0.645552 s apart; tokens as written
    assert tr.time_s[0] == 0.0
    assert tr.time_s[1] == pytest.approx(0.645552, abs=1e-6)
    assert (int(tr.prompt_tokens[0]), int(tr.output_tokens[0])) == (2967, 22)
    # last row 18:17:27.2816900: 101.086653 s after the first
    assert tr.time_s[-1] == pytest.approx(101.086653, abs=1e-5)
    assert not tr.cached_tokens.any()  # the Azure trace has no prefix information


def test_burstgpt_skips_failed_requests() -> None:
    tr = read_trace(TRACES / "burstgpt.csv", "burstgpt")
    assert tr.skipped == 8  # rows with 0 response tokens (every 25th from the 8th)
    assert len(tr) == 192
    assert (int(tr.prompt_tokens[0]), int(tr.output_tokens[0])) == (1111, 182)
    assert tr.time_s[1] == pytest.approx(0.110 - 0.106)


def test_mooncake_cached_prefix_from_hash_blocks() -> None:
    tr = read_trace(TRACES / "mooncake.jsonl", "mooncake")
    assert len(tr) == 150
    assert tr.time_s[1] == pytest.approx((1348 - 764) / 1000)  # ms → s
    # row 5 repeats row 2's four blocks: 4 × 512 cached of 3,264; row 9 repeats row 5's seven: 3,584 of 5,304;
    # row 8 repeats row 1's three: 1,536; rows of new blocks only: 0
    assert [int(x) for x in tr.cached_tokens[[0, 1, 4, 7, 8]]] == [0, 0, 2048, 1536, 3584]
    assert int(tr.prompt_tokens[8]) == 5304


def test_workflow_states_means_and_arrival_file_keeps_every_request(tmp_path: Path, catalog: Catalog) -> None:
    tr = read_trace(TRACES / "mooncake.jsonl", "mooncake")
    built = trace_workflow(tr, "mooncake", "mooncake.jsonl", "llama-3.1-8b", 20.0, catalog)
    wf = Workflow.model_validate(built.workflow)
    step = wf.steps[0]
    assert isinstance(step, LlmStep)
    assert wf.arrival_rate_rps == pytest.approx(149 / tr.time_s[-1])
    assert step.prompt_tokens == round(tr.prompt_tokens.mean())
    assert step.output_tokens == round(tr.output_tokens.mean())
    assert step.cached_prefix_tokens == round(tr.cached_tokens.mean())
    assert "cached-prefix share" in wf.description and wf.sla.e2e_latency_s == 20.0
    path = tmp_path / "arr.csv"
    path.write_text(built.arrivals_csv)
    arr = read_arrival_file(path, [wf.id], None)
    assert len(arr) == 150
    np.testing.assert_allclose(arr.time_s, tr.time_s, atol=1e-6)
    assert list(arr.prompt_tokens) == list(tr.prompt_tokens)
    assert list(arr.cached_tokens) == list(tr.cached_tokens)


def test_unknown_model_is_an_input_error(catalog: Catalog) -> None:
    tr = read_trace(TRACES / "azure-llm.csv", "azure-llm")
    with pytest.raises(InputError, match="unknown model 'gpt-9'"):
        trace_workflow(tr, "azure-llm", "azure-llm.csv", "gpt-9", 20.0, catalog)


def test_cli_writes_workflow_and_arrivals(tmp_path: Path) -> None:
    wf_out, arr_out = tmp_path / "wf.yaml", tmp_path / "arr.csv"
    args = ["workflow", "from-trace", str(TRACES / "burstgpt.csv"), "--format", "burstgpt"]
    res = runner.invoke(app, [*args, "--out", str(wf_out), "--arrivals-out", str(arr_out), "--id", "burst"])
    assert res.exit_code == 0, res.output
    wf = Workflow.model_validate(yaml.safe_load(wf_out.read_text()))
    assert wf.id == "burst"
    assert arr_out.read_text().splitlines()[0] == "time_s,workflow,prompt_tokens,output_tokens,cached_tokens"
    assert len(arr_out.read_text().splitlines()) == 193
    printed = runner.invoke(app, args)  # no --out: the YAML goes to stdout
    assert printed.exit_code == 0 and "kind: llm" in printed.stdout


@pytest.mark.parametrize(
    ("fmt", "body", "where"),
    [
        (
            "azure-llm",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,12,x\n",
            "line 2.GeneratedTokens",
        ),
        ("azure-llm", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,12,3\n", "line 2.TIMESTAMP"),
        ("azure-llm", "time,ContextTokens\n1,2\n", "line 1"),
        ("burstgpt", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,m,5\n", "line 2"),
        ("mooncake", '{"timestamp": 1, "input_length": 5}\n', "line 1.output_length"),
        ("mooncake", "{not json\n", "line 1"),
    ],
)
def test_bad_trace_rows_exit_2_without_output(tmp_path: Path, fmt: str, body: str, where: str) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text(body)
    out = tmp_path / "wf.yaml"
    res = runner.invoke(app, ["workflow", "from-trace", str(trace), "--format", fmt, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert where in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_unknown_format_exit_2() -> None:
    res = runner.invoke(app, ["workflow", "from-trace", str(TRACES / "azure-llm.csv"), "--format", "sharegpt"])
    assert res.exit_code == 2


def test_trace_workflow_solved_and_simulated_end_to_end(tmp_path: Path) -> None:
    """Azure trace → workflow + arrivals → a scenario → solve (HiGHS) → check → simulate with the trace's own
    arrivals and token counts."""
    wf_out, arr_out = tmp_path / "azure.yaml", tmp_path / "arrivals.csv"
    res = runner.invoke(
        app,
        [
            "workflow", "from-trace", str(TRACES / "azure-llm.csv"), "--format", "azure-llm", "--sla", "20",
            "--id", "azure-code", "--out", str(wf_out), "--arrivals-out", str(arr_out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    scenario = write_yaml(
        tmp_path / "scenario.yaml",
        {
            "id": "trace-scenario",
            "name": "trace",
            "workflows": [{"path": "azure.yaml"}],
            "hardware": {
                "owned": [{"device": "l4", "count": 4}],
                "purchasable": [{"device": "h100-sxm", "max_count": 8}],
            },
        },
    )
    resolved = load_scenario(scenario)
    outcome = solve_scenario(resolved, "highs", baselines=False)
    plan = present(outcome.plan)
    assert check_plan(resolved, plan) == []
    assert plan.workflows[0].critical_path_s <= 20.0
    sim = simulate_plan(resolved, plan, SimOptions(3600.0, 0, ArrivalSpec("trace", path=arr_out)))
    assert sim.conservation.arrived == 200
    assert sim.workflows[0].unfinished == 0
    assert sim.workflows[0].attainment > 0.9
    # the trace's own prompts: p99 TTFT above p50 (lognormal context lengths), TPOT at the plan's decode speed
    llm = sim.steps[0]
    assert llm.ttft_p99_s > 2 * llm.ttft_p50_s


# ---- copilot-agent sessions -----------------------------------------------------------------------------------


def _call(ts: str, who: str, prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "timestamp": ts,
        "duration_ms": 900.0,
        "initiator_type": who,
        "tokens": {"prompt": prompt, "completion": completion, "cached": cached, "total": prompt + completion},
    }


def _batch(ms: float, calls: int = 1) -> dict[str, Any]:
    fcs = [{"name": "run_in_terminal", "status": 1, "duration_ms": ms}] * calls
    return {"timestamp": "2026-06-01T10:00:01Z", "duration_ms": ms, "function_calls": fcs}


SESSIONS = [
    {
        "session_id": "a",
        "turns": [
            {
                "llm_calls": [
                    _call("2026-06-01T10:00:00Z", "user", 1000, 50, 0),
                    _call("2026-06-01T10:00:05Z", "agent", 1200, 40, 1000),
                    _call("2026-06-01T10:00:09Z", "agent", 1500, 60, 1200),
                ],
                "tool_batches": [_batch(2000), _batch(4000, 2), {"duration_ms": 9000, "function_calls": []}],
            },
            {"llm_calls": [_call("2026-06-01T10:03:20Z", "user", 2000, 10, 1500)], "tool_batches": []},
        ],
    },
    {
        "session_id": "b",
        "turns": [
            {
                "llm_calls": [
                    _call("2026-06-01T10:01:40Z", "user", 3000, 100, 2000),
                    _call("2026-06-01T10:01:45Z", "agent", 3300, 20, 3000),
                ],
                "tool_batches": [_batch(3000)],
            }
        ],
    },
]


def test_copilot_sessions_become_an_agent_loop(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "sessions.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in SESSIONS) + "\n")
    turns = read_sessions(path)
    assert [len(t.agent) for t in turns] == [2, 1, 0]  # by start time: a/1 at 0 s, b/1 at 100 s, a/2 at 200 s
    built = copilot_workflow(turns, str(path), "llama-3.1-8b", 120.0, catalog, "agent")
    wf = Workflow.model_validate(built.workflow)
    assert wf.arrival_rate_rps == pytest.approx(2 / 200)
    first, tools, agent = wf.steps
    assert isinstance(first, LlmStep) and isinstance(tools, ToolStep) and isinstance(agent, LlmStep)
    # user calls: prompts 1000/3000/2000, cached 0/2000/1500, outputs 50/100/10
    assert (first.prompt_tokens, first.cached_prefix_tokens, first.output_tokens) == (2000, 1167, 53)
    # one agent call per turn on average; tool batches with calls: 2, 4 and 3 s (the empty one is not a batch)
    assert tools.repeat == agent.repeat == 1
    assert tools.latency_s == pytest.approx(3.0) and tools.after == ["first_call"]
    # agent calls: first prompts 1200 and 3300 → 2250; uncached 200, 300, 300 → 267; growth (1500 − 1200)/1
    assert (agent.prompt_tokens, agent.cached_prefix_tokens, agent.output_tokens) == (2250, 2250 - 267, 40)
    assert agent.prompt_growth_tokens_per_repeat == 300
    assert "3 user turns of 2 sessions (1.50 turns per session)" in wf.description
    rows = built.arrivals_csv.splitlines()
    assert rows[1:] == ["0.000000,agent,1000,50,0", "100.000000,agent,3000,100,2000", "200.000000,agent,2000,10,1500"]


def test_copilot_fixture_and_bad_sessions(tmp_path: Path) -> None:
    turns = read_sessions(TRACES / "copilot-agent.jsonl")
    assert len(turns) == 30 and len({t.session for t in turns}) == 10
    assert all(t.first.prompt > 0 for t in turns)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"session_id": "x", "turns": [{"llm_calls": [{"timestamp": "noon", "tokens": {}}]}]}))
    res = runner.invoke(
        app, ["workflow", "from-trace", str(bad), "--format", "copilot-agent", "--out", str(tmp_path / "w")]
    )
    assert res.exit_code == 2 and "line 1.turns[0]" in res.output
    assert not (tmp_path / "w").exists()


def test_copilot_workflow_solved_and_simulated(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "workflow", "from-trace", str(TRACES / "copilot-agent.jsonl"), "--format", "copilot-agent",
            "--sla", "600", "--id", "copilot", "--out", str(tmp_path / "copilot.yaml"),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    scenario = write_yaml(
        tmp_path / "s.yaml",
        {
            "id": "copilot-scenario",
            "name": "copilot",
            "workflows": [{"path": "copilot.yaml", "arrival_rate_rps": 2}],
            "hardware": {
                "owned": [{"device": "l4", "count": 4}],
                "purchasable": [{"device": "h100-sxm", "max_count": 16}, {"device": "xeon-6980p", "max_count": 2}],
            },
        },
    )
    resolved = load_scenario(scenario)
    plan = present(solve_scenario(resolved, "highs", baselines=False).plan)
    assert check_plan(resolved, plan) == []
    sim = simulate_plan(resolved, plan, SimOptions(900.0, 0))
    wf = sim.workflows[0]
    assert wf.unfinished == 0 and wf.attainment == 1.0
    # the loop runs 6 tool batches of the fixture's mean wall time: the latency is at least that
    assert wf.p50_s > 6 * resolved.workflows[0].steps[1].latency_s  # type: ignore[union-attr]
