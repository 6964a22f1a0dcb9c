"""`hetplace simulate` on whole plans: conservation, load against the plan, a service-time lower bound computed
here from the cost models, determinism, arrivals, the CLI and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hetplace.catalogs.schema import Dtype
from hetplace.cli import app
from hetplace.costmodels.llm_perf import evaluate_menu
from hetplace.costmodels.nonllm import encoder_cost, retrieval_cost
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import Plan
from hetplace.problems.schema import EmbedStep, LlmStep, RetrievalStep, ToolStep, Workflow
from hetplace.simulate.arrivals import parse_arrival_spec, renewal_arrivals
from hetplace.simulate.engine import Engine
from hetplace.simulate.results import SimulationResult
from hetplace.simulate.run import SimOptions, simulate_plan
from hetplace.simulate.service import CORES, ConfigTable, PoolTable, ServiceModel, StepKey
from tests.conftest import SMALL, present, read_yaml, write_yaml

runner = CliRunner()


@pytest.fixture(scope="module")
def small_plan(small_resolved: ResolvedScenario) -> Plan:
    return present(solve_scenario(small_resolved, "highs", baselines=False, tiebreak=False).plan)  # co-located


@pytest.fixture(scope="module")
def runs(small_resolved: ResolvedScenario, small_plan: Plan) -> dict[int, SimulationResult]:
    return {seed: simulate_plan(small_resolved, small_plan, SimOptions(1200.0, seed)) for seed in (0, 1)}


def _plan_file(tmp_path: Path, plan: Plan) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


@pytest.mark.parametrize("seed", [0, 1])
def test_requests_are_conserved(runs: dict[int, SimulationResult], seed: int) -> None:
    c = runs[seed].conservation
    # 3 req/s for 1,200 s: about 3,600 arrivals (Poisson: ± 3·60)
    assert 3600 - 180 < c.arrived < 3600 + 180
    assert c.arrived == c.finished + c.in_flight
    assert 0 < c.in_flight < 50  # a request lives ~7 s: Little's law gives ~21 in flight
    wf = runs[seed].workflows[0]
    assert wf.unfinished == 0  # the drain lets every request finish


@pytest.mark.parametrize("seed", [0, 1])
def test_load_matches_the_plan(runs: dict[int, SimulationResult], seed: int) -> None:
    """Work served per second over the plan's capacity is the plan's utilisation (same arrival rates); on batch-1
    retrieval replicas and CPU cores the busy share equals it too (service is the same in both)."""
    pools = {p.pool: p for p in runs[seed].pools}
    for p in pools.values():
        assert p.plan_utilisation is not None
        assert p.load == pytest.approx(p.plan_utilisation, rel=0.06), p.pool
    for pid in ("retrieval:small-agent.search", "tool:cpu"):
        assert pools[pid].utilisation == pytest.approx(present(pools[pid].plan_utilisation), rel=0.06)
    assert pools["llama-3.1-8b:colocated"].load == pytest.approx(0.68, abs=0.04)


def _fastest_step_s(resolved: ResolvedScenario, plan: Plan) -> dict[str, float]:
    """Each step's least possible duration on the plan's configs (batch 1, lowest context, no queueing), from the
    cost models directly: a lower bound whatever the batching."""
    cat = resolved.catalog
    wf = resolved.workflows[0]
    out: dict[str, float] = {}
    for s in wf.steps:
        if isinstance(s, LlmStep):
            best = np.inf
            model = cat.model(s.model)
            for a in plan.pools:
                if a.model != s.model:
                    continue
                dev = cat.device(a.device)
                args = ([dev], [a.tensor_parallel], [1], [Dtype(present(a.weight_dtype))])
                pre = evaluate_menu(model, "prefill", *args, s.prompt_tokens, s.cached_prefix_tokens, 0).latency_s[0]
                dec = evaluate_menu(model, "decode", *args, 0, 0, s.prompt_tokens).latency_s[0]
                best = min(best, float(pre + dec * s.output_tokens))
            out[s.id] = best * s.repeat
        elif isinstance(s, ToolStep):
            out[s.id] = s.latency_s * s.repeat
        elif isinstance(s, EmbedStep):
            model = cat.model(s.model)
            devs = [cat.device(a.device) for a in plan.pools if a.model == s.model]
            out[s.id] = float(encoder_cost(model, devs, s.items, s.tokens_per_item).latency_s.min()) * s.repeat
        elif isinstance(s, RetrievalStep):
            devs = [cat.device(a.device) for a in plan.pools if a.step == s.id]
            cost = retrieval_cost(devs, s.corpus_vectors, s.dim, s.top_k, s.index, s.vector_dtype.value, s.queries)
            out[s.id] = float(cost.latency_s.min()) * s.repeat
    return out


def test_latency_is_at_least_the_service_time_critical_path(
    small_resolved: ResolvedScenario, small_plan: Plan, runs: dict[int, SimulationResult]
) -> None:
    d = _fastest_step_s(small_resolved, small_plan)
    # small-agent: plan → (lookup ‖ embed → search) → answer
    bound = d["plan"] + max(d["lookup"], d["embed"] + d["search"]) + d["answer"]
    assert 3.0 < bound < small_plan.workflows[0].critical_path_s
    for res in runs.values():
        lat = np.asarray(res.latencies_s["small-agent"])
        assert lat.min() >= bound * (1 - 1e-9)
        assert res.workflows[0].mean_s >= bound
        # the plan prices decode at the config's full batch and the co-located stall at the utilisation cap, so
        # its critical path bounds the simulated service times from above at this load
        assert res.workflows[0].p50_s < small_plan.workflows[0].critical_path_s


def test_more_traffic_than_planned_queues(small_resolved: ResolvedScenario, small_plan: Plan, tmp_path: Path) -> None:
    """The same plan under 1.4× its arrivals (the co-located pool at ~95 %): waits and the tail grow."""
    data = read_yaml(SMALL)
    data["workflows"][0]["arrival_rate_rps"] = 4.2
    data["workflows"][0]["path"] = str(SMALL.parent / "small-agent-workflow.yaml")
    hot = load_scenario(write_yaml(tmp_path / "hot.yaml", data))
    base = simulate_plan(small_resolved, small_plan, SimOptions(600.0, 0))
    loaded = simulate_plan(hot, small_plan, SimOptions(600.0, 0))
    pool = "llama-3.1-8b:colocated"
    assert {p.pool: p for p in loaded.pools}[pool].load > 0.9
    assert {p.pool: p for p in loaded.pools}[pool].mean_queue > 5 * {p.pool: p for p in base.pools}[pool].mean_queue
    assert loaded.workflows[0].p99_s > base.workflows[0].p99_s


def test_same_seed_same_output(small_resolved: ResolvedScenario, small_plan: Plan) -> None:
    a = simulate_plan(small_resolved, small_plan, SimOptions(200.0, 7))
    b = simulate_plan(small_resolved, small_plan, SimOptions(200.0, 7))
    c = simulate_plan(small_resolved, small_plan, SimOptions(200.0, 8))
    assert json.dumps(a.summary()) == json.dumps(b.summary())
    assert a.latencies_s == b.latencies_s
    assert json.dumps(a.summary()) != json.dumps(c.summary())


def test_renewal_arrivals_have_the_rate_and_variability() -> None:
    rng = np.random.default_rng(0)
    poisson = renewal_arrivals([5.0], 20_000.0, rng)
    bursty = renewal_arrivals([5.0], 20_000.0, rng, cv=2.0)
    for arr, cv in ((poisson, 1.0), (bursty, 2.0)):
        gaps = np.diff(arr.time_s)
        assert len(arr) == pytest.approx(100_000, rel=0.03)
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)
    two = renewal_arrivals([1.0, 3.0], 10_000.0, rng)
    assert np.all(np.diff(two.time_s) >= 0)
    assert np.sum(two.workflow == 1) / len(two) == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("bad", ["gamma", "gamma:-1", "gamma:x", "trace:", "uniform", "poisson:2"])
def test_bad_arrival_spec_is_an_input_error(tmp_path: Path, small_plan: Plan, bad: str) -> None:
    res = runner.invoke(app, ["simulate", str(SMALL), str(_plan_file(tmp_path, small_plan)), "--arrivals", bad])
    assert res.exit_code == 2, res.output
    assert "--arrivals" in res.output
    assert parse_arrival_spec("gamma:0.5").cv == 0.5


def test_cli_json_and_out_files(tmp_path: Path, small_plan: Plan) -> None:
    plan = _plan_file(tmp_path, small_plan)
    args = ["simulate", str(SMALL), str(plan), "--duration", "120", "--seed", "3"]
    res = runner.invoke(app, [*args, "--json", "--out", str(tmp_path / "sim")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["workflows"][0]["workflow"] == "small-agent"
    assert {p["pool"] for p in doc["pools"]} == {a.pool for a in small_plan.pools}
    files = sorted(p.name for p in (tmp_path / "sim").iterdir())
    expected = ["latency_cdf.png", "pools.csv", "queue.csv", "queue.png", "simulation.json", "steps.csv"]
    assert files == sorted([*expected, "workflows.csv"])
    assert (tmp_path / "sim" / "queue.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "sim" / "simulation.json").read_text()) == doc
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "attained" in table.stdout


def test_plan_for_another_scenario_is_rejected(tmp_path: Path, small_plan: Plan) -> None:
    data = small_plan.model_dump(mode="json")
    data["scenario"] = "default"
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    res = runner.invoke(app, ["simulate", str(SMALL), str(path)])
    assert res.exit_code == 2
    assert "scenario" in res.output and "Traceback" not in res.output


def test_trace_arrivals_replay_times_and_tokens(
    tmp_path: Path, small_resolved: ResolvedScenario, small_plan: Plan
) -> None:
    def run(output_tokens: int) -> SimulationResult:
        arrivals = tmp_path / f"arr{output_tokens}.csv"
        rows = ["time_s,workflow,prompt_tokens,output_tokens,cached_tokens"]
        rows += [f"{10 + 0.5 * i},small-agent,{1200 + 10 * i},{output_tokens},1000" for i in range(400)]
        arrivals.write_text("\n".join(rows) + "\n")
        return simulate_plan(small_resolved, small_plan, SimOptions(1000.0, 0, parse_arrival_spec(f"trace:{arrivals}")))

    short, long = run(60), run(300)
    assert short.conservation.arrived == 400  # times shifted to start at 0; all within the run
    assert short.duration_s == pytest.approx(199.5)
    assert short.workflows[0].unfinished == 0
    # the trace's 300 output tokens (the workflow says 60) lengthen the first LLM step by ~240 decode steps
    tpot = next(s.tpot_p50_s for s in short.steps if s.step == "plan")
    assert long.workflows[0].mean_s - short.workflows[0].mean_s > 200 * present(tpot)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("time_s,workflow\n1.0,ghost\n", "line 2.workflow"),
        ("time_s,workflow\nsoon,small-agent\n", "line 2.time_s"),
        ("time_s,workflow,prompt_tokens,cached_tokens\n1,small-agent,100,100\n", "line 2.cached_tokens"),
        ("when,workflow\n1,small-agent\n", "line 1"),
    ],
)
def test_bad_arrival_file_names_line_and_column(tmp_path: Path, small_plan: Plan, body: str, where: str) -> None:
    path = tmp_path / "arr.csv"
    path.write_text(body)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "simulate",
            str(SMALL),
            str(_plan_file(tmp_path, small_plan)),
            "--arrivals",
            f"trace:{path}",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2, res.output
    assert where in res.output and "Traceback" not in res.output
    assert not out.exists()  # no partial output


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("device", "warp-drive", "pools[0].device: unknown device 'warp-drive'"), ("model", "gpt-9", "gpt-9")],
)
def test_plan_with_unknown_references_is_rejected(
    tmp_path: Path, small_plan: Plan, field: str, value: str, message: str
) -> None:
    data = small_plan.model_dump(mode="json")
    llm = next(i for i, a in enumerate(data["pools"]) if a["model"] == "llama-3.1-8b")
    data["pools"][llm if field == "model" else 0][field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    res = runner.invoke(app, ["simulate", str(SMALL), str(path)])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_calls_split_between_routes_by_the_plans_shares(small_resolved: ResolvedScenario, small_plan: Plan) -> None:
    """A plan serving half of llama-3.1-8b's 6 calls/s co-located and half disaggregated (prefill + decode pools
    added on the same CPUs): the co-located pool serves ~3 calls/s, the prefill pool the other calls' tokens."""
    data = small_plan.model_dump(mode="json")
    col = [a for a in data["pools"] if a["pool"] == "llama-3.1-8b:colocated"]
    for a in col:
        a["demand"] = 3.0 * a["throughput"] / sum(c["throughput"] for c in col)
    base = {"model": "llama-3.1-8b", "device": "xeon-6980p", "weight_dtype": "bf16", "tensor_parallel": 1}
    data["pools"] += [
        {**base, "pool": "llama-3.1-8b:prefill", "phase": "prefill", "batch": 1, "replicas": 1, "devices": 1,
         "throughput": 5000.0, "throughput_unit": "prefill_tokens", "demand": 2205.0, "utilisation": 0.44},
        {**base, "pool": "llama-3.1-8b:decode", "phase": "decode", "batch": 32, "replicas": 1, "devices": 1,
         "throughput": 600.0, "throughput_unit": "decode_tokens", "demand": 315.0, "utilisation": 0.53},
    ]  # fmt: skip
    plan = Plan.model_validate(data)
    res = simulate_plan(small_resolved, plan, SimOptions(1200.0, 0))
    pools = {p.pool: p for p in res.pools}
    calls_colocated = pools["llama-3.1-8b:colocated"].load * sum(a["throughput"] for a in col)
    assert calls_colocated == pytest.approx(3.0, rel=0.06)
    # the other 3 calls/s prefill (1200 − 1000) + (2400 − 1260) = 1340 uncached tokens per request pair: 2,010/s
    assert pools["llama-3.1-8b:prefill"].load * 5000.0 == pytest.approx(1.5 * 1340, rel=0.06)
    assert pools["llama-3.1-8b:decode"].load * 600.0 == pytest.approx(1.5 * (60 + 150), rel=0.06)
    assert res.workflows[0].unfinished == 0


@st.composite
def tool_dags(draw: st.DrawFn) -> dict:
    """A random DAG of tool steps (edges only to earlier steps), each with a latency and a repeat count."""
    n = draw(st.integers(1, 7))
    steps = []
    for i in range(n):
        after = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        steps.append(
            {
                "id": f"s{i}",
                "kind": "tool",
                "tool": "t",
                "after": [f"s{j}" for j in after],
                "repeat": draw(st.integers(1, 4)),
                "latency_s": draw(st.floats(0.05, 5.0)),
                "cpu_s": 0.01,
            }
        )
    return {
        "id": "dag",
        "name": "dag",
        "description": "random",
        "arrival_rate_rps": 0.5,
        "sla": {"e2e_latency_s": 60},
        "steps": steps,
    }


@settings(max_examples=25, deadline=None)
@given(tool_dags())
def test_without_queueing_every_request_takes_its_critical_path(doc: dict) -> None:
    """With cores to spare nothing waits, so each request's latency is the DAG's longest path of repeat × latency
    (computed here by a plain recursion over predecessors), for every request."""
    wf = Workflow.model_validate(doc)
    finish: dict[str, float] = {}
    for s in wf.steps:  # steps only depend on earlier ones
        start = max((finish[p] for p in s.after), default=0.0)
        finish[s.id] = start + s.repeat * s.latency_s  # type: ignore[union-attr]
    longest = max(finish.values())
    keys = {StepKey("dag", s.id): "cpu" for s in wf.steps}
    service = ServiceModel({"cpu": PoolTable("cpu", CORES, [ConfigTable("c", "cpu", 1, 1, cores=10_000)])}, {}, keys)
    arrivals = renewal_arrivals([0.5], 200.0, np.random.default_rng(0))
    rec = Engine([wf], service, arrivals, 200.0, 0.0, 1000.0, 1, 10).run()
    assert len(rec.latency[0]) == len(arrivals)
    np.testing.assert_allclose(rec.latency[0], longest, rtol=1e-9)
