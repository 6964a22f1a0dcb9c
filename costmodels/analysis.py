"""What `hetplace analyze` reports: one config's operator table, or every workflow step on every device.

Pure functions returning plain dicts (the `--json` shape); the CLI only renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hetplace.catalogs.engine_schema import SchedulerDefaults
from hetplace.catalogs.loader import Catalog
from hetplace.catalogs.schema import Device, Dtype, ModelArch
from hetplace.common.errors import InputError
from hetplace.costmodels.capacity import engine_limits, min_devices_for_weights
from hetplace.costmodels.engine_terms import NEUTRAL, TERMS, EngineArrays, ServingParams, isolate
from hetplace.costmodels.llm_ops import kv_bytes_per_token, weight_bytes
from hetplace.costmodels.llm_perf import evaluate_pass, feasible_tp, phase_shape
from hetplace.costmodels.nonllm import StepCost, encoder_cost, encoder_tokens_per_item, retrieval_cost, tool_cost
from hetplace.costmodels.precision import Precision, unsupported_reason
from hetplace.costmodels.roofline import DeviceArrays
from hetplace.costmodels.serving import ServingMode, serving_estimate
from hetplace.costmodels.step_shape import llm_call_shape
from hetplace.costmodels.tco import DEFAULT_ECONOMICS, HOURS_PER_YEAR, EconomicsInputs, bought_device_year


def _money(x: float) -> float | None:
    """JSON has no NaN: an unknown price is None."""
    return float(x) if np.isfinite(x) else None


def hourly_usd(device: Device, econ: EconomicsInputs = DEFAULT_ECONOMICS) -> float:
    """Cost of one device-hour: bought (amortised capex + energy + hosting) if it has a price, else rented."""
    if device.capex_usd is not None:
        return bought_device_year(device.capex_usd, device.tdp_w, econ).total_usd / HOURS_PER_YEAR
    if device.cloud_usd_per_hour is not None:
        return device.cloud_usd_per_hour
    return float("nan")


def analyze_llm(
    model: ModelArch,
    device: Device,
    tp: int,
    phase: str,
    batch: int,
    prompt_tokens: float,
    context_tokens: float,
    dtype: Dtype | str | None = None,
    cached_tokens: float = 0,
    kv_dtype: Dtype | str | None = None,
    params: ServingParams = NEUTRAL,
) -> dict[str, Any]:
    """Operator table and totals of one forward pass (prefill of the prompt, or one decode step). Token counts
    may be fractional: a pool is priced at the demand-weighted mean call (costmodels.step_shape). `params`: the
    (device, engine) terms; totals.terms gives the seconds each named term alone adds to this pass."""
    dtype = Dtype(dtype or model.weight_dtype)
    kv = Dtype(kv_dtype or model.kv_dtype)
    reason = unsupported_reason(device, dtype)
    if reason:
        raise InputError.single("--dtype", "dtype", reason)
    if not feasible_tp(model, device, tp):
        raise InputError.single(
            "--tp", "tp", f"tp={tp} must divide {model.num_heads} heads and be ≤ the reach of {device.id}"
        )
    precision = Precision(dtype, kv)
    shape = phase_shape(phase, batch, prompt_tokens, cached_tokens, context_tokens, tp)
    dev = DeviceArrays.of([device], [dtype])
    mem = np.array([device.mem_gb])

    def latency_with(p: ServingParams) -> float:
        return float(
            evaluate_pass(model, precision, shape, dev, mem, EngineArrays.of([p], [device], [dtype])).latency_s[0]
        )

    res = evaluate_pass(model, precision, shape, dev, mem, EngineArrays.of([params], [device], [dtype]))
    base = latency_with(NEUTRAL) if params != NEUTRAL else float(res.latency_s[0])
    terms = {
        name: latency_with(isolate(params, name)) - base if isolate(params, name) != NEUTRAL else 0.0 for name in TERMS
    }
    operators: list[dict[str, Any]] = []
    for op, t in zip(res.ops, res.timings, strict=True):
        operators.append(
            {
                "name": op.name,
                "flops": float(op.flops[0]),
                "bytes": float(op.bytes[0]),
                "oi": float(op.oi[0]),
                "cf_bytes": float(op.cf_bytes[0]),
                "latency_s": float(t.latency_s[0]),
                "bound": str(t.bound[0]),
            }
        )
    latency = float(res.latency_s[0])
    tokens = batch * (prompt_tokens - cached_tokens) if phase == "prefill" else batch
    totals = {
        "model": model.id,
        "device": device.id,
        "phase": phase,
        "tp": tp,
        "batch": batch,
        "dtype": dtype.value,
        "kv_dtype": kv.value,
        "prompt_tokens": prompt_tokens,
        "context_tokens": context_tokens,
        "latency_s": latency,
        "tokens_per_s": tokens / latency,
        "fits": bool(res.fits[0]),
        "max_batch": int(res.max_batch[0]),
        "cf_bytes": float(res.cf_bytes[0]),
        "weight_bytes_per_device": weight_bytes(model, precision) / tp,
        "kv_bytes_per_token_per_device": float(kv_bytes_per_token(model, precision, tp)),
        "min_devices_for_weights": min_devices_for_weights(model, precision, device.mem_gb),
        "flops": float(sum(o["flops"] for o in operators)),
        "bytes": float(sum(o["bytes"] for o in operators)),
        "terms": terms,
    }
    return {"operators": operators, "totals": totals}


def _llm_step_on_devices(
    model: ModelArch, devices: Sequence[Device], prompt: int, cached: int, output: int
) -> list[dict[str, Any]]:
    """Latency of one LLM call on each device at batch 1 with the smallest tensor-parallel degree that fits."""
    rows = []
    for dev in devices:
        if unsupported_reason(dev, model.weight_dtype):
            rows.append({"device": dev.id, "fits": False, "why": unsupported_reason(dev, model.weight_dtype)})
            continue
        precision = Precision(model.weight_dtype, model.kv_dtype)
        tp = min_devices_for_weights(model, precision, dev.mem_gb)
        while tp and not feasible_tp(model, dev, tp):
            tp *= 2
            tp = tp if tp <= 1024 else 0
        if not tp:
            rows.append({"device": dev.id, "fits": False, "why": "weights do not fit any tensor-parallel group"})
            continue
        table = DeviceArrays.of([dev], [model.weight_dtype])
        mem = np.array([dev.mem_gb])
        call = llm_call_shape(prompt, cached, output)  # one call: the step's first repeat
        pre = evaluate_pass(
            model, precision, phase_shape("prefill", 1, call.prompt_tokens, call.cached_tokens, 0, tp), table, mem
        )
        dec = evaluate_pass(
            model, precision, phase_shape("decode", 1, 0, 0, call.decode_context_tokens, tp), table, mem
        )
        ttft, tpot = float(pre.latency_s[0]), float(dec.latency_s[0])
        latency = ttft + output * tpot
        bound = next(t.bound[0] for t in dec.timings if t.name in ("ffn", "moe_experts"))
        rows.append(
            {
                "device": dev.id,
                "fits": bool(pre.fits[0] and dec.fits[0]),
                "tp": tp,
                "latency_s": latency,
                "ttft_s": ttft,
                "tpot_s": tpot,
                "usd_per_call": _money(latency * tp * hourly_usd(dev) / 3600.0),
                "why": f"decode {bound}-bound at batch 1",
            }
        )
    return rows


def _cost_rows(devices: Sequence[Device], cost: StepCost, why: str) -> list[dict[str, Any]]:
    rows = []
    for i, dev in enumerate(devices):
        if not cost.fits[i]:
            rows.append(
                {
                    "device": dev.id,
                    "fits": False,
                    "why": "tools run on CPUs" if why == "tool" else "does not fit in memory",
                }
            )
            continue
        rows.append(
            {
                "device": dev.id,
                "fits": True,
                "tp": 1,
                "latency_s": float(cost.latency_s[i]),
                "usd_per_call": _money(float(cost.busy_s[i]) * hourly_usd(dev) / 3600.0),
                "why": why,
            }
        )
    return rows


def analyze_workflow(workflow, catalog: Catalog, devices: Sequence[Device] | None = None) -> dict[str, Any]:
    """Each step of a workflow on every device: latency of one execution and its dollar cost at batch 1
    (a conservative, unbatched view: batching lowers cost per call, which the optimizer exploits)."""
    devices = list(devices or catalog.devices.values())
    steps = []
    for step in workflow.steps:
        if step.kind == "llm":
            rows = _llm_step_on_devices(
                catalog.model(step.model), devices, step.prompt_tokens, step.cached_prefix_tokens, step.output_tokens
            )
        elif step.kind in ("embed", "convert"):
            model = catalog.model(step.model)
            per_item = encoder_tokens_per_item(model, None if step.kind == "convert" else step.tokens_per_item)
            cost = encoder_cost(model, devices, step.items, per_item)
            rows = _cost_rows(devices, cost, "encoder pass")
        elif step.kind == "retrieval":
            cost = retrieval_cost(
                devices, step.corpus_vectors, step.dim, step.top_k, step.index, step.vector_dtype.value, step.queries
            )
            rows = _cost_rows(devices, cost, f"{step.index} search")
        else:
            rows = _cost_rows(devices, tool_cost(devices, step.latency_s, step.cpu_s), "tool")
        feasible = [r for r in rows if r["fits"] and r.get("usd_per_call") is not None]
        best = min(feasible, key=lambda r: r["usd_per_call"]) if feasible else None
        fastest = min(feasible, key=lambda r: r["latency_s"]) if feasible else None
        tier = catalog.device(best["device"]).tier.value if best else None
        steps.append(
            {
                "step": step.id,
                "kind": step.kind,
                "repeat": step.repeat,
                "devices": rows,
                "cheapest": best and best["device"],
                "cheapest_tier": tier,
                "fastest": fastest and fastest["device"],
            }
        )
    return {"workflow": workflow.id, "steps": steps}


def analyze_serving(
    model: ModelArch,
    device: Device,
    tp: int,
    dtype: Dtype | str | None,
    kv_dtype: Dtype | str | None,
    isl: int,
    osl: int,
    mode: ServingMode | str,
    load: int | None,
    phase: str = "decode",
    params: ServingParams = NEUTRAL,
    scheduler: SchedulerDefaults | None = None,
) -> dict[str, Any]:
    """`analyze` with --isl/--osl: the serving estimate of `mode`, plus the operator table of one pass of it (the
    decode step of the serving batch at the mean context ISL + OSL/2, or with phase='prefill' the prefill of
    the batch's prompts). `scheduler`: the engine's default limits (catalogs/engines), none for no engine."""
    weight = Dtype(dtype or model.weight_dtype)
    kv = Dtype(kv_dtype or model.kv_dtype)
    precision = Precision(weight, kv)
    limits = engine_limits(scheduler, device, model, precision, tp)
    est = serving_estimate(model, device, tp, precision, isl, osl, mode, load, params, limits)
    batch = int(est.batch)
    result = analyze_llm(model, device, tp, phase, batch, isl, isl + osl / 2.0, weight, 0, kv, params)
    return {**result, "serving": est.as_dict()}
