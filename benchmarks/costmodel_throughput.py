"""Cost-model throughput: configs evaluated per second, vectorised menu vs a plain per-config loop.

Run: python -m benchmarks.costmodel_throughput [--configs N]
Prints a table and the speed-up ratio. Not part of the test suite (speed is measured here, never asserted).
"""

from __future__ import annotations

import argparse
import platform
import time

from rich.console import Console
from rich.table import Table

from hetplace.catalogs.loader import load_catalog
from hetplace.catalogs.schema import Dtype
from hetplace.costmodels.analysis import analyze_llm
from hetplace.costmodels.llm_perf import evaluate_menu


def _menu_axes(catalog, target: int):
    devices = [d for d in catalog.devices.values() if d.kind.value != "cpu"]
    tps = [1, 2, 4, 8]
    dtypes = [Dtype.bf16, Dtype.fp8]
    per_batch = len(devices) * len(tps) * len(dtypes)
    n_batches = max(1, target // per_batch)
    batches = list(range(1, n_batches + 1))
    return devices, tps, batches, dtypes


def run(target_configs: int = 1_000_000, loop_configs: int = 300, repeats: int = 3) -> dict[str, float]:
    catalog = load_catalog()
    model = catalog.model("llama-3.1-70b")
    devices, tps, batches, dtypes = _menu_axes(catalog, target_configs)
    evaluate_menu(model, "decode", devices[:1], tps, batches[:4], dtypes, 1, 0, 4096)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        menu = evaluate_menu(model, "decode", devices, tps, batches, dtypes, 1, 0, 4096)
        best = min(best, time.perf_counter() - t0)
    vec_rate = len(menu) / best

    h100 = catalog.device("h100-sxm")
    t0 = time.perf_counter()
    for i in range(loop_configs):
        analyze_llm(model, h100, tps[i % 3 + 1], "decode", 1 + i % 64, 1, 4096)
    loop_rate = loop_configs / (time.perf_counter() - t0)
    return {
        "vector_configs": float(len(menu)),
        "vector_s": best,
        "vector_rate": vec_rate,
        "loop_configs": float(loop_configs),
        "loop_rate": loop_rate,
        "ratio": vec_rate / loop_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1_000_000, help="size of the vectorised menu")
    parser.add_argument("--loop-configs", type=int, default=300)
    args = parser.parse_args()
    r = run(args.configs, args.loop_configs)
    table = Table(title=f"Cost-model throughput (llama-3.1-70b decode; {platform.processor() or platform.machine()})")
    for col in ("path", "configs", "configs / s"):
        table.add_column(col, justify="left" if col == "path" else "right")
    table.add_row("vectorised menu (numpy)", f"{r['vector_configs']:,.0f}", f"{r['vector_rate']:,.0f}")
    table.add_row("per-config loop", f"{r['loop_configs']:,.0f}", f"{r['loop_rate']:,.0f}")
    console = Console()
    console.print(table)
    console.print(f"speed-up: {r['ratio']:,.0f}×")


if __name__ == "__main__":
    main()
