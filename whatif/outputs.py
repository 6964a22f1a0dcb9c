"""Sweep results as files: CSV and JSON rows, and the charts (each written atomically; the folder as a whole with
`write_sweep_folder`). An interrupted sweep writes the points it finished and a `partial.json` saying so."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from hetplace.common.io import atomic_write_text, dump_json
from hetplace.common.output_paths import staged_folder
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.sweep_plots import plot_pareto, plot_tco_vs_axis
from hetplace.whatif.sweep import Axis

FOLDER_FILES = ("points.csv", "points.json")  # what marks a folder as a previous sweep's (common.output_paths)
PARTIAL_FILE = "partial.json"

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


def partial_note(results: Sequence[PointResult], planned: int) -> dict[str, object]:
    """What an interrupted sweep finished and what it did not (partial.json)."""
    done = {r.index for r in results}
    return {
        "partial": True,
        "reason": "interrupted (Ctrl-C) before every point was solved",
        "points_finished": len(done),
        "points_planned": planned,
        "missing_indices": [i for i in range(planned) if i not in done],
    }


def write_outputs(
    results: Sequence[PointResult], axes: Sequence[Axis], out_dir: Path, planned: int | None = None
) -> list[Path]:
    """points.csv, points.json, one TCO chart per axis and the latency–TCO Pareto chart, plus partial.json when
    fewer than `planned` points finished. Returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "points.csv", out_dir / "points.json"]
    atomic_write_text(written[0], results_csv(results, axes))
    atomic_write_text(written[1], dump_json([r.model_dump(mode="json") for r in results]))
    if planned is not None and len(results) < planned:
        written.append(out_dir / PARTIAL_FILE)
        atomic_write_text(written[-1], dump_json(partial_note(results, planned)))
    for axis in axes:
        path = out_dir / chart_name(axis.spec)
        plot_tco_vs_axis(results, axis.spec, path)
        written.append(path)
    if sum(r.total_usd_per_year is not None for r in results) >= 2:
        path = out_dir / "pareto_latency_tco.png"
        plot_pareto(results, path)
        written.append(path)
    return written


def write_sweep_folder(
    results: Sequence[PointResult], axes: Sequence[Axis], out_dir: Path, planned: int | None = None
) -> list[Path]:
    """`write_outputs` into a hidden sibling, renamed over `out_dir` when complete (no stale or half files)."""
    with staged_folder(out_dir) as stage:
        written = write_outputs(results, axes, stage, planned)
    return [out_dir / p.relative_to(stage) for p in written]
