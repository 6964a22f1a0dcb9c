"""Charts of a what-if sweep: TCO against each swept parameter, and the latency–TCO Pareto front.

Infeasible and failed points are drawn (as crosses on the x axis), never dropped, so a gap in a curve is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hetplace.problems.sweep_point import PointResult
from hetplace.reports.figures import pyplot, save_png


@dataclass(frozen=True)
class _Priced:
    """A sweep row that has a plan, with its TCO (never None)."""

    row: PointResult
    total_usd_per_year: float


@dataclass(frozen=True)
class _Timed(_Priced):
    """A priced row that also has a mean critical path."""

    mean_critical_path_s: float


def _priced(rows: Sequence[PointResult]) -> list[_Priced]:
    return [_Priced(r, r.total_usd_per_year) for r in rows if r.total_usd_per_year is not None]


def _timed(rows: Sequence[PointResult]) -> list[_Timed]:
    return [
        _Timed(r, r.total_usd_per_year, r.mean_critical_path_s)
        for r in rows
        if r.total_usd_per_year is not None and r.mean_critical_path_s is not None
    ]


def _numeric(values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def plot_tco_vs_axis(results: Sequence[PointResult], axis: str, out: Path) -> None:
    """TCO per year against one swept parameter; one line per combination of the other parameters."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    series: dict[str, list[PointResult]] = {}
    for r in results:
        others = ", ".join(f"{k}={v}" for k, v in r.params.items() if k != axis)
        series.setdefault(others, []).append(r)
    xs_all = [r.params[axis] for r in results]
    numeric = _numeric(xs_all)
    categories = list(dict.fromkeys(str(x) for x in xs_all))

    def pos(x):
        return x if numeric else categories.index(str(x))

    for label, rows in series.items():
        ok = sorted(_priced(rows), key=lambda p: pos(p.row.params[axis]))
        ax.plot(
            [pos(p.row.params[axis]) for p in ok],
            [p.total_usd_per_year / 1e3 for p in ok],
            marker="o",
            label=label or None,
        )
        bad = [r for r in rows if r.total_usd_per_year is None]
        if bad:
            ax.scatter([pos(r.params[axis]) for r in bad], [0] * len(bad), marker="x", color="red", zorder=3)
    if any(r.total_usd_per_year is None for r in results):
        ax.scatter([], [], marker="x", color="red", label="infeasible / no plan")
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(axis)
    ax.set_ylabel("TCO, thousand USD / year")
    ax.set_title(f"TCO vs {axis}")
    ax.grid(alpha=0.3)
    if len(series) > 1 or any(r.total_usd_per_year is None for r in results):
        ax.legend(fontsize=7)
    save_png(fig, out)


def pareto_front(results: Sequence[PointResult]) -> list[PointResult]:
    """Feasible points no other point beats on both mean critical path and TCO, fastest first."""
    return [t.row for t in _front(_timed(results))]


def _front(timed: list[_Timed]) -> list[_Timed]:
    front: list[_Timed] = []
    best = float("inf")
    for t in sorted(timed, key=lambda t: (t.mean_critical_path_s, t.total_usd_per_year)):
        if t.total_usd_per_year < best:
            front.append(t)
            best = t.total_usd_per_year
    return front


def plot_pareto(results: Sequence[PointResult], out: Path) -> None:
    """Every feasible point at (mean critical path, TCO), the Pareto front joined."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    ok = _timed(results)
    ax.scatter([t.mean_critical_path_s for t in ok], [t.total_usd_per_year / 1e3 for t in ok], color="0.6", s=18)
    front = _front(ok)
    ax.plot(
        [t.mean_critical_path_s for t in front],
        [t.total_usd_per_year / 1e3 for t in front],
        marker="o",
        color="tab:blue",
        label="Pareto front",
    )
    for t in front:
        ax.annotate(
            ", ".join(f"{v}" for v in t.row.params.values()),
            (t.mean_critical_path_s, t.total_usd_per_year / 1e3),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("arrival-weighted mean critical path, s")
    ax.set_ylabel("TCO, thousand USD / year")
    ax.set_title("Latency vs TCO")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_png(fig, out)
