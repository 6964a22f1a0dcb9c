"""Sweep results as files: CSV and JSON rows, and the charts (each written atomically)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from hetplace.common.io import atomic_write_text, dump_json
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.sweep_plots import plot_pareto, plot_tco_vs_axis
from hetplace.whatif.sweep import Axis

COLUMNS = (
    "status",
    "total_usd_per_year",
    "usd_per_request",
    "purchases_usd",
    "mean_critical_path_s",
    "gap",
    "wall_time_s",
)


def _counts(d: dict[str, int]) -> str:
    return ";".join(f"{k}:{v}" for k, v in sorted(d.items()))


def results_csv(results: Sequence[PointResult], axes: Sequence[Axis]) -> str:
    """One row per point: its parameters, status, costs, latency, solver numbers, fleet and diagnosis."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    specs = [a.spec for a in axes]
    w.writerow(["index", *specs, *COLUMNS, "devices", "bought", "rented", "owned_idle", "diagnosis", "error"])
    for r in results:
        w.writerow(
            [
                r.index,
                *[r.params.get(s) for s in specs],
                *["" if getattr(r, c) is None else getattr(r, c) for c in COLUMNS],
                _counts(r.devices),
                _counts(r.bought),
                _counts(r.rented),
                _counts(r.owned_idle),
                " | ".join(r.diagnosis),
                r.error or "",
            ]
        )
    return buf.getvalue()


def chart_name(spec: str) -> str:
    return "tco_vs_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", spec).strip("_") + ".png"


def write_outputs(results: Sequence[PointResult], axes: Sequence[Axis], out_dir: Path) -> list[Path]:
    """points.csv, points.json, one TCO chart per axis and the latency–TCO Pareto chart. Returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "points.csv", out_dir / "points.json"]
    atomic_write_text(written[0], results_csv(results, axes))
    atomic_write_text(written[1], dump_json([r.model_dump(mode="json") for r in results]))
    for axis in axes:
        path = out_dir / chart_name(axis.spec)
        plot_tco_vs_axis(results, axis.spec, path)
        written.append(path)
    if sum(r.total_usd_per_year is not None for r in results) >= 2:
        path = out_dir / "pareto_latency_tco.png"
        plot_pareto(results, path)
        written.append(path)
    return written
