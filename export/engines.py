"""Engine launch arguments for one deployment unit (vLLM or SGLang at the release named in `engine_flags`), and the
`vllm` / `sglang` export: one launch script per unit plus `launch.json` (every unit's arguments, machine-readable)
and `routing.json`.

Mapping from the plan: model → its Hugging Face repo; tensor_parallel → the tensor-parallel size; batch → the most
sequences a replica runs at once (vLLM --max-num-seqs, SGLang --max-running-requests); weight dtype → --dtype
(16-bit activations: bf16 where the device has it, else fp16, as the cost model assumes) and --quantization fp8
when the plan quantises a 16-bit model to fp8 on the fly; KV dtype → --kv-cache-dtype (fp8, else the model's
16-bit "auto"); the longest context of a served step → the max model length; disaggregated pools → the engine's
prefill/decode roles with its KV-transfer settings. Pools no engine runs (encoders for images/audio, retrieval,
tools) are listed, not launched.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from hetplace.catalogs.schema import Device, DeviceKind, Dtype
from hetplace.common.enums import Phase
from hetplace.common.errors import InputError
from hetplace.export.engine_flags import (
    ENGINES,
    SGLANG_TRANSFER_BACKEND,
    VLLM_KV_CONNECTOR,
    EngineRelease,
)
from hetplace.export.plan_view import ENGINE_PHASES, PlanView, Unit

SIXTEEN_BIT = (Dtype.bf16, Dtype.fp16)


def platform(device: Device) -> str:
    """The engine build a device needs: cuda (NVIDIA), rocm (AMD GPUs), hpu (Intel Gaudi), tpu (Google), cpu."""
    if device.kind == DeviceKind.cpu:
        return "cpu"
    vendor = device.vendor.lower()
    if vendor == "nvidia":
        return "cuda"
    if vendor == "amd":
        return "rocm"
    if vendor == "google":
        return "tpu"
    if vendor == "intel":
        return "hpu"
    return "cuda"


def engine_served(unit: Unit) -> bool:
    return unit.phase in ENGINE_PHASES and unit.model is not None


def activation_dtype(unit: Unit) -> str:
    """--dtype: fp16 models and devices without bf16 run in float16, every other model in bfloat16."""
    assert unit.model is not None
    own = unit.model.weight_dtype
    weights = unit.weight_dtype or own
    if Dtype.fp16 in (own, weights) or not unit.device.supports(Dtype.bf16):
        return "float16"
    return "bfloat16"


def _problem(view: PlanView, unit: Unit, field: str, message: str) -> InputError:
    return InputError.single(view.plan_source, f"pools[{unit.index}].{field}", message)


def quantization(view: PlanView, unit: Unit) -> str | None:
    """None when the checkpoint is served as published (its own format, or 16-bit as 16-bit); 'fp8' for on-the-fly
    fp8 of a 16-bit model (both engines); anything else needs a pre-quantised checkpoint hetplace cannot name."""
    assert unit.model is not None
    own = unit.model.weight_dtype
    weights = unit.weight_dtype or own
    if weights == own or (weights in SIXTEEN_BIT and own in SIXTEEN_BIT):
        return None
    if weights == Dtype.fp8 and own in SIXTEEN_BIT:
        return "fp8"
    raise _problem(
        view,
        unit,
        "weight_dtype",
        f"{weights.value} weights of '{unit.model.id}' (published in {own.value}) need a pre-quantised checkpoint; "
        "the engines only quantise 16-bit weights to fp8 on the fly — point the model's hf_repo at such a checkpoint",
    )


def engine_args(view: PlanView, unit: Unit, release: EngineRelease) -> list[str]:
    """The full launch command of one unit's replica."""
    model = unit.model
    assert model is not None and model.hf_repo is not None
    plat = platform(unit.device)
    vllm = release.engine == "vllm"
    args = list(release.command)
    args += [model.hf_repo] if release.positional_model else ["--model-path", model.hf_repo]
    args += ["--host", "0.0.0.0", "--port", str(release.port), "--served-model-name", model.id]
    if vllm and plat in ("tpu", "hpu", "cpu"):
        args += ["--device", plat]
    if not vllm:
        if plat == "tpu":
            raise _problem(view, unit, "device", f"SGLang {release.version} has no TPU backend ({unit.device.id})")
        args += ["--device", {"rocm": "cuda"}.get(plat, plat)]
    args += ["--tensor-parallel-size" if vllm else "--tp-size", str(unit.tp)]
    args += ["--dtype", activation_dtype(unit)]
    quant = quantization(view, unit)
    if quant is not None:
        args += ["--quantization", quant]
    if unit.phase == Phase.embed:
        args += ["--task", "embed"] if vllm else ["--is-embedding"]
    else:
        kv = unit.kv_dtype or model.kv_dtype
        fp8 = "fp8" if vllm else "fp8_e4m3"
        args += ["--kv-cache-dtype", fp8 if kv == Dtype.fp8 else "auto"]
    args += ["--max-num-seqs" if vllm else "--max-running-requests", str(unit.batch)]
    if unit.max_model_len is not None:
        args += ["--max-model-len" if vllm else "--context-length", str(unit.max_model_len)]
    if unit.phase in (Phase.prefill, Phase.decode):
        if vllm:
            role = "kv_producer" if unit.phase == Phase.prefill else "kv_consumer"
            config = {"kv_connector": VLLM_KV_CONNECTOR, "kv_role": role}
            args += ["--kv-transfer-config", json.dumps(config, separators=(",", ":"))]
        else:
            args += ["--disaggregation-mode", unit.phase.value]
            args += ["--disaggregation-transfer-backend", SGLANG_TRANSFER_BACKEND]
    return args


def flag_values(args: list[str]) -> dict[str, str]:
    """{flag: value} of an argument list ('' for a switch); the inverse of engine_args for the checker."""
    out: dict[str, str] = {}
    for i, a in enumerate(args):
        if a.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else ""
            out[a] = "" if nxt.startswith("--") else nxt
    return out


def script(header_lines: list[str], unit: Unit, release: EngineRelease, args: list[str]) -> str:
    lines = ["#!/bin/sh", *[f"# {h}" for h in header_lines]]
    lines += [
        f"# pool {unit.pool} ({unit.route}) on {unit.device.id}: {unit.replicas} replica(s) of tp={unit.tp}, "
        f"batch {unit.batch}; start this command once per replica, each on its own {unit.tp} device(s)",
        f"# {release.engine} {release.version}",
        "exec " + " \\\n  ".join(" ".join(shlex.quote(a) for a in group) for group in _groups(args)),
    ]
    return "\n".join(lines) + "\n"


def _groups(args: list[str]) -> list[list[str]]:
    """The command and its positional model on the first line, then one flag (with its value) per line."""
    groups: list[list[str]] = [[]]
    for a in args:
        if a.startswith("--"):
            groups.append([a])
        else:
            groups[-1].append(a)
    return groups


def engine_files(view: PlanView, engine: str) -> dict[str, str]:
    """File name → text of the vllm / sglang export."""
    from hetplace.export.routing import routing_table

    release = ENGINES[engine]
    files: dict[str, str] = {}
    units: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for u in view.units:
        if not engine_served(u):
            others.append(
                {"name": u.name, "pool": u.pool, "phase": u.phase.value, "device": u.device.id, "replicas": u.replicas}
            )
            continue
        args = engine_args(view, u, release)
        files[f"{u.name}.sh"] = script(view.header.lines(), u, release, args)
        units.append(
            {
                "name": u.name,
                "pool": u.pool,
                "phase": u.phase.value,
                "route": u.route,
                "device": u.device.id,
                "platform": platform(u.device),
                "replicas": u.replicas,
                "tensor_parallel": u.tp,
                "batch": u.batch,
                "script": f"{u.name}.sh",
                "args": args,
            }
        )
    launch = {
        "hetplace": view.header.as_dict(),
        "engine": release.engine,
        "engine_version": release.version,
        "engine_sources": list(release.sources),
        "units": units,
        "not_engine_served": others,
        "note": "not_engine_served: encoder, retrieval and tool pools; deploy your own service for them "
        "(the k8s export gives each a placeholder Deployment)",
    }
    files["launch.json"] = json.dumps(launch, indent=2) + "\n"
    files["routing.json"] = json.dumps({"hetplace": view.header.as_dict(), "steps": routing_table(view)}, indent=2)
    files["routing.json"] += "\n"
    return files
