"""`hetplace export`: render a plan in one format into a folder, atomically (a temporary sibling folder renamed
into place, so a failure never leaves a half-written export), with an `export.json` index naming the format, the
files and the provenance header every file also carries."""

from __future__ import annotations

import json
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path

from hetplace.common.errors import InputError
from hetplace.export.dynamo import dynamo_files
from hetplace.export.engines import engine_files
from hetplace.export.k8s import k8s_files
from hetplace.export.plan_view import PlanView, build_view
from hetplace.export.purchase import check_schedule, purchase_files
from hetplace.problems.loader import ResolvedScenario
from hetplace.problems.plan import Plan, SchedulePlan

INDEX = "export.json"


class ExportFormat(StrEnum):
    vllm = "vllm"
    sglang = "sglang"
    k8s = "k8s"
    dynamo = "dynamo"
    purchase_order = "purchase-order"


def parse_format(text: str) -> ExportFormat:
    try:
        return ExportFormat(text)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise InputError.single("--format", "", f"unknown format '{text}' (known: {known})") from None


def render(view: PlanView, fmt: ExportFormat, schedule: SchedulePlan | None = None) -> dict[str, str]:
    """File name → text for one format (no I/O)."""
    if fmt in (ExportFormat.vllm, ExportFormat.sglang):
        files = engine_files(view, fmt.value)
    elif fmt == ExportFormat.k8s:
        files = k8s_files(view)
    elif fmt == ExportFormat.dynamo:
        files = dynamo_files(view)
    else:
        files = purchase_files(view, schedule)
    index = {"hetplace": view.header.as_dict(), "format": fmt.value, "files": sorted(files)}
    return {**files, INDEX: json.dumps(index, indent=2) + "\n"}


def needs_hf_repo(fmt: ExportFormat) -> bool:
    return fmt != ExportFormat.purchase_order


def export_plan(
    plan: Plan,
    resolved: ResolvedScenario,
    plan_source: str,
    fmt: ExportFormat,
    out_dir: Path,
    schedule: SchedulePlan | None = None,
    schedule_source: str = "--schedule",
) -> list[Path]:
    """Render and write; every input problem is raised before anything is written."""
    view = build_view(plan, resolved, plan_source, needs_hf_repo(fmt))
    if schedule is not None:
        check_schedule(view, schedule, schedule_source)
    files = render(view, fmt, schedule)
    write_folder(out_dir, files)
    return [out_dir / name for name in sorted(files)]


def write_folder(out_dir: Path, files: dict[str, str]) -> None:
    """Write into a temporary sibling folder, then swap it in. An existing folder is replaced only when it is empty
    or an earlier export (has export.json): never a folder of other files."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError.single(str(out_dir), "--out", "exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / INDEX).is_file():
        raise InputError.single(
            str(out_dir), "--out", "folder is not empty and is not a hetplace export; choose a new one"
        )
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=parent))
    old: Path | None = None
    try:
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=parent))
            old.rmdir()
            out_dir.rename(old)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out_dir.exists():
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
