"""`hetplace check SCENARIO PLAN --export DIR`: does an export still say what the plan says?

Reads the exported files themselves (launch scripts and launch.json, manifests, graphs, the purchase order) and
compares, unit by unit, replicas, tensor parallelism, batch, weight and KV dtype (as the engine flags that carry
them), the disaggregated role, and the routing table with what the plan implies. Each mismatch names the file and
the field. Files edited by hand are judged by what they now say; the provenance header (plan sha256) must match too.
"""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path
from typing import Any

from hetplace.common.errors import InputError
from hetplace.common.io import read_text
from hetplace.export.dynamo import command_args, disaggregated_families, worker_args
from hetplace.export.engine_flags import ENGINES
from hetplace.export.engines import engine_args, engine_served, flag_values
from hetplace.export.k8s import RESOURCE, ROUTING_CONFIGMAP, release_for, scheduling
from hetplace.export.plan_view import PlanView, build_view, slug
from hetplace.export.purchase import purchase_lines
from hetplace.export.routing import routing_table
from hetplace.export.write import INDEX, ExportFormat, needs_hf_repo
from hetplace.export.yaml_out import load_docs
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan

# Flags that carry the plan's decisions (tp, batch, dtypes, context, roles), per engine.
CHECKED_FLAGS: dict[str, tuple[str, ...]] = {
    "vllm": (
        "--tensor-parallel-size",
        "--max-num-seqs",
        "--dtype",
        "--quantization",
        "--kv-cache-dtype",
        "--max-model-len",
        "--kv-transfer-config",
        "--task",
        "--device",
    ),
    "sglang": (
        "--tp-size",
        "--max-running-requests",
        "--dtype",
        "--quantization",
        "--kv-cache-dtype",
        "--context-length",
        "--disaggregation-mode",
        "--is-embedding",
        "--device",
    ),
}
CHECKED_FLAGS["dynamo"] = (
    "--tensor-parallel-size",
    "--max-num-seqs",
    "--dtype",
    "--quantization",
    "--kv-cache-dtype",
    "--max-model-len",
    "--is-prefill-worker",
)


def _cmp_args(where: str, expected: list[str], found: list[str], flags: tuple[str, ...], out: list[str]) -> None:
    want, got = flag_values(expected), flag_values(found)
    for f in flags:
        if want.get(f) != got.get(f):
            show = lambda v: "absent" if v is None else (repr(v) if v else "set")  # noqa: E731
            out.append(f"{where} {f}: plan needs {show(want.get(f))}, export has {show(got.get(f))}")
    if expected and found and expected[0] not in found[: len(expected)]:
        out.append(f"{where}: command {found[:3]} is not {expected[:3]}")


def _cmp(where: str, field: str, want: Any, got: Any, out: list[str]) -> None:
    if want != got:
        out.append(f"{where}: {field}: plan says {want}, export says {got}")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError.single(str(path), "", f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InputError.single(str(path), "", "top level must be an object")
    return data


def _check_routing(view: PlanView, where: str, data: dict[str, Any], out: list[str]) -> None:
    want = {(r["workflow"], r["step"]): r["routes"] for r in routing_table(view)}
    got = {(r.get("workflow"), r.get("step")): r.get("routes") for r in data.get("steps", [])}
    for key, routes in want.items():
        if key not in got:
            out.append(f"{where}: steps[{key[0]}.{key[1]}]: missing")
            continue
        found = {r.get("route"): r for r in got[key] or []}
        for r in routes:
            f = found.get(r["route"])
            if f is None:
                out.append(f"{where}: steps[{key[0]}.{key[1]}].routes[{r['route']}]: missing")
                continue
            if abs(float(f.get("share", -1)) - r["share"]) > 1e-6:
                out.append(
                    f"{where}: steps[{key[0]}.{key[1]}].routes[{r['route']}].share: plan says "
                    f"{r['share']}, export says {f.get('share')}"
                )
            want_units = {u["name"]: u["weight"] for p in r["pools"] for u in p["units"]}
            got_units = {u.get("name"): u.get("weight") for p in f.get("pools", []) for u in p.get("units", [])}
            if set(want_units) != set(got_units) or any(
                abs(float(got_units[n] or -1) - w) > 1e-6 for n, w in want_units.items()
            ):
                out.append(
                    f"{where}: steps[{key[0]}.{key[1]}].routes[{r['route']}].pools: units/weights "
                    f"{sorted(got_units.items())} differ from the plan's {sorted(want_units.items())}"
                )
        if set(found) != {r["route"] for r in routes}:
            out.append(
                f"{where}: steps[{key[0]}.{key[1]}].routes: {sorted(found)} differ from the plan's "
                f"{sorted(r['route'] for r in routes)}"
            )
    for key in set(got) - set(want):
        out.append(f"{where}: steps[{key[0]}.{key[1]}]: not a step of the plan")


def _check_engine(view: PlanView, root: Path, engine: str, out: list[str]) -> None:
    release = ENGINES[engine]
    launch = _load_json(root / "launch.json") if (root / "launch.json").is_file() else {}
    if not launch:
        out.append("launch.json: missing or empty")
    found = {u.get("name"): u for u in launch.get("units", [])}
    expected = [u for u in view.units if engine_served(u)]
    for u in expected:
        where = f"launch.json: units[{u.name}]"
        f = found.get(u.name)
        if f is None:
            out.append(f"{where}: missing (pool {u.pool} on {u.device.id})")
            continue
        _cmp(where, "replicas", u.replicas, f.get("replicas"), out)
        _cmp(where, "tensor_parallel", u.tp, f.get("tensor_parallel"), out)
        _cmp(where, "batch", u.batch, f.get("batch"), out)
        want = engine_args(view, u, release)
        _cmp_args(f"{where}.args", want, list(f.get("args", [])), CHECKED_FLAGS[engine], out)
        script = root / f"{u.name}.sh"
        if not script.is_file():
            out.append(f"{u.name}.sh: missing")
            continue
        text = read_text(script)
        command = text[text.find("exec ") + 5 :] if "exec " in text else ""
        _cmp_args(f"{u.name}.sh", want, shlex.split(command.replace("\\\n", " ")), CHECKED_FLAGS[engine], out)
    for name in set(found) - {u.name for u in expected}:
        out.append(f"launch.json: units[{name}]: not a config of the plan")
    if (root / "routing.json").is_file():
        _check_routing(view, "routing.json", _load_json(root / "routing.json"), out)
    else:
        out.append("routing.json: missing")


def _k8s_workload(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((d for d in docs if d.get("kind") in ("Deployment", "LeaderWorkerSet")), None)


def _check_k8s(view: PlanView, root: Path, out: list[str]) -> None:
    release = release_for(view)
    for u in view.units:
        file = f"{u.name}.yaml"
        if not (root / file).is_file():
            out.append(f"{file}: missing (pool {u.pool} on {u.device.id})")
            continue
        obj = _k8s_workload(load_docs(read_text(root / file)))
        if obj is None:
            out.append(f"{file}: no Deployment or LeaderWorkerSet")
            continue
        spec = obj.get("spec", {})
        _cmp(file, "spec.replicas", u.replicas, spec.get("replicas"), out)
        lws = obj["kind"] == "LeaderWorkerSet"
        template = spec["leaderWorkerTemplate"]["leaderTemplate"] if lws else spec.get("template", {})
        if lws:
            _cmp(
                file,
                "spec.leaderWorkerTemplate.size",
                u.nodes_per_replica,
                spec["leaderWorkerTemplate"].get("size"),
                out,
            )
        main = (template.get("spec", {}).get("containers") or [{}])[0]
        _, _, quantities = scheduling(u)
        limits = main.get("resources", {}).get("limits", {})
        for key, value in quantities.items():
            if key in RESOURCE.values():
                _cmp(file, f"containers[0].resources.limits.{key}", value, limits.get(key), out)
        note = obj.get("metadata", {}).get("annotations", {})
        _cmp(
            file,
            "metadata.annotations.hetplace.io/tensor-parallel",
            str(u.tp),
            note.get("hetplace.io/tensor-parallel"),
            out,
        )
        _cmp(file, "metadata.annotations.hetplace.io/batch", str(u.batch), note.get("hetplace.io/batch"), out)
        if engine_served(u):
            args = [*main.get("command", []), *main.get("args", [])]
            if lws:
                args = shlex.split(" ".join(main.get("args", [])).split("&&", 1)[-1])
            _cmp_args(f"{file}: containers[0]", engine_args(view, u, release), args, CHECKED_FLAGS[release.engine], out)
    cm_file = root / "routing-configmap.yaml"
    if not cm_file.is_file():
        out.append("routing-configmap.yaml: missing")
        return
    cm = next((d for d in load_docs(read_text(cm_file)) if d.get("kind") == "ConfigMap"), {})
    if cm.get("metadata", {}).get("name") != ROUTING_CONFIGMAP:
        out.append(f"routing-configmap.yaml: metadata.name: expected {ROUTING_CONFIGMAP}")
    try:
        routing = json.loads(cm.get("data", {}).get("routing.json", "{}"))
    except json.JSONDecodeError:
        routing = {}
        out.append("routing-configmap.yaml: data.routing.json: not valid JSON")
    _check_routing(view, "routing-configmap.yaml: data.routing.json", routing, out)
    kust = load_docs(read_text(root / "kustomization.yaml")) if (root / "kustomization.yaml").is_file() else []
    listed = set(kust[0].get("resources", [])) if kust else set()
    for name in [f"{u.name}.yaml" for u in view.units] + ["routing-configmap.yaml"]:
        if name not in listed:
            out.append(f"kustomization.yaml: resources: {name} not listed")


def _check_dynamo(view: PlanView, root: Path, out: list[str]) -> None:
    for model_id, units in disaggregated_families(view).items():
        file = f"dynamo-{slug(model_id)}.yaml"
        if not (root / file).is_file():
            out.append(f"{file}: missing (disaggregated family {model_id})")
            continue
        docs = load_docs(read_text(root / file))
        services = (docs[0].get("spec", {}).get("services", {}) if docs else {}) or {}
        for u in units:
            s = services.get(u.name)
            if s is None:
                out.append(f"{file}: spec.services.{u.name}: missing")
                continue
            _cmp(file, f"spec.services.{u.name}.replicas", u.replicas, s.get("replicas"), out)
            _cmp(
                file,
                f"spec.services.{u.name}.resources.limits.gpu",
                str(u.tp),
                s.get("resources", {}).get("limits", {}).get("gpu"),
                out,
            )
            line = " ".join(s.get("extraPodSpec", {}).get("mainContainer", {}).get("args", []))
            _cmp_args(
                f"{file}: spec.services.{u.name}",
                worker_args(view, u),
                command_args(line),
                CHECKED_FLAGS["dynamo"],
                out,
            )


def _check_purchase(view: PlanView, root: Path, out: list[str]) -> None:
    if not (root / "purchase-order.csv").is_file():
        out.append("purchase-order.csv: missing")
        return
    text = read_text(root / "purchase-order.csv")
    rows = {r["device"]: r for r in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))}
    for ln in purchase_lines(view, None):
        r = rows.get(ln.device.id)
        where = f"purchase-order.csv: {ln.device.id}"
        if r is None:
            out.append(f"{where}: missing")
            continue
        for field, want in (
            ("bought", ln.bought),
            ("rented", ln.rented),
            ("owned_kept", ln.owned_kept),
            ("owned_retired", ln.owned_retired),
        ):
            _cmp(where, field, str(want), r.get(field), out)


def verify_export(plan: Plan, resolved: ResolvedScenario, plan_source: str, export_dir: Path) -> list[str]:
    """Mismatches between the export in `export_dir` and the plan (empty: they agree)."""
    root = Path(export_dir)
    if not (root / INDEX).is_file():
        raise InputError.single(str(root), "--export", f"no {INDEX}: not a folder written by `hetplace export`")
    index = _load_json(root / INDEX)
    try:
        fmt = ExportFormat(str(index.get("format")))
    except ValueError:
        raise InputError.single(str(root / INDEX), "format", f"unknown format {index.get('format')!r}") from None
    view = build_view(plan, resolved, plan_source, needs_hf_repo(fmt))
    out: list[str] = []
    want_hash = view.header.plan_sha256
    got_hash = (index.get("hetplace") or {}).get("plan_sha256")
    if got_hash != want_hash:
        out.append(f"{INDEX}: hetplace.plan_sha256: export is of plan {got_hash}, this plan is {want_hash}")
    for name in index.get("files", []):
        path = root / name
        if not path.is_file():
            out.append(f"{name}: listed in {INDEX} but missing")
        elif want_hash not in read_text(path):
            out.append(f"{name}: header: no plan sha256 {want_hash[:12]}… (written for another plan?)")
    if fmt in (ExportFormat.vllm, ExportFormat.sglang):
        _check_engine(view, root, fmt.value, out)
    elif fmt == ExportFormat.k8s:
        _check_k8s(view, root, out)
    elif fmt == ExportFormat.dynamo:
        _check_dynamo(view, root, out)
    else:
        _check_purchase(view, root, out)
    return out
