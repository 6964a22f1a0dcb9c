"""Kubernetes manifests for a plan: per deployment unit a Deployment (a LeaderWorkerSet when tensor parallelism
spans nodes) and a Service, a ConfigMap with the routing table, and a kustomization.yaml, so `kubectl apply -k DIR`
deploys the fleet.

Scheduling per device type: the device plugin's resource name (nvidia.com/gpu, amd.com/gpu, habana.ai/gaudi,
google.com/tpu; CPU sockets as cpu/memory requests), a node selector `hetplace.io/device: <device id>` (label your
nodes with it; TPU pods also carry GKE's accelerator label) and a toleration for the resource's usual taint.
Engine pods run the vLLM (or, for a plan priced with `engine: sglang`, SGLang) release named in `engine_flags`;
the image names are kustomize placeholders (`vllm-cuda`, `vllm-rocm`, ...) set in kustomization.yaml where a
public image of that release is known, else by `kustomize edit set image`. Encoder, retrieval and tool pools get a
Deployment with a placeholder image (`hetplace-<phase>`) for your own service.
"""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

from hetplace.common.errors import InputError
from hetplace.export.engine_flags import ENGINES, EngineRelease
from hetplace.export.engines import engine_args, engine_served, platform
from hetplace.export.plan_view import PlanView, Unit, slug
from hetplace.export.yaml_out import dump_docs

RESOURCE = {"cuda": "nvidia.com/gpu", "rocm": "amd.com/gpu", "hpu": "habana.ai/gaudi", "tpu": "google.com/tpu"}
GKE_TPU_ACCELERATOR = {"tpu-v6e": "tpu-v6e-slice", "tpu-v5e": "tpu-v5-lite-podslice"}
KNOWN_IMAGES = {"vllm-cuda": "vllm/vllm-openai:v0.8.5"}  # Docker Hub image of the release in engine_flags
SERVICE_PORT = 8080  # placeholder services (encoders, retrieval, tools)
CPU_REQUEST_FRACTION = 0.9  # of a socket's cores and DRAM: leave room for the node's own daemons
LWS_API = "leaderworkerset.x-k8s.io/v1"
ROUTING_CONFIGMAP = "hetplace-routing"


def release_for(view: PlanView) -> EngineRelease:
    return ENGINES["sglang" if view.plan.engine == "sglang" else "vllm"]


def provenance_annotations(view: PlanView, unit: Unit | None = None) -> dict[str, str]:
    h = view.header
    out = {
        "hetplace.io/scenario": h.scenario,
        "hetplace.io/version": h.hetplace_version,
        "hetplace.io/plan-sha256": h.plan_sha256,
    }
    if unit is not None:
        out |= {
            "hetplace.io/pool": unit.pool,
            "hetplace.io/device": unit.device.id,
            "hetplace.io/tensor-parallel": str(unit.tp),
            "hetplace.io/batch": str(unit.batch),
            "hetplace.io/weight-dtype": unit.weight_dtype.value if unit.weight_dtype else "",
            "hetplace.io/kv-dtype": unit.kv_dtype.value if unit.kv_dtype else "",
        }
    return out


def labels(view: PlanView, unit: Unit) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": unit.name,
        "app.kubernetes.io/part-of": slug(f"hetplace-{view.header.scenario}")[:63],
        "hetplace.io/phase": unit.phase.value,
    }


def scheduling(unit: Unit) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, str]]:
    """Node selector, tolerations and resource quantities of one pod of the unit."""
    plat = platform(unit.device)
    selector = {"hetplace.io/device": unit.device.id}
    if plat == "tpu" and unit.device.id in GKE_TPU_ACCELERATOR:
        selector["cloud.google.com/gke-tpu-accelerator"] = GKE_TPU_ACCELERATOR[unit.device.id]
    per_pod = unit.devices_per_pod
    if plat == "cpu":
        cores = unit.device.cores or 1
        cpu = max(1, math.floor(CPU_REQUEST_FRACTION * cores * per_pod))
        mem = max(1, math.floor(CPU_REQUEST_FRACTION * unit.device.mem_gb * per_pod))
        return selector, [], {"cpu": str(cpu), "memory": f"{mem}G"}
    resource = RESOURCE[plat]
    toleration = {"key": resource, "operator": "Exists", "effect": "NoSchedule"}
    return selector, [toleration], {resource: str(per_pod)}


def _probe(port: int, path: str | None, period_s: int, failures: int) -> dict[str, Any]:
    action: dict[str, Any] = {"httpGet": {"path": path, "port": port}} if path else {"tcpSocket": {"port": port}}
    return {**action, "periodSeconds": period_s, "failureThreshold": failures, "timeoutSeconds": 5}


def container(unit: Unit, image: str, command: list[str], args: list[str], port: int, health: str | None) -> dict:
    _, _, quantities = scheduling(unit)
    launch = {k: v for k, v in (("command", command), ("args", args)) if v}  # none: the image's own entrypoint
    return {
        "name": "engine" if health else "service",
        "image": image,
        **launch,
        "ports": [{"name": "http", "containerPort": port}],
        "env": [
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token", "optional": True}}}
        ],
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        # Weights load for minutes: the startup probe allows 30 min before liveness takes over.
        "startupProbe": _probe(port, health, 10, 180),
        "readinessProbe": _probe(port, health, 10, 3),
        "livenessProbe": _probe(port, health, 30, 3),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }


def pod_spec(unit: Unit, main: dict[str, Any]) -> dict[str, Any]:
    selector, tolerations, _ = scheduling(unit)
    spec: dict[str, Any] = {
        "nodeSelector": selector,
        "containers": [main],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],  # NCCL/RCCL shared memory for tp > 1
    }
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def _metadata(view: PlanView, unit: Unit) -> dict[str, Any]:
    return {"name": unit.name, "labels": labels(view, unit), "annotations": provenance_annotations(view, unit)}


def workload(view: PlanView, unit: Unit, release: EngineRelease) -> tuple[dict[str, Any], int]:
    """The unit's Deployment or LeaderWorkerSet, and its serving port."""
    if engine_served(unit):
        full = engine_args(view, unit, release)
        split = len(release.command)
        image, command, args, port = (
            f"{release.engine}-{platform(unit.device)}",
            full[:split],
            full[split:],
            release.port,
        )
        health: str | None = "/health"
    else:
        image, command, args, port, health = f"hetplace-{unit.phase.value}", [], [], SERVICE_PORT, None
    meta = _metadata(view, unit)
    pod_labels = labels(view, unit)
    if unit.nodes_per_replica == 1:
        main = container(unit, image, command, args, port, health)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": unit.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": unit.name}},
                "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec(unit, main)},
            },
        }, port
    if release.engine != "vllm" or not engine_served(unit):
        raise InputError.single(
            view.plan_source,
            f"pools[{unit.index}].tensor_parallel",
            f"tp={unit.tp} spans {unit.nodes_per_replica} nodes of {unit.device.id}; the k8s export runs multi-node "
            "tensor parallelism only for vLLM engine pools (Ray in a LeaderWorkerSet)",
        )
    # Multi-node tensor parallelism: vLLM over a Ray cluster, the LeaderWorkerSet's leader pod running the server.
    serve = shlex.join(full)
    leader = container(unit, image, ["sh", "-c"], [f"ray start --head --port=6379 && {serve}"], port, health)
    worker = container(
        unit, image, ["sh", "-c"], ["ray start --address=$(LWS_LEADER_ADDRESS):6379 --block"], port, None
    )
    worker["name"] = "worker"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        worker.pop(probe)
    return {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": unit.replicas,
            "leaderWorkerTemplate": {
                "size": unit.nodes_per_replica,
                "leaderTemplate": {"metadata": {"labels": pod_labels}, "spec": pod_spec(unit, leader)},
                "workerTemplate": {"metadata": {"labels": pod_labels}, "spec": pod_spec(unit, worker)},
            },
        },
    }, port


def service(view: PlanView, unit: Unit, port: int, multi_node: bool) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": unit.name}
    if multi_node:
        selector["leaderworkerset.sigs.k8s.io/worker-index"] = "0"  # the leader serves
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": unit.name, "labels": labels(view, unit), "annotations": provenance_annotations(view)},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
    }


def k8s_files(view: PlanView) -> dict[str, str]:
    from hetplace.export.routing import routing_table

    release = release_for(view)
    files: dict[str, str] = {}
    images: set[str] = set()
    for u in view.units:
        obj, port = workload(view, u, release)
        templates = (
            [obj["spec"]["template"]]
            if obj["kind"] == "Deployment"
            else [obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]]
        )
        images |= {c["image"] for t in templates for c in t["spec"]["containers"]}
        files[f"{u.name}.yaml"] = dump_docs(view.header.lines(), [obj, service(view, u, port, u.nodes_per_replica > 1)])
    routing = {"hetplace": view.header.as_dict(), "steps": routing_table(view)}
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ROUTING_CONFIGMAP, "annotations": provenance_annotations(view)},
        "data": {"routing.json": json.dumps(routing, indent=2) + "\n"},
    }
    files["routing-configmap.yaml"] = dump_docs(view.header.lines(), [configmap])
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    known = [
        {"name": n, "newName": KNOWN_IMAGES[n].split(":")[0], "newTag": KNOWN_IMAGES[n].split(":")[1]}
        for n in sorted(images)
        if n in KNOWN_IMAGES
    ]
    if known:
        kustomization["images"] = known
    unset = sorted(i for i in images if i not in KNOWN_IMAGES)
    notes = view.header.lines()
    notes.append(f"engine: {release.engine} {release.version}; set the images not mapped below before applying:")
    notes += [f"  kustomize edit set image {i}=<registry>/<image>:<tag>" for i in unset] or ["  (all mapped)"]
    files["kustomization.yaml"] = dump_docs(notes, [kustomization])
    return files
