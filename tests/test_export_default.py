"""The issue's "done when" on the bundled default scenario: its plan (solved once here, 1 % gap, no baselines) is
exported in every format, validated (Kubernetes models, recorded engine flags), and round-trips through
`hetplace check --export`. One test function, so the parallel test workers solve the default scenario only once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.enums import Phase
from hetplace.costmodels.step_shape import llm_call_shape, llm_pool_shape
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import default_scenario_path, load_scenario
from hetplace.problems.schema import LlmStep
from tests.conftest import solved_plan
from tests.test_export import engine_arg_lists, flag_problems, validate_k8s_folder

runner = CliRunner()


@pytest.mark.slow
def test_default_scenario_exports_validate_and_round_trip(tmp_path: Path) -> None:
    scenario = default_scenario_path()
    resolved = load_scenario(scenario)
    plan = solved_plan(solve_scenario(resolved, "highs", gap=0.01, baselines=False))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan.model_dump(mode="json")))
    outs = {}
    for fmt in ("vllm", "sglang", "k8s", "dynamo", "purchase-order"):
        out = outs[fmt] = tmp_path / fmt
        args = ["export", str(plan_file), "--scenario", str(scenario), "--format", fmt, "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (fmt, result.output)
        for engine, engine_args in engine_arg_lists(out):
            assert flag_problems(engine, engine_args) == [], (fmt, engine_args)
        checked = runner.invoke(app, ["check", str(scenario), str(plan_file), "--export", str(out)])
        assert checked.exit_code == 0, (fmt, checked.output)

    # Kubernetes: one workload and one Service per config of the plan, all valid; the routing ConfigMap.
    counts = validate_k8s_folder(outs["k8s"])
    assert counts.get("Deployment", 0) + counts.get("LeaderWorkerSet", 0) == len(plan.pools)
    assert counts["Service"] == len(plan.pools) and counts["ConfigMap"] == 1

    # Engines: every LLM and embedding config launched, with the plan's tp and batch.
    launch = json.loads((outs["vllm"] / "launch.json").read_text())
    served = [p for p in plan.pools if p.phase not in (Phase.convert, Phase.retrieval, Phase.tool)]
    assert len(launch["units"]) == len(served)
    assert sorted((u["tensor_parallel"], u["batch"], u["replicas"]) for u in launch["units"]) == sorted(
        (p.tensor_parallel, p.batch, p.replicas) for p in served
    )

    # Dynamo: a graph exactly for each model with both a prefill and a decode pool in the plan.
    split = {
        m
        for m in {p.model for p in plan.pools}
        if {Phase.prefill, Phase.decode} <= {p.phase for p in plan.pools if p.model == m}
    }
    graphs = {p.name for p in outs["dynamo"].glob("dynamo-*.yaml")}
    assert len(graphs) == len(split) > 0

    # Purchase order: bought devices and capex agree with the plan's fleet and up-front purchases.
    text = (outs["purchase-order"] / "purchase-order.csv").read_text()
    rows = {r["device"]: r for r in csv.DictReader(x for x in text.splitlines() if not x.startswith("#"))}
    for f in plan.fleet:
        assert int(rows[f.device]["bought"]) == f.bought and int(rows[f.device]["owned_kept"]) == f.owned_used
    assert sum(float(r["capex_usd"]) for r in rows.values()) == pytest.approx(plan.tco.purchases_usd, rel=1e-9)

    # Routing: a model split between routes has co-located share (calls served / calls) + disaggregated share
    # (prefill tokens served / prefill tokens needed, an independent unit) = 1.
    routing = json.loads((outs["vllm"] / "routing.json").read_text())["steps"]
    for model in split & {p.model for p in plan.pools if p.phase == Phase.colocated}:
        uses = [(wf, s) for wf in resolved.workflows for s in wf.steps if isinstance(s, LlmStep) and s.model == model]
        execs = np.array([wf.arrival_rate_rps * s.repeat for wf, s in uses])
        shapes = [
            llm_call_shape(s.prompt_tokens, s.cached_prefix_tokens, s.output_tokens, s.repeat,
                           s.prompt_growth_tokens_per_repeat)
            for _, s in uses
        ]  # fmt: skip
        need = llm_pool_shape(execs, shapes, [s.output_tokens for _, s in uses]).prefill_tokens_per_s
        served_prefill = sum(p.demand for p in plan.pools if p.model == model and p.phase == Phase.prefill)
        wf, step = uses[0]
        row = next(r for r in routing if (r["workflow"], r["step"]) == (wf.id, step.id))
        shares = {r["route"]: r["share"] for r in row["routes"]}
        assert shares["disaggregated"] == pytest.approx(served_prefill / need, abs=1e-5)
        assert shares["colocated"] + shares["disaggregated"] == pytest.approx(1.0, abs=1e-6)
        assert 0 < shares["colocated"] < 1

    # kustomization.yaml names every manifest, so `kubectl apply -k` applies the whole fleet
    kust = yaml.safe_load((outs["k8s"] / "kustomization.yaml").read_text())
    assert len(kust["resources"]) == len(plan.pools) + 1
