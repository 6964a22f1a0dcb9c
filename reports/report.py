"""The batch report: one self-contained HTML page and one Markdown file for a batch of scenarios.

Each scenario gets its plan's fleet, TCO breakdown, utilisation per device, SLA slack per workflow, LLM operators
on the roofline coloured by placement, baselines and savings, and, when asked for, what-if charts and the purchase
schedule. PNGs are written beside the pages (`<scenario>/…png`) and referenced relatively, so the folder opens
offline and can be zipped or copied as a whole. Pages are written last and atomically.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from hetplace.common.io import atomic_write_text
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, SchedulePlan
from hetplace.problems.sweep_point import PointResult
from hetplace.reports.plan_charts import (
    device_utilisation,
    fleet_chart,
    placement_roofline,
    sla_chart,
    tco_chart,
    utilisation_chart,
)

FOLDER_FILES = ("report.html", "report.md")  # what marks a folder as a previous report (common.output_paths)


@dataclass
class ScenarioSection:
    resolved: ResolvedScenario
    plan: Plan | None
    status: str
    diagnosis: list[str] = field(default_factory=list)
    sweep: list[PointResult] = field(default_factory=list)
    sweep_charts: list[Path] = field(default_factory=list)  # already written, inside the report folder
    schedule: SchedulePlan | None = None
    folder: str = ""  # charts go to <report>/<folder>/; unique per section (default: the scenario id)


@dataclass
class Block:
    """One piece of a section, rendered to both HTML and Markdown."""

    kind: str  # heading | text | table | image
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)  # first row = header
    path: str = ""  # image path relative to the report folder


def _plan_blocks(section: ScenarioSection, out_dir: Path) -> list[Block]:
    plan, resolved = section.plan, section.resolved
    sid = section.folder or resolved.scenario.id
    blocks = [Block("heading", f"{resolved.scenario.name} ({resolved.scenario.id}, {resolved.source})")]
    if plan is None:
        blocks.append(Block("text", f"No plan: {section.status}."))
        blocks += [Block("text", f"Cause: {c}") for c in section.diagnosis]
        return blocks
    t = plan.tco
    s = plan.solver
    gap = "n/a" if s.gap is None else f"{s.gap:.2%}"
    blocks.append(
        Block(
            "text",
            f"{section.status}: {t.total_usd_per_year:,.0f} USD/year, {t.usd_per_request:.5f} USD/request, "
            f"{t.usd_per_million_tokens:.4f} USD per 1M tokens; purchases up front {t.purchases_usd:,.0f} USD. "
            f"Solved by {s.backend} in {s.wall_time_s:.1f} s (gap {gap}).",
        )
    )
    charts = out_dir / sid
    charts.mkdir(parents=True, exist_ok=True)
    drawn = [
        ("Fleet composition", "fleet.png", lambda p: fleet_chart(plan, p)),
        ("TCO breakdown", "tco.png", lambda p: tco_chart(plan, p)),
        ("Utilisation per device type", "utilisation.png", lambda p: utilisation_chart(plan, p)),
        ("SLA slack per workflow", "sla.png", lambda p: sla_chart(plan, p)),
        ("Operators on the roofline, by placement", "roofline.png", lambda p: placement_roofline(resolved, plan, p)),
    ]
    fleet_rows = [["device", "owned used", "owned idle", "bought", "rented", "utilisation"]]
    util = device_utilisation(plan)
    for e in plan.fleet:
        fleet_rows.append(
            [
                e.device,
                str(e.owned_used),
                str(e.owned_idle),
                str(e.bought),
                str(e.rented),
                f"{util.get(e.device, 0):.0%}",
            ]
        )
    blocks += [Block("heading", "Fleet"), Block("table", rows=fleet_rows)]
    sla_rows = [["workflow", "req/s", "critical path s", "SLA s", "slack s"]]
    for w in plan.workflows:
        sla_rows.append(
            [w.workflow, f"{w.arrival_rate_rps:g}", f"{w.critical_path_s:.2f}", f"{w.sla_s:g}", f"{w.slack_s:.2f}"]
        )
    blocks += [Block("heading", "Workflows"), Block("table", rows=sla_rows)]
    for title, name, draw in drawn:
        draw(charts / name)
        blocks += [Block("heading", title), Block("image", text=title, path=f"{sid}/{name}")]
    blocks += _baseline_blocks(plan)
    blocks += _sweep_blocks(section, out_dir)
    blocks += _schedule_blocks(section.schedule)
    blocks.append(Block("heading", "Assumptions"))
    blocks += [Block("text", f"• {a}") for a in plan.assumptions]
    return blocks


def _baseline_blocks(plan: Plan) -> list[Block]:
    if not plan.baselines:
        return []
    rows = [["single-accelerator fleet", "status", "TCO USD/year", "heterogeneous plan saves"]]
    for b in sorted(plan.baselines, key=lambda b: (b.total_usd_per_year is None, b.total_usd_per_year or 0)):
        rows.append(
            [
                b.device,
                b.status,
                "—" if b.total_usd_per_year is None else f"{b.total_usd_per_year:,.0f}",
                "—" if b.saving_fraction is None else f"{b.saving_fraction:.1%}",
            ]
        )
    return [Block("heading", "Baselines"), Block("table", rows=rows)]


def _sweep_blocks(section: ScenarioSection, out_dir: Path) -> list[Block]:
    if not section.sweep:
        return []
    params = list(section.sweep[0].params)
    rows = [[*params, "status", "TCO USD/year", "mean critical path s", "bought"]]
    for r in section.sweep:
        rows.append(
            [
                *[str(r.params[p]) for p in params],
                r.status if not r.diagnosis else f"{r.status}: {r.diagnosis[0]}",
                "—" if r.total_usd_per_year is None else f"{r.total_usd_per_year:,.0f}",
                "—" if r.mean_critical_path_s is None else f"{r.mean_critical_path_s:.2f}",
                " ".join(f"{d}×{n}" for d, n in r.bought.items()),
            ]
        )
    blocks = [Block("heading", "What-if"), Block("table", rows=rows)]
    for chart in section.sweep_charts:
        blocks.append(Block("image", text=chart.stem, path=chart.relative_to(out_dir).as_posix()))
    return blocks


def schedule_rows(schedule: SchedulePlan) -> list[list[str]]:
    """The purchase schedule as text rows (first row = header), for the report and the CLI table."""
    rows = [["period", "demand ×", "bought", "bought so far", "rented", "cost USD"]]
    for p in schedule.periods:
        rows.append(
            [
                str(p.period),
                f"{p.demand_factor:.2f}",
                " ".join(f"{d}×{n}" for d, n in p.bought.items()) or "—",
                " ".join(f"{d}×{n}" for d, n in p.held.items()) or "—",
                " ".join(f"{e.device}×{e.rented}" for e in p.plan.fleet if e.rented) or "—",
                f"{p.cost_usd:,.0f}",
            ]
        )
    return rows


def _schedule_blocks(schedule: SchedulePlan | None) -> list[Block]:
    if schedule is None:
        return []
    rows = schedule_rows(schedule)
    text = f"Horizon cost {schedule.total_usd:,.0f} USD, purchases {schedule.purchases_usd:,.0f} USD."
    if schedule.greedy_total_usd is not None:
        text += (
            f" Planned period by period (myopically) it would cost {schedule.greedy_total_usd:,.0f} USD "
            f"({schedule.greedy_excess_fraction:+.1%})."
        )
    return [Block("heading", "Purchase schedule"), Block("text", text), Block("table", rows=rows)]


def _html(blocks_by_scenario: list[list[Block]], title: str) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}h2{border-top:2px solid "
        "#444;padding-top:.6em;margin-top:2em}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for blocks in blocks_by_scenario:
        for i, b in enumerate(blocks):
            if b.kind == "heading":
                tag = "h2" if i == 0 else "h3"
                parts.append(f"<{tag}>{e(b.text)}</{tag}>")
            elif b.kind == "text":
                parts.append(f"<p>{e(b.text)}</p>")
            elif b.kind == "image":
                parts.append(f'<p><img src="{e(b.path)}" alt="{e(b.text)}"></p>')
            elif b.kind == "table":
                head, *body = b.rows
                parts.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>")
                parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
                parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _markdown(blocks_by_scenario: list[list[Block]], title: str) -> str:
    lines = [f"# {title}", ""]
    for blocks in blocks_by_scenario:
        for i, b in enumerate(blocks):
            if b.kind == "heading":
                lines += [("## " if i == 0 else "### ") + b.text, ""]
            elif b.kind == "text":
                lines += [b.text, ""]
            elif b.kind == "image":
                lines += [f"![{b.text}]({b.path})", ""]
            elif b.kind == "table":
                head, *body = b.rows
                lines.append("| " + " | ".join(head) + " |")
                lines.append("|" + "---|" * len(head))
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
                lines.append("")
    return "\n".join(lines)


def unique_folders(ids: list[str]) -> list[str]:
    """Scenario ids made unique as folder names (two files may share an id)."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    return out


def write_report(sections: list[ScenarioSection], out_dir: Path, title: str = "hetplace fleet report") -> list[Path]:
    """Charts first, then report.html and report.md (atomically). Returns the two pages. The CLI passes a staged
    folder (`common.output_paths.staged_folder`) that replaces the report folder as a whole once this returns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = [_plan_blocks(s, out_dir) for s in sections]
    pages = [out_dir / "report.html", out_dir / "report.md"]
    atomic_write_text(pages[0], _html(blocks, title))
    atomic_write_text(pages[1], _markdown(blocks, title))
    return pages
