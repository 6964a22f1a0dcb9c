"""`hetplace export` and `check --export` on the small scenario's plan (and hand-made variants of it): exact engine
arguments derived by hand, every argument against the engine flags recorded from the named releases, every
Kubernetes manifest against the Kubernetes client's OpenAPI models (strict, offline), the purchase order's numbers,
round trips through `check --export`, tampered exports, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import models as k8s
from typer.testing import CliRunner

from hetplace.cli import app
from hetplace.common.errors import InputError
from hetplace.export.engine_flags import DYNAMO_FLAGS, ENGINES, unknown_args
from hetplace.export.engines import engine_args
from hetplace.export.plan_view import build_view, plan_hash
from hetplace.export.verify import verify_export
from hetplace.export.write import ExportFormat, export_plan
from hetplace.optimizer.multiperiod import solve_schedule
from hetplace.optimizer.solve import SolveOutcome
from hetplace.problems.loader import ResolvedScenario, load_scenario
from hetplace.problems.plan import Plan
from tests.conftest import FIXTURES, SMALL, solved_plan, write_yaml

runner = CliRunner()
FORMATS = [f.value for f in ExportFormat]

# LeaderWorkerSet is a CRD, not in the Kubernetes client: its spec fields as recorded from kubernetes-sigs/lws
# api/leaderworkerset/v1/leaderworkerset_types.go (v0.6): the pod templates inside are validated as V1PodTemplateSpec.
LWS_SPEC_KEYS = {"replicas", "leaderWorkerTemplate", "rolloutStrategy", "startupPolicy", "networkConfig"}
LWS_TEMPLATE_KEYS = {"leaderTemplate", "workerTemplate", "size", "restartPolicy", "subGroupPolicy"}
K8S_MODELS: dict[str, Any] = {"Deployment": k8s.V1Deployment, "Service": k8s.V1Service, "ConfigMap": k8s.V1ConfigMap}


def validate_k8s_folder(folder: Path) -> dict[str, int]:
    """Every manifest in an export folder validated strictly (unknown keys, wrong types, missing required fields
    fail; camelCase keys only) against the Kubernetes client's models; the kustomization's resources all exist.
    Returns how many objects of each kind were checked."""
    counts: dict[str, int] = {}
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(kust) <= {"apiVersion", "kind", "resources", "images"}, kust.keys()
    assert (kust["apiVersion"], kust["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    for image in kust.get("images", []):
        assert set(image) == {"name", "newName", "newTag"}
    for name in kust["resources"]:
        for doc in yaml.safe_load_all((folder / name).read_text()):
            kind = doc["kind"]
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "LeaderWorkerSet":
                assert doc["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
                k8s.V1ObjectMeta.model_validate(doc["metadata"], strict=True, by_alias=True, by_name=False)
                assert (
                    set(doc["spec"]) <= LWS_SPEC_KEYS and set(doc["spec"]["leaderWorkerTemplate"]) <= LWS_TEMPLATE_KEYS
                )
                assert isinstance(doc["spec"]["leaderWorkerTemplate"]["size"], int)
                for t in ("leaderTemplate", "workerTemplate"):
                    template = doc["spec"]["leaderWorkerTemplate"][t]
                    k8s.V1PodTemplateSpec.model_validate(template, strict=True, by_alias=True, by_name=False)
                continue
            K8S_MODELS[kind].model_validate(doc, strict=True, by_alias=True, by_name=False)
    assert set(kust["resources"]) == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    return counts


def engine_arg_lists(folder: Path) -> list[tuple[str, list[str]]]:
    """(engine, args) of every engine launch in an export folder (launch.json, k8s containers, Dynamo workers)."""
    out: list[tuple[str, list[str]]] = []
    index = json.loads((folder / "export.json").read_text())
    fmt = index["format"]
    if fmt in ("vllm", "sglang"):
        out += [(fmt, u["args"]) for u in json.loads((folder / "launch.json").read_text())["units"]]
    elif fmt == "k8s":
        for name in index["files"]:
            for doc in yaml.safe_load_all((folder / name).read_text()) if name.endswith(".yaml") else []:
                if doc.get("kind") == "Deployment":
                    c = doc["spec"]["template"]["spec"]["containers"][0]
                    if c["name"] == "engine":
                        out.append(("vllm" if c["command"][0] == "vllm" else "sglang", c["command"] + c["args"]))
    elif fmt == "dynamo":
        from hetplace.export.dynamo import command_args

        for name in index["files"]:
            if name.startswith("dynamo-"):
                services = yaml.safe_load((folder / name).read_text())["spec"]["services"]
                for s in services.values():
                    line = s["extraPodSpec"]["mainContainer"]["args"][0]
                    if "dynamo.vllm" in line:
                        out.append(("dynamo", command_args(line)))
    return out


def flag_problems(engine: str, args: list[str]) -> list[str]:
    if engine == "dynamo":
        assert args[:3] == ["python3", "-m", "dynamo.vllm"]
        return unknown_args(args[3:], DYNAMO_FLAGS)
    release = ENGINES[engine]
    assert tuple(args[: len(release.command)]) == release.command
    return unknown_args(args[len(release.command) :], release.flags)


@pytest.fixture(scope="module")
def small_plan(small_plans: dict[str, SolveOutcome]) -> Plan:
    return solved_plan(small_plans["highs"])


@pytest.fixture
def plan_file(tmp_path: Path, small_plan: Plan) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(small_plan.model_dump(mode="json")))
    return path


def export(plan_path: Path, fmt: str, out: Path, scenario: Path = SMALL, *extra: str):
    return runner.invoke(
        app, ["export", str(plan_path), "--scenario", str(scenario), "--format", fmt, "--out", str(out), *extra]
    )


def check(plan_path: Path, out: Path, scenario: Path = SMALL):
    return runner.invoke(app, ["check", str(scenario), str(plan_path), "--export", str(out)])


def _variant(small_plan: Plan, **changes: Any) -> Plan:
    """The small plan with the co-located tp=2 Llama config changed (export does not re-check feasibility)."""
    data = small_plan.model_dump(mode="json")
    for p in data["pools"]:
        if p["pool"] == "llama-3.1-8b:colocated" and p["tensor_parallel"] == 2:
            p.update(changes)
    return Plan.model_validate(data)


# --- engine arguments, derived by hand ------------------------------------------------------------------------


def test_vllm_and_sglang_arguments_of_the_small_plan(small_plan: Plan, small_resolved: ResolvedScenario) -> None:
    """The small plan serves Llama-3.1-8B co-located on Xeon 6980P sockets (tp 2, batch 32) and BGE on an L4.
    Max model length = the longest step: 'answer', 2,400 prompt + 150 output = 2,550 tokens (plan: 1,260); BGE:
    64 tokens per item. Xeon 6980P has bf16 (AMX), so the 16-bit model runs in bfloat16; BGE is published fp16."""
    view = build_view(small_plan, small_resolved, "plan.json", need_hf_repo=True)
    by_name = {u.name: u for u in view.units}
    llm = by_name["llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16"]
    assert engine_args(view, llm, ENGINES["vllm"]) == [
        "vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--host", "0.0.0.0", "--port", "8000",
        "--served-model-name", "llama-3.1-8b", "--device", "cpu", "--tensor-parallel-size", "2",
        "--dtype", "bfloat16", "--kv-cache-dtype", "auto", "--max-num-seqs", "32", "--max-model-len", "2550",
    ]  # fmt: skip
    assert engine_args(view, llm, ENGINES["sglang"]) == [
        "python3", "-m", "sglang.launch_server", "--model-path", "meta-llama/Llama-3.1-8B-Instruct",
        "--host", "0.0.0.0", "--port", "30000", "--served-model-name", "llama-3.1-8b", "--device", "cpu",
        "--tp-size", "2", "--dtype", "bfloat16", "--kv-cache-dtype", "auto", "--max-running-requests", "32",
        "--context-length", "2550",
    ]  # fmt: skip
    embed = by_name["embed-bge-large-en-v1-5-l4-tp1-b32-fp16"]
    assert engine_args(view, embed, ENGINES["vllm"])[3:] == [
        "--host", "0.0.0.0", "--port", "8000", "--served-model-name", "bge-large-en-v1.5",
        "--tensor-parallel-size", "1", "--dtype", "float16", "--task", "embed", "--max-num-seqs", "32",
        "--max-model-len", "64",
    ]  # fmt: skip


def test_quantisation_kv_dtype_and_disaggregated_roles(small_plan: Plan, small_resolved: ResolvedScenario) -> None:
    fp8 = _variant(small_plan, weight_dtype="fp8", kv_dtype="fp8")
    view = build_view(fp8, small_resolved, "plan.json", need_hf_repo=True)
    unit = next(u for u in view.units if u.tp == 2)
    vllm = engine_args(view, unit, ENGINES["vllm"])
    assert vllm[vllm.index("--quantization") + 1] == "fp8" and vllm[vllm.index("--kv-cache-dtype") + 1] == "fp8"
    sglang = engine_args(view, unit, ENGINES["sglang"])
    assert sglang[sglang.index("--kv-cache-dtype") + 1] == "fp8_e4m3"
    for phase, role, mode in (("prefill", "kv_producer", "prefill"), ("decode", "kv_consumer", "decode")):
        split = _variant(small_plan, pool=f"llama-3.1-8b:{phase}", phase=phase)
        view = build_view(split, small_resolved, "plan.json", need_hf_repo=True)
        unit = next(u for u in view.units if u.phase.value == phase)
        vllm = engine_args(view, unit, ENGINES["vllm"])
        assert json.loads(vllm[vllm.index("--kv-transfer-config") + 1]) == {
            "kv_connector": "PyNcclConnector",
            "kv_role": role,
        }
        sglang = engine_args(view, unit, ENGINES["sglang"])
        assert sglang[sglang.index("--disaggregation-mode") + 1] == mode
        assert not flag_problems("vllm", vllm) and not flag_problems("sglang", sglang)


def test_weights_the_engines_cannot_quantise_on_the_fly_are_input_errors(
    small_plan: Plan, small_resolved: ResolvedScenario
) -> None:
    view = build_view(_variant(small_plan, weight_dtype="int4"), small_resolved, "plan.json", need_hf_repo=True)
    unit = next(u for u in view.units if u.tp == 2)
    with pytest.raises(InputError) as exc:
        engine_args(view, unit, ENGINES["vllm"])
    assert exc.value.problems[0].field_path == f"pools[{unit.index}].weight_dtype"
    assert "pre-quantised checkpoint" in str(exc.value)


def test_recorded_flag_check_catches_unknown_flags_and_bad_choices() -> None:
    flags = ENGINES["vllm"].flags
    assert unknown_args(["m", "--tensor-parallel-size", "2", "--dtype", "bfloat16"], flags) == []
    assert unknown_args(["--tp", "2"], flags) == ["unknown flag --tp"]
    assert unknown_args(["--dtype", "bf16"], flags) == [
        "--dtype bf16: not one of auto, half, float16, bfloat16, float, float32"
    ]
    assert unknown_args(["--max-num-seqs"], flags) == ["--max-num-seqs needs a value"]


# --- every format: files, headers, validation, round trip -------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_through_check(tmp_path: Path, plan_file: Path, small_plan: Plan, fmt: str) -> None:
    out = tmp_path / fmt
    result = export(plan_file, fmt, out)
    assert result.exit_code == 0, result.output
    index = json.loads((out / "export.json").read_text())
    digest = hashlib.sha256(
        json.dumps(
            small_plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    ).hexdigest()
    assert index["hetplace"] == {"scenario": "small-agent", "hetplace_version": index["hetplace"]["hetplace_version"],
                                 "plan_sha256": digest}  # fmt: skip
    for name in index["files"]:
        text = (out / name).read_text()
        assert digest in text and "small-agent" in text, name
    for engine, args in engine_arg_lists(out):
        assert flag_problems(engine, args) == [], (engine, args)
    if fmt == "k8s":
        counts = validate_k8s_folder(out)
        # 5 configs in the plan: 5 Deployments and Services, one routing ConfigMap
        assert counts == {"Deployment": 5, "Service": 5, "ConfigMap": 1}
    result = check(plan_file, out)
    assert result.exit_code == 0, result.output


def test_k8s_scheduling_per_device_type(tmp_path: Path, plan_file: Path) -> None:
    out = tmp_path / "k8s"
    assert export(plan_file, "k8s", out).exit_code == 0
    doc = next(yaml.safe_load_all((out / "llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16.yaml").read_text()))
    pod = doc["spec"]["template"]["spec"]
    assert doc["spec"]["replicas"] == 1 and pod["nodeSelector"] == {"hetplace.io/device": "xeon-6980p"}
    # 2 sockets × 128 cores × 0.9 = 230.4 → 230 CPUs; 2 × 768 GB × 0.9 = 1,382.4 → 1,382 GB
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "230", "memory": "1382G"}
    doc = next(yaml.safe_load_all((out / "embed-bge-large-en-v1-5-l4-tp1-b32-fp16.yaml").read_text()))
    pod = doc["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert pod["containers"][0]["image"] == "vllm-cuda" and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    routing = yaml.safe_load((out / "routing-configmap.yaml").read_text())
    steps = json.loads(routing["data"]["routing.json"])["steps"]
    answer = next(s for s in steps if s["step"] == "answer")
    # both Llama configs serve the co-located route; weights = their shares of the pool's demand
    (route,) = answer["routes"]
    assert route["route"] == "colocated" and route["share"] == 1.0
    weights = {u["name"]: u["weight"] for u in route["pools"][0]["units"]}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5) and len(weights) == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_the_export(tmp_path: Path, plan_file: Path) -> None:
    """What `kubectl apply -k` would send: kustomize (inside kubectl, offline) builds every object and applies the
    image mapping of kustomization.yaml."""
    out = tmp_path / "k8s"
    assert export(plan_file, "k8s", out).exit_code == 0
    built = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    docs = list(yaml.safe_load_all(built.stdout))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap"] + ["Deployment"] * 5 + ["Service"] * 5
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in docs if d["kind"] == "Deployment"}  # fmt: skip
    assert images["embed-bge-large-en-v1-5-l4-tp1-b32-fp16"] == "vllm/vllm-openai:v0.8.5"  # mapped by kustomize
    assert images["llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16"] == "vllm-cpu"  # left to the user


def test_multi_node_tensor_parallelism_becomes_a_leaderworkerset(
    tmp_path: Path, small_plan: Plan, small_resolved: ResolvedScenario
) -> None:
    """Xeon 6980P nodes hold 2 sockets: a tp=4 replica spans 2 nodes, 2 sockets each."""
    plan = _variant(small_plan, tensor_parallel=4, devices=4)
    out = tmp_path / "k8s"
    export_plan(plan, small_resolved, "plan.json", ExportFormat.k8s, out)
    counts = validate_k8s_folder(out)
    assert counts == {"Deployment": 4, "LeaderWorkerSet": 1, "Service": 5, "ConfigMap": 1}
    doc = next(yaml.safe_load_all((out / "llama-3-1-8b-colocated-xeon-6980p-tp4-b32-bf16-kvbf16.yaml").read_text()))
    assert doc["spec"]["leaderWorkerTemplate"]["size"] == 2
    leader = doc["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert "--tensor-parallel-size 4" in leader["args"][0] and leader["args"][0].startswith("ray start --head")
    assert verify_export(plan, small_resolved, "plan.json", out) == []


def test_purchase_order_of_the_small_plan(tmp_path: Path, plan_file: Path, small_plan: Plan) -> None:
    """4 Xeon 6980P sockets bought (2 dual-socket nodes) at the catalog's 12,460 USD list price = 49,840 USD, the
    plan's up-front purchases; 2 of the 4 owned L4s kept, 2 retired; no rentals."""
    out = tmp_path / "po"
    assert export(plan_file, "purchase-order", out).exit_code == 0
    text = (out / "purchase-order.csv").read_text()
    rows = {r["device"]: r for r in csv.DictReader(x for x in text.splitlines() if not x.startswith("#"))}
    assert set(rows) == {"l4", "xeon-6980p"}
    xeon = rows["xeon-6980p"]
    assert (xeon["bought"], xeon["bought_nodes"], xeon["unit_price_usd"], xeon["capex_usd"]) == (
        "4", "2", "12460.00", "49840.00"
    )  # fmt: skip
    assert "catalog devices/xeon-6980p.yaml capex_usd (list" in xeon["price_source"]
    assert float(xeon["capex_usd"]) == pytest.approx(small_plan.tco.purchases_usd)
    assert (rows["l4"]["owned_kept"], rows["l4"]["owned_retired"], rows["l4"]["rented"]) == ("2", "2", "0")
    md = (out / "purchase-order.md").read_text()
    assert "Total capex: 49,840 USD" in md and "Single-period plan" in md and "No rentals." in md


def test_purchase_order_delivery_periods_from_a_schedule(tmp_path: Path, plan_file: Path) -> None:
    """Constant demand over 2 half-years: the whole fleet is bought in period 0."""
    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path)
    data = yaml.safe_load(SMALL.read_text()) | {"horizon": {"periods": 2, "period_years": 0.5}}
    _, schedule = solve_schedule(load_scenario(write_yaml(tmp_path / "s.yaml", data)), greedy=False)
    assert schedule is not None
    sched_file = tmp_path / "schedule.json"
    sched_file.write_text(json.dumps(schedule.model_dump(mode="json")))
    out = tmp_path / "po"
    assert export(plan_file, "purchase-order", out, SMALL, "--schedule", str(sched_file)).exit_code == 0
    rows = list(csv.DictReader(x for x in (out / "purchase-order.csv").read_text().splitlines() if x[:1] != "#"))
    assert next(r for r in rows if r["device"] == "xeon-6980p")["delivery"] == "period 0: 4"
    other = json.loads(sched_file.read_text()) | {"scenario": "elsewhere"}
    sched_file.write_text(json.dumps(other))
    result = export(plan_file, "purchase-order", tmp_path / "po2", SMALL, "--schedule", str(sched_file))
    assert result.exit_code == 2 and "schedule is for scenario 'elsewhere'" in result.output
    assert not (tmp_path / "po2").exists()


def test_dynamo_without_a_disaggregated_family_says_so(tmp_path: Path, plan_file: Path) -> None:
    out = tmp_path / "dynamo"
    assert export(plan_file, "dynamo", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "export.json"]
    assert "The plan has no disaggregated family" in (out / "README.md").read_text()


# --- check --export catches edits ---------------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("fmt", "file", "old", "new", "says"),
    [
        ("vllm", "launch.json", '"replicas": 1', '"replicas": 3', "replicas: plan says 1, export says 3"),
        ("vllm", "llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16.sh", "--max-num-seqs 32",
         "--max-num-seqs 64", "--max-num-seqs: plan needs '32', export has '64'"),
        ("sglang", "llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16.sh", "--dtype bfloat16",
         "--dtype float16", "--dtype: plan needs 'bfloat16', export has 'float16'"),
        ("sglang", "routing.json", '"share": 1.0', '"share": 0.5', ".share: plan says 1.0, export says 0.5"),
        ("k8s", "llama-3-1-8b-colocated-xeon-6980p-tp2-b32-bf16-kvbf16.yaml", "- --tensor-parallel-size\n        - '2'",
         "- --tensor-parallel-size\n        - '1'", "--tensor-parallel-size: plan needs '2', export has '1'"),
        ("k8s", "embed-bge-large-en-v1-5-l4-tp1-b32-fp16.yaml", "replicas: 1", "replicas: 2",
         "spec.replicas: plan says 1, export says 2"),
        ("purchase-order", "purchase-order.csv", "xeon-6980p,Intel,4", "xeon-6980p,Intel,8",
         "xeon-6980p: bought: plan says 4, export says 8"),
    ],
)  # fmt: skip
def test_check_export_names_the_file_and_field_that_disagree(
    tmp_path: Path, plan_file: Path, fmt: str, file: str, old: str, new: str, says: str
) -> None:
    out = tmp_path / fmt
    assert export(plan_file, fmt, out).exit_code == 0
    _edit(out / file, old, new)
    result = check(plan_file, out)
    assert result.exit_code == 1, result.output
    assert file in result.output and says in result.output, result.output


def test_check_export_of_another_plan_flags_the_hash(tmp_path: Path, plan_file: Path, small_plan: Plan) -> None:
    out = tmp_path / "vllm"
    assert export(plan_file, "vllm", out).exit_code == 0
    other = small_plan.model_dump(mode="json")
    other["tco"]["usd_per_request"] *= 2  # a different plan document, same configs
    other_file = tmp_path / "other.json"
    other_file.write_text(json.dumps(other))
    result = check(other_file, out)
    assert result.exit_code == 1 and "hetplace.plan_sha256" in result.output
    assert plan_hash(Plan.model_validate(other)) != plan_hash(small_plan)


# --- bad input ------------------------------------------------------------------------------------------------


def test_a_plan_for_another_scenario_is_exit_2(tmp_path: Path, plan_file: Path) -> None:
    from hetplace.problems.loader import default_scenario_path

    result = export(plan_file, "k8s", tmp_path / "out", default_scenario_path())
    assert result.exit_code == 2
    assert "plan is for scenario 'small-agent', not 'default'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_is_exit_2(tmp_path: Path, plan_file: Path) -> None:
    result = export(plan_file, "terraform", tmp_path / "out")
    assert result.exit_code == 2 and "unknown format 'terraform'" in result.output
    assert "vllm, sglang, k8s, dynamo, purchase-order" in result.output
    assert not (tmp_path / "out").exists()


def test_a_model_without_a_hugging_face_repo_is_exit_2(tmp_path: Path) -> None:
    """A scenario whose workflow calls a catalog extension model without hf_repo: the engines cannot load it."""
    model = yaml.safe_load((Path(__file__).parents[1] / "catalogs" / "models" / "llama-3.1-8b.yaml").read_text())
    model.pop("hf_repo")
    model["id"] = "in-house-8b"
    write_yaml(tmp_path / "in-house-8b.yaml", model)
    workflow = yaml.safe_load((FIXTURES / "scenarios" / "small-agent-workflow.yaml").read_text())
    for step in workflow["steps"]:
        if step.get("model") == "llama-3.1-8b":
            step["model"] = "in-house-8b"
    write_yaml(tmp_path / "small-agent-workflow.yaml", workflow)
    scenario = yaml.safe_load(SMALL.read_text()) | {"catalog": {"models": ["in-house-8b.yaml"]}}
    scenario_file = write_yaml(tmp_path / "scenario.yaml", scenario)
    plan_path = tmp_path / "plan.json"
    solved = runner.invoke(app, ["solve", str(scenario_file), "--no-baselines", "--out", str(plan_path)])
    assert solved.exit_code == 0, solved.output
    for fmt in ("vllm", "sglang", "k8s", "dynamo"):
        result = export(plan_path, fmt, tmp_path / fmt, scenario_file)
        assert result.exit_code == 2, result.output
        assert "model 'in-house-8b' has no Hugging Face repo" in result.output and "pools[" in result.output
        assert not (tmp_path / fmt).exists()
    # the purchase order needs no repo
    assert export(plan_path, "purchase-order", tmp_path / "po", scenario_file).exit_code == 0


def test_sglang_on_a_tpu_is_exit_2(small_plan: Plan, small_resolved: ResolvedScenario, tmp_path: Path) -> None:
    plan = _variant(small_plan, device="tpu-v6e")
    with pytest.raises(InputError, match=r"SGLang v0\.5\.3 has no TPU backend"):
        export_plan(plan, small_resolved, "plan.json", ExportFormat.sglang, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    export_plan(plan, small_resolved, "plan.json", ExportFormat.k8s, tmp_path / "k8s")
    doc = next(
        yaml.safe_load_all((tmp_path / "k8s" / "llama-3-1-8b-colocated-tpu-v6e-tp2-b32-bf16-kvbf16.yaml").read_text())
    )
    pod = doc["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v6e-slice"
    assert pod["containers"][0]["resources"]["limits"] == {"google.com/tpu": "2"}


def test_output_folder_is_replaced_only_when_it_is_an_export(tmp_path: Path, plan_file: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = export(plan_file, "vllm", out)
    assert result.exit_code == 2 and "not a hetplace export" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    fresh = tmp_path / "fresh"
    assert export(plan_file, "vllm", fresh).exit_code == 0
    assert export(plan_file, "purchase-order", fresh).exit_code == 0  # an earlier export is replaced whole
    assert sorted(p.name for p in fresh.iterdir()) == ["export.json", "purchase-order.csv", "purchase-order.md"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folders left


def test_purchase_order_rentals(tmp_path: Path, small_plan: Plan, small_resolved: ResolvedScenario) -> None:
    """2 rented A10Gs at the catalog's 1.006 USD per device-hour: 2 × 1.006 × 8,760 h = 17,625.12 USD per year."""
    data = small_plan.model_dump(mode="json")
    data["fleet"].append(
        {"device": "a10g", "owned_used": 0, "owned_idle": 0, "bought": 0, "rented": 2, "nodes": 1, "power_kw": 0.0}
    )
    out = tmp_path / "po"
    export_plan(Plan.model_validate(data), small_resolved, "plan.json", ExportFormat.purchase_order, out)
    text = (out / "purchase-order.csv").read_text()
    a10g = next(r for r in csv.DictReader(x for x in text.splitlines() if x[:1] != "#") if r["device"] == "a10g")
    assert (a10g["rented"], a10g["rental_usd_per_hour"], a10g["rental_usd_per_year"]) == ("2", "1.0060", "17625.12")
    assert "Expected rental cost: 17,625 USD per year" in (out / "purchase-order.md").read_text()


def test_dynamo_graph_of_a_disaggregated_family(
    tmp_path: Path, small_plan: Plan, small_resolved: ResolvedScenario
) -> None:
    """The small plan's two Llama configs recast as a prefill (tp 1) and a decode (tp 2) pool: one graph with a
    Frontend and two workers, the prefill one flagged; an edited replica count is caught."""
    data = small_plan.model_dump(mode="json")
    for p in data["pools"]:
        if p["pool"] == "llama-3.1-8b:colocated":
            phase = "prefill" if p["tensor_parallel"] == 1 else "decode"
            p.update(pool=f"llama-3.1-8b:{phase}", phase=phase)
    plan = Plan.model_validate(data)
    out = tmp_path / "dynamo"
    export_plan(plan, small_resolved, "plan.json", ExportFormat.dynamo, out)
    graph = yaml.safe_load((out / "dynamo-llama-3-1-8b.yaml").read_text())
    assert graph["kind"] == "DynamoGraphDeployment" and graph["apiVersion"] == "nvidia.com/v1alpha1"
    services = graph["spec"]["services"]
    assert sorted(services) == [
        "Frontend",
        "llama-3-1-8b-decode-xeon-6980p-tp2-b32-bf16-kvbf16",
        "llama-3-1-8b-prefill-xeon-6980p-tp1-b1-bf16-kvbf16",
    ]
    prefill = services["llama-3-1-8b-prefill-xeon-6980p-tp1-b1-bf16-kvbf16"]
    assert "--is-prefill-worker" in prefill["extraPodSpec"]["mainContainer"]["args"][0]
    for engine, args in engine_arg_lists(out):
        assert flag_problems(engine, args) == []
    assert verify_export(plan, small_resolved, "plan.json", out) == []
    text = (out / "dynamo-llama-3-1-8b.yaml").read_text()
    decode_at = text.index("llama-3-1-8b-decode-xeon-6980p-tp2-b32-bf16-kvbf16:")
    replicas_at = text.index("replicas: 1", decode_at)
    (out / "dynamo-llama-3-1-8b.yaml").write_text(text[:replicas_at] + "replicas: 4" + text[replicas_at + 11 :])
    (mismatch,) = verify_export(plan, small_resolved, "plan.json", out)
    assert mismatch == (
        "dynamo-llama-3-1-8b.yaml: spec.services.llama-3-1-8b-decode-xeon-6980p-tp2-b32-bf16-kvbf16.replicas: "
        "plan says 1, export says 4"
    )
