"""NVIDIA Dynamo disaggregated-serving graphs: one DynamoGraphDeployment per model family the plan splits into
prefill and decode pools, in the shape of the Dynamo release named in `engine_flags` (a Frontend service and one
worker service per deployment unit, prefill workers with `--is-prefill-worker`).

A family served only co-located has nothing to disaggregate and gets no graph; the folder's README.md says which
families have one and, when none does, that the plan has no disaggregated family.
"""

from __future__ import annotations

import shlex
from typing import Any

from hetplace.common.enums import Phase
from hetplace.export.engine_flags import DYNAMO_IMAGE, DYNAMO_SOURCE, DYNAMO_VERSION
from hetplace.export.engines import activation_dtype, platform, quantization
from hetplace.export.plan_view import PlanView, Unit, slug
from hetplace.export.yaml_out import dump_docs

LOG = "2>&1 | tee /tmp/vllm.log"


def worker_args(view: PlanView, unit: Unit) -> list[str]:
    assert unit.model is not None and unit.model.hf_repo is not None
    args = ["python3", "-m", "dynamo.vllm", "--model", unit.model.hf_repo]
    args += ["--tensor-parallel-size", str(unit.tp), "--dtype", activation_dtype(unit)]
    quant = quantization(view, unit)
    if quant is not None:
        args += ["--quantization", quant]
    kv = unit.kv_dtype or unit.model.kv_dtype
    args += ["--kv-cache-dtype", "fp8" if kv.value == "fp8" else "auto", "--max-num-seqs", str(unit.batch)]
    if unit.max_model_len is not None:
        args += ["--max-model-len", str(unit.max_model_len)]
    if unit.phase == Phase.prefill:
        args.append("--is-prefill-worker")
    return args


def command_args(line: str) -> list[str]:
    """The worker's argument list back from its one-line command (the checker's reader)."""
    return shlex.split(line.split("2>&1")[0])


def graph(view: PlanView, model_id: str, units: list[Unit]) -> dict[str, Any]:
    name = slug(f"{model_id}-disagg")[:63]
    services: dict[str, Any] = {
        "Frontend": {
            "dynamoNamespace": name,
            "componentType": "main",
            "replicas": 1,
            "extraPodSpec": {
                "mainContainer": {
                    "image": DYNAMO_IMAGE,
                    "workingDir": "/workspace/components/backends/vllm",
                    "args": ["python3 -m dynamo.frontend --http-port 8000"],
                }
            },
        }
    }
    for u in units:
        services[u.name] = {
            "dynamoNamespace": name,
            "envFromSecret": "hf-token-secret",
            "componentType": "worker",
            "replicas": u.replicas,
            "resources": {"requests": {"gpu": str(u.tp)}, "limits": {"gpu": str(u.tp)}},
            "extraPodSpec": {
                "nodeSelector": {"hetplace.io/device": u.device.id},
                "mainContainer": {
                    "image": DYNAMO_IMAGE,
                    "workingDir": "/workspace/components/backends/vllm",
                    "args": [f"{shlex.join(worker_args(view, u))} {LOG}"],
                },
            },
        }
    h = view.header
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {
            "name": name,
            "annotations": {
                "hetplace.io/scenario": h.scenario,
                "hetplace.io/version": h.hetplace_version,
                "hetplace.io/plan-sha256": h.plan_sha256,
                "hetplace.io/model": model_id,
            },
        },
        "spec": {"services": services},
    }


def disaggregated_families(view: PlanView) -> dict[str, list[Unit]]:
    """Model id → its prefill and decode units, for models the plan serves (partly) disaggregated."""
    out: dict[str, list[Unit]] = {}
    for u in view.units:
        if u.phase in (Phase.prefill, Phase.decode) and u.model is not None:
            out.setdefault(u.model.id, []).append(u)
    return {m: us for m, us in out.items() if {u.phase for u in us} == {Phase.prefill, Phase.decode}}


def dynamo_files(view: PlanView) -> dict[str, str]:
    files: dict[str, str] = {}
    families = disaggregated_families(view)
    shares = view.route_shares()
    readme = ["# Dynamo graphs", "", *[f"<!-- {line} -->" for line in view.header.lines()], ""]
    readme.append(f"Shape: Dynamo {DYNAMO_VERSION}, {DYNAMO_SOURCE}.")
    readme.append("")
    if not families:
        readme.append(
            "The plan has no disaggregated family: every LLM is served co-located, so there is no "
            "prefill/decode graph to write. Use the `k8s` or `vllm` export instead."
        )
    for model_id, units in sorted(families.items()):
        notes = list(view.header.lines())
        notes.append(f"Dynamo {DYNAMO_VERSION} graph for {model_id} ({DYNAMO_SOURCE})")
        share = shares.get(model_id, {}).get("disaggregated", 1.0)
        notes.append(f"disaggregated route share of {model_id}'s calls: {share:.6f}")
        others = sorted({u.device.id for u in units if platform(u.device) != "cuda"})
        if others:
            notes.append(
                f"devices {', '.join(others)} are not NVIDIA: the Dynamo example schedules NVIDIA GPUs (resource "
                "'gpu'); check that your Dynamo platform runs these devices"
            )
        file = f"dynamo-{slug(model_id)}.yaml"
        files[file] = dump_docs(notes, [graph(view, model_id, units)])
        readme.append(f"- `{file}`: {model_id}, {len(units)} worker services, disaggregated share {share:.1%}")
        if others:
            readme.append(f"  (not NVIDIA: {', '.join(others)} — see the file's header)")
    colocated = sorted(
        {u.model.id for u in view.units if u.model is not None and u.phase == Phase.colocated} - set(families)
    )
    if colocated:
        readme.append("")
        readme.append(f"Served co-located only (no graph): {', '.join(colocated)}.")
    files["README.md"] = "\n".join(readme) + "\n"
    return files
