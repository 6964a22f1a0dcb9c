"""TCO of the default scenario with service-time SLAs vs p90 and p99 SLAs (issue 16).

Run: python -m benchmarks.percentile_sla [--gap G] [--time-limit S] [--variants service,p90,p99,p90-nocap,p99-nocap]
Each variant gives every bundled workflow of the default scenario the same SLA target with `percentile` set (none
for "service"); "-nocap" also drops the scenario's stated `max_utilisation`, so pools serving only percentile SLAs
are sized by their queueing delay alone. Prints TCO, fleet and solve time per variant and checks every plan with
the independent checker. Timings are CPU seconds of this process (shared machines: wall time means little).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from hetplace.optimizer.checker import check_plan
from hetplace.optimizer.solve import solve_scenario
from hetplace.problems.loader import bundled_workflow_path, default_scenario_path, load_scenario

VARIANTS = ("service", "p90", "p99", "p90-nocap", "p99-nocap")


def variant_scenario(folder: Path, name: str) -> Path:
    """Write the default scenario as variant `name` into `folder` (workflow copies beside it) and return its path."""
    scenario: dict[str, Any] = yaml.safe_load(default_scenario_path().read_text())
    percentile = None if name == "service" else float(name[1:3])
    entries = []
    for entry in scenario["workflows"]:
        wf = yaml.safe_load(bundled_workflow_path(entry["workflow"]).read_text())
        if percentile is not None:
            wf["sla"]["percentile"] = percentile
        (folder / f"{wf['id']}.yaml").write_text(yaml.safe_dump(wf, sort_keys=False))
        entries.append({"path": f"{wf['id']}.yaml"})
    scenario["workflows"] = entries
    if name.endswith("-nocap"):
        scenario["limits"].pop("max_utilisation", None)
    path = folder / "default.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def run(variants: list[str], gap: float, time_limit: float | None) -> list[dict[str, Any]]:
    rows = []
    for name in variants:
        with tempfile.TemporaryDirectory() as tmp:
            resolved = load_scenario(variant_scenario(Path(tmp), name))
            t0 = time.process_time()
            outcome = solve_scenario(resolved, "highs", time_limit, gap, 1, False)
            cpu_s = time.process_time() - t0
            plan = outcome.plan
            rows.append(
                {
                    "variant": name,
                    "status": outcome.status,
                    "tco_usd_per_year": plan.tco.total_usd_per_year if plan else None,
                    "gap": plan.solver.gap if plan else None,
                    "fleet": ", ".join(f"{e.owned_used + e.bought + e.rented} {e.device}" for e in plan.fleet)
                    if plan
                    else "",
                    "check": len(check_plan(resolved, plan)) if plan else None,
                    "cpu_s": cpu_s,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    rows = run(args.variants.split(","), args.gap, args.time_limit)
    table = Table(title="Default scenario: service-time vs percentile SLAs (HiGHS, 1 thread)")
    for col in ("variant", "status", "TCO USD/year", "gap", "violations", "CPU s", "fleet in service"):
        table.add_column(col)
    for r in rows:
        tco = f"{r['tco_usd_per_year']:,.0f}" if r["tco_usd_per_year"] is not None else "-"
        gap = f"{r['gap']:.2%}" if r["gap"] is not None else "-"
        table.add_row(r["variant"], r["status"], tco, gap, str(r["check"]), f"{r['cpu_s']:.0f}", r["fleet"])
    Console().print(table)


if __name__ == "__main__":
    main()
