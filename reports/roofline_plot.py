"""Roofline chart: attainable FLOP/s vs operational intensity for devices, with operators as points."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hetplace.catalogs.schema import Device, Dtype
from hetplace.reports.figures import pyplot, save_png


def attainable_flops(device: Device, dtype: Dtype, oi: np.ndarray) -> np.ndarray:
    """min(peak, OI × bandwidth) at datasheet peaks (efficiency 1): the roof itself."""
    return np.minimum(device.peak_tflops[dtype] * 1e12, oi * device.mem_bw_gbs * 1e9)


def plot_roofline(
    devices: Sequence[Device], dtype: Dtype, operators: Sequence[dict[str, Any]], out: Path, title: str = ""
) -> None:
    """Write a log-log roofline PNG; each operator is drawn at (OI, achieved FLOP/s = flops / latency)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ois = [o["oi"] for o in operators if o["oi"] > 0]
    lo = min([0.1, *ois]) / 2
    hi = max([1e4, *ois]) * 2
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    for dev in devices:
        dt = dtype if dtype in dev.peak_tflops else max(dev.peak_tflops, key=lambda d: dev.peak_tflops[d])
        ax.plot(grid, attainable_flops(dev, dt, grid), label=f"{dev.id} ({dt.value} peak, {dev.mem_bw_gbs:g} GB/s)")
    for op in operators:
        if op["flops"] <= 0 or op["latency_s"] <= 0:
            continue
        achieved = op["flops"] / op["latency_s"]
        marker = {"compute": "o", "memory": "s", "comm": "^"}.get(op["bound"], "o")
        ax.scatter([op["oi"]], [achieved], marker=marker, zorder=3)
        ax.annotate(op["name"], (op["oi"], achieved), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOPs / byte)")
    ax.set_ylabel("FLOP/s (roof: datasheet; points: modelled)")
    ax.set_title(title or "Roofline")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_png(fig, out)
