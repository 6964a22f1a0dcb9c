"""hetplace command line: parse, call a library function, render. No modelling logic lives here.

Exit codes: 0 ok, 1 infeasible, 2 invalid input (file + field path, no traceback), 3 no plan within the time limit.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from hetplace.catalogs.hf_import import import_hf_config
from hetplace.catalogs.loader import load_catalog
from hetplace.catalogs.schema import Dtype
from hetplace.common.enums import Backend, Method, Objective
from hetplace.common.errors import EXIT_INFEASIBLE, EXIT_INVALID_INPUT, EXIT_NO_PLAN, InputError
from hetplace.common.io import atomic_write_text, dump_json, dump_yaml, load_mapping, parse_model
from hetplace.problems.documents import SCHEMAS, json_schema, validate_file

app = typer.Typer(
    name="hetplace",
    help="Plan AI-agent inference fleets on heterogeneous hardware at the lowest total cost of ownership.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
catalog_app = typer.Typer(
    help="Browse the device and model catalogs; import Hugging Face configs.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")


def stdout_console() -> Console:
    """Rich console on the current stdout; wide when piped so tables are not cut to 80 columns."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


F = TypeVar("F", bound=Callable[..., Any])


def package_version() -> str:
    try:
        return version("hetplace")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def guarded(func: F) -> F:
    """Turn an InputError into one message on stderr and exit code 2 (typer.Exit passes through)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except InputError as exc:
            stderr_console().print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(EXIT_INVALID_INPUT) from None

    return wrapper  # type: ignore[return-value]


def echo_json(data: Any) -> None:
    typer.echo(dump_json(data), nl=False)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"hetplace {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """hetplace: TCO-minimal heterogeneous fleet planning for agent workflows."""


class CatalogKind(StrEnum):
    devices = "devices"
    models = "models"


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _devices_table(devices) -> Table:
    table = Table(title=f"Devices ({len(devices)})")
    for col in (
        "id",
        "tier",
        "kind",
        "bf16 TFLOPS",
        "best dtype",
        "mem GB",
        "BW GB/s",
        "TDP W",
        "capex $",
        "cloud $/h",
    ):
        table.add_column(col, justify="left" if col in ("id", "tier", "kind", "best dtype") else "right")
    for d in devices:
        best_dtype = max(d.peak_tflops, key=lambda k: d.peak_tflops[k])
        table.add_row(
            d.id,
            d.tier.value,
            d.kind.value,
            _fmt(d.peak_tflops.get("bf16"), ",.1f"),
            f"{best_dtype.value} {d.peak_tflops[best_dtype]:,.0f}",
            f"{d.mem_gb:g}",
            _fmt(d.mem_bw_gbs),
            _fmt(d.tdp_w),
            _fmt(d.capex_usd) + ("*" if "capex_usd" in d.estimated_fields else ""),
            _fmt(d.cloud_usd_per_hour, ".2f"),
        )
    table.caption = "* estimate (see the device's sources)"
    return table


def _models_table(models) -> Table:
    table = Table(title=f"Models ({len(models)})")
    for col in ("id", "kind", "layers", "hidden", "heads/kv", "attention", "experts (act/total)", "weights", "context"):
        table.add_column(col, justify="left" if col in ("id", "kind", "attention", "weights") else "right")
    for m in models:
        experts = f"{m.moe.experts_per_token}/{m.moe.num_experts}" if m.moe else "—"
        table.add_row(
            m.id,
            m.kind.value,
            str(m.num_layers),
            str(m.hidden_size),
            f"{m.num_heads}/{m.num_kv_heads}",
            m.attention.value,
            experts,
            m.weight_dtype.value,
            f"{m.max_context_tokens:,}",
        )
    return table


@catalog_app.command("list")
@guarded
def catalog_list(
    kind: Annotated[CatalogKind, typer.Argument(help="devices or models")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of full entries.")] = False,
) -> None:
    """List catalog entries as a table (or JSON)."""
    catalog = load_catalog()
    entries = list((catalog.devices if kind == CatalogKind.devices else catalog.models).values())
    if as_json:
        echo_json([e.model_dump(mode="json") for e in entries])
    else:
        stdout_console().print(_devices_table(entries) if kind == CatalogKind.devices else _models_table(entries))


@catalog_app.command("show")
@guarded
def catalog_show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="A device or model id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one device or model with all its fields and sources."""
    catalog = load_catalog()
    entry = catalog.devices.get(entry_id) or catalog.models.get(entry_id)
    if entry is None:
        close = difflib.get_close_matches(entry_id, [*catalog.devices, *catalog.models], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `hetplace catalog list devices|models`"
        raise InputError.single("catalog", "ID", f"no device or model '{entry_id}'{hint}")
    data = entry.model_dump(mode="json", exclude_none=True)
    if as_json:
        echo_json(data)
    else:
        typer.echo(dump_yaml(data), nl=False)


@catalog_app.command("import-hf")
@guarded
def catalog_import_hf(
    config: Annotated[Path, typer.Argument(help="A Hugging Face config.json (read offline).")],
    model_id: Annotated[str | None, typer.Option("--id", help="Catalog id (default: from the repo name).")] = None,
    hf_repo: Annotated[str | None, typer.Option("--hf-repo", help="ORG/NAME, if the config does not say.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the YAML here (atomically).")] = None,
) -> None:
    """Convert a Hugging Face config.json into a model catalog entry (YAML)."""
    model = import_hf_config(config, model_id=model_id, hf_repo=hf_repo)
    text = f"# Imported from {config.name} by `hetplace catalog import-hf`; check against the model card.\n"
    text += dump_yaml(model.model_dump(mode="json", exclude_none=True))
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_text(out_file, text)
        stderr_console().print(f"wrote {out_file} (model '{model.id}')")


class DocumentKind(StrEnum):
    device = "device"
    model = "model"
    workflow = "workflow"
    scenario = "scenario"
    plan = "plan"
    calibration = "calibration"
    engine = "engine"


@app.command("validate")
@guarded
def validate(
    file: Annotated[Path, typer.Argument(help="Any hetplace YAML/JSON file: device, model, workflow, scenario, plan.")],
    kind: Annotated[
        DocumentKind | None, typer.Option("--kind", help="Skip detection and validate as this kind.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Validate a file (schema, DAG structure, catalog references); exit 2 with the field path if invalid."""
    report = validate_file(file, kind.value if kind else None)
    if as_json:
        echo_json({"file": str(file), "kind": report.kind, "id": report.id, "valid": True, "summary": report.summary})
    else:
        stdout_console().print(f"[green]valid[/] {report.kind} '{report.id}' ({file}): {report.summary}")


class Phase(StrEnum):
    prefill = "prefill"
    decode = "decode"


def _analyze_tables(result: dict[str, Any]) -> None:
    t = result["totals"]
    table = Table(title=f"{t['model']} {t['phase']} on {t['device']} (tp={t['tp']}, batch={t['batch']}, {t['dtype']})")
    for col in ("operator", "GFLOP", "MB moved", "OI", "CF GB", "latency ms", "bound"):
        table.add_column(col, justify="left" if col in ("operator", "bound") else "right")
    for op in result["operators"]:
        table.add_row(
            op["name"],
            f"{op['flops'] / 1e9:,.2f}",
            f"{op['bytes'] / 1e6:,.1f}",
            f"{op['oi']:,.1f}",
            f"{op['cf_bytes'] / 1e9:,.2f}",
            f"{op['latency_s'] * 1e3:,.3f}",
            op["bound"],
        )
    console = stdout_console()
    console.print(table)
    fits = "[green]fits[/]" if t["fits"] else f"[red]does not fit[/] (max batch {t['max_batch']})"
    console.print(
        f"latency {t['latency_s'] * 1e3:,.3f} ms · {t['tokens_per_s']:,.0f} tokens/s · {fits} · max batch "
        f"{t['max_batch']:,} · CF {t['cf_bytes'] / 1e9:,.2f} GB/device · weights need ≥ {t['min_devices_for_weights']} "
        f"device(s)"
    )
    terms = {k: v for k, v in t.get("terms", {}).items() if v}
    if terms:
        console.print("engine terms (ms per pass): " + " · ".join(f"{k} {v * 1e3:+,.3f}" for k, v in terms.items()))
    serving = result.get("serving")
    if serving:
        console.print(
            f"serving ({serving['mode']}, batch {serving['batch']:,.0f}): TTFT {serving['ttft_s'] * 1e3:,.1f} ms · "
            f"TPOT {serving['tpot_s'] * 1e3:,.2f} ms · e2e {serving['e2e_latency_s']:,.2f} s · "
            f"{serving['output_tokens_per_s']:,.0f} output tokens/s "
            f"({serving['output_tokens_per_s_per_device']:,.0f} per device)"
            + ("" if serving["fits"] else f" · [red]does not fit[/] (max batch {serving['max_batch']:,.0f})")
        )


def _workflow_table(result: dict[str, Any]) -> None:
    console = stdout_console()
    for step in result["steps"]:
        table = Table(
            title=f"{result['workflow']} · step '{step['step']}' ({step['kind']}, ×{step['repeat']}): "
            f"cheapest {step['cheapest']} ({step['cheapest_tier']}), fastest {step['fastest']}"
        )
        for col in ("device", "fits", "tp", "latency s", "$ per 1k calls", "why"):
            table.add_column(col, justify="right" if col in ("tp", "latency s", "$ per 1k calls") else "left")
        for row in step["devices"]:
            if not row["fits"] and "latency_s" not in row:
                table.add_row(row["device"], "no", "—", "—", "—", row["why"])
                continue
            usd = row["usd_per_call"]
            price = "— (no price)" if usd is None else f"{usd * 1000:,.4f}"  # neither capex nor cloud price
            table.add_row(
                row["device"],
                "yes" if row["fits"] else "no",
                str(row["tp"]),
                f"{row['latency_s']:,.3f}",
                price,
                row["why"],
            )
        console.print(table)


@app.command("analyze")
@guarded
def analyze(
    model: Annotated[str | None, typer.Option("--model", help="Model id (see `catalog list models`).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Device id (see `catalog list devices`).")] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", help="Bundled workflow id or a workflow file: every step on every catalog device."),
    ] = None,
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel degree.")] = 1,
    phase: Annotated[Phase, typer.Option("--phase")] = Phase.decode,
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Sequences per pass (default 1); with --isl/--osl: one static batch."),
    ] = None,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", min=1, help="Prompt length (prefill).")] = 2048,
    context: Annotated[int, typer.Option("--context", min=1, help="Tokens in the KV cache (decode).")] = 4096,
    dtype: Annotated[str | None, typer.Option("--dtype", help="Weight dtype (default: the model's own).")] = None,
    kv_dtype: Annotated[
        str | None, typer.Option("--kv-dtype", help="KV-cache dtype: bf16, fp16 or fp8 (default: the model's own).")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Serving engine (catalogs/engines): its terms from --calibration, else neutral."),
    ] = None,
    isl: Annotated[int | None, typer.Option("--isl", min=1, help="Input (prompt) tokens per request.")] = None,
    osl: Annotated[int | None, typer.Option("--osl", min=1, help="Output tokens per request.")] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, help="With --isl/--osl: continuous batching, this many in flight."),
    ] = None,
    max_load: Annotated[
        bool, typer.Option("--max-load", help="With --isl/--osl: the largest concurrency whose KV cache fits.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {operators, totals} (and `serving` with --isl/--osl) as JSON.")
    ] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a roofline PNG here.")] = None,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="Use fitted efficiency factors from this `hetplace calibrate` file."),
    ] = None,
) -> None:
    """Operators of one config with FLOPs, bytes, OI, CF, latency and bound — or a workflow's steps on every device.

    With --isl/--osl and one of --batch/--concurrency/--max-load, also the serving estimate (TTFT, TPOT, e2e,
    output tokens/s; README "Serving estimate")."""
    from hetplace.catalogs.loader import load_engines
    from hetplace.costmodels.analysis import analyze_llm, analyze_serving, analyze_workflow
    from hetplace.costmodels.engine_terms import serving_params

    catalog = load_catalog()
    cal = None
    if calibration is not None:
        from hetplace.catalogs.loader import load_calibration

        cal = load_calibration(calibration, catalog)
        catalog = catalog.with_calibration(cal)
    if workflow is not None:
        from hetplace.problems.loader import bundled_workflow_path, load_workflow

        path = (
            Path(workflow) if Path(workflow).suffix in (".yaml", ".yml", ".json") else bundled_workflow_path(workflow)
        )
        result = analyze_workflow(load_workflow(path, catalog), catalog)
        echo_json(result) if as_json else _workflow_table(result)
        return
    if model is None or device is None:
        raise InputError.single("analyze", "--model/--device", "give --model and --device (or --workflow)")
    arch = _lookup(catalog.models, model, "model")
    dev = _lookup(catalog.devices, device, "device")
    try:
        weight_dtype = Dtype(dtype) if dtype else arch.weight_dtype
    except ValueError:
        raise InputError.single(
            "--dtype", "dtype", f"unknown dtype '{dtype}' ({', '.join(d.value for d in Dtype)})"
        ) from None
    if phase == Phase.prefill and prompt_tokens < 1:
        raise InputError.single("--prompt-tokens", "prompt_tokens", "must be ≥ 1")
    kv = _kv_dtype(kv_dtype)
    params = serving_params(dev.id, engine, load_engines(), cal)
    mode, load = _serving_mode(isl, osl, batch, concurrency, max_load)
    if mode is None:
        batch = batch or 1
        result = analyze_llm(arch, dev, tp, phase.value, batch, prompt_tokens, context, weight_dtype, 0, kv, params)
    else:
        assert isl is not None and osl is not None  # _serving_mode checked
        result = analyze_serving(arch, dev, tp, weight_dtype, kv, isl, osl, mode, load, phase.value, params)
        batch = result["totals"]["batch"]
    if plot is not None:
        from hetplace.reports.roofline_plot import plot_roofline

        plot_roofline(
            [dev],
            weight_dtype,
            result["operators"],
            plot,
            title=f"{arch.id} {phase.value} on {dev.id}, tp={tp}, batch={batch}",
        )
    echo_json(result) if as_json else _analyze_tables(result)


def _kv_dtype(value: str | None) -> Dtype | None:
    from hetplace.costmodels.precision import KV_CACHE_DTYPES

    if value is None:
        return None
    if value not in {d.value for d in KV_CACHE_DTYPES}:
        known = ", ".join(d.value for d in KV_CACHE_DTYPES)
        raise InputError.single("--kv-dtype", "kv_dtype", f"unknown KV-cache dtype '{value}' ({known})")
    return Dtype(value)


def _serving_mode(
    isl: int | None, osl: int | None, batch: int | None, concurrency: int | None, max_load: bool
) -> tuple[str | None, int | None]:
    """(mode, load) of `analyze`'s serving estimate, or (None, None) for the single-pass view; exit 2 on a
    contradictory combination."""
    chosen = [
        name for name, given in (("--batch", batch), ("--concurrency", concurrency), ("--max-load", max_load)) if given
    ]
    if (isl is None) != (osl is None):
        raise InputError.single("analyze", "--isl/--osl", "give both --isl and --osl (or neither)")
    if isl is None:
        if concurrency is not None or max_load:
            raise InputError.single("analyze", chosen[-1], f"{chosen[-1]} needs --isl and --osl")
        return None, None
    if len(chosen) != 1:
        raise InputError.single(
            "analyze",
            "/".join(chosen) or "--batch/--concurrency/--max-load",
            "with --isl/--osl give exactly one of --batch, --concurrency, --max-load"
            + (f" (got {', '.join(chosen)})" if chosen else ""),
        )
    if batch is not None:
        return "batch", batch
    if concurrency is not None:
        return "concurrency", concurrency
    return "max-load", None


def _lookup(table: dict[str, Any], key: str, what: str) -> Any:
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; see `hetplace catalog list {what}s`"
    raise InputError.single("catalog", f"--{what}", f"no {what} '{key}'{hint}")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _calibration_table(cal) -> Table:
    table = Table(title=f"Calibration of {len(cal.devices)} device(s), {cal.held_back_fraction:.0%} of rows held back")
    for col in (
        "device",
        "η_c",
        "η_m",
        "overhead µs",
        "rows fit/held",
        "datasheet med/p90 (fit)",
        "fitted med/p90 (fit)",
        "datasheet med/p90 (held)",
        "fitted med/p90 (held)",
    ):
        table.add_column(col, justify="left" if col == "device" else "right")
    for dev_id, d in cal.devices.items():
        held = d.held_back
        table.add_row(
            dev_id,
            f"{d.compute:.3f}",
            f"{d.memory:.3f}",
            f"{d.kernel_overhead_us:.1f}",
            f"{d.fit.rows}/{held.rows if held else 0}",
            f"{_pct(d.datasheet_fit.median_abs_error)} / {_pct(d.datasheet_fit.p90_abs_error)}",
            f"{_pct(d.fit.median_abs_error)} / {_pct(d.fit.p90_abs_error)}",
            f"{_pct(d.datasheet_held_back and d.datasheet_held_back.median_abs_error)} / "
            f"{_pct(d.datasheet_held_back and d.datasheet_held_back.p90_abs_error)}",
            f"{_pct(held and held.median_abs_error)} / {_pct(held and held.p90_abs_error)}",
        )
    return table


@app.command("calibrate")
@guarded
def calibrate_cmd(
    measurements: Annotated[
        list[Path] | None,
        typer.Argument(
            help="CSV of measured GEMM timings (vidur or hetplace format); with --serving: serving CSV(s) "
            "(catalogs/measurements/serving/README.md; none = the bundled rows)."
        ),
    ] = None,
    serving: Annotated[
        bool, typer.Option("--serving", help="Fit serving (engine) terms per device and engine to end-to-end rows.")
    ] = False,
    base: Annotated[
        Path | None,
        typer.Option("--base", help="With --serving: a GEMM calibration the fit runs on top of and the output keeps."),
    ] = None,
    no_loso: Annotated[
        bool, typer.Option("--no-loso", help="With --serving: skip leave-one-source-out (bands from the fit's rows).")
    ] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the fitted calibration YAML here.")] = None,
    evaluate_file: Annotated[
        Path | None,
        typer.Option("--evaluate", help="Score this calibration file on the measurements instead of fitting."),
    ] = None,
    holdout: Annotated[
        float, typer.Option("--holdout", min=0.0, max=0.9, help="Fraction of rows kept out of the fit.")
    ] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-back split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit per-device efficiency factors and overheads to measured timings, or score an existing calibration.

    With --serving: fit the serving model's engine terms per (device, engine) to public end-to-end measurements
    and report leave-one-source-out error (README "Serving calibration")."""
    from hetplace.catalogs.loader import load_calibration
    from hetplace.costmodels.calibration import calibrate, evaluate, load_measurements

    files = measurements or []
    if serving:
        _calibrate_serving(files, base, not no_loso, out_file, as_json)
        return
    if len(files) != 1:
        raise InputError.single("calibrate", "MEASUREMENTS", f"give one GEMM measurement CSV (got {len(files)})")
    for flag, given in (("--base", base is not None), ("--no-loso", no_loso)):
        if given:
            raise InputError.single("calibrate", flag, f"{flag} needs --serving")
    measurements_file = files[0]
    catalog = load_catalog()
    meas = load_measurements(measurements_file)
    if evaluate_file is not None:
        result = evaluate(meas, load_calibration(evaluate_file, catalog), catalog)
        if as_json:
            echo_json(result)
            return
        table = Table(title=f"{evaluate_file} scored on {measurements_file} ({result['rows']:,} rows)")
        for col in ("device", "factors", "rows", "median abs error", "p90 abs error"):
            table.add_column(col, justify="left" if col in ("device", "factors") else "right")
        for dev_id, d in result["per_device"].items():
            table.add_row(dev_id, d["factors"], f"{d['rows']:,}", _pct(d["median_abs_error"]), _pct(d["p90_abs_error"]))
        table.add_row("all", "", f"{result['rows']:,}", _pct(result["median_abs_error"]), _pct(result["p90_abs_error"]))
        stdout_console().print(table)
        return
    cal = calibrate(meas, catalog, held_back_fraction=holdout, seed=seed)
    text = dump_yaml(cal.model_dump(mode="json"))
    if out_file is not None:
        atomic_write_text(out_file, "# Written by `hetplace calibrate`; efficiency factors per device.\n" + text)
    if as_json:
        echo_json(cal.model_dump(mode="json"))
    elif out_file is None:
        typer.echo(text, nl=False)
    else:
        stdout_console().print(_calibration_table(cal))
        stderr_console().print(f"wrote {out_file}")


def _calibrate_serving(
    files: list[Path], base: Path | None, with_loso: bool, out_file: Path | None, as_json: bool
) -> None:
    """`calibrate --serving`: fit, write the calibration (atomically), print the before / fitted / LOSO table."""
    from hetplace.catalogs.loader import load_calibration, load_engines
    from hetplace.catalogs.serving_measurements import bundled_serving_dir, load_serving_measurements
    from hetplace.costmodels.serving_fit import report_dict, run_serving_fit, serving_calibration

    catalog = load_catalog()
    base_cal = load_calibration(base, catalog) if base is not None else None
    if base_cal is not None:
        catalog = catalog.with_calibration(base_cal)
    rows = load_serving_measurements(files or None)
    report = run_serving_fit(rows, catalog, load_engines(), with_loso=with_loso)
    names = ", ".join(str(f) for f in files) if files else f"{bundled_serving_dir().name}/*.csv (bundled)"
    cal = serving_calibration(report, names, base_cal)
    if out_file is not None:
        header = "# Written by `hetplace calibrate --serving`; GEMM factors per device and serving terms per engine.\n"
        atomic_write_text(out_file, header + dump_yaml(cal.model_dump(mode="json")))
    if as_json:
        echo_json({"calibration": cal.model_dump(mode="json"), "report": report_dict(report)})
        return
    stdout_console().print(_serving_table(report_dict(report), cal.serving_error_band))
    if out_file is None:
        stderr_console().print("no --out given: nothing written")
    else:
        stderr_console().print(f"wrote {out_file}")


def _serving_table(rep: dict[str, Any], bands: dict[str, float]) -> Table:
    loso = rep["leave_one_source_out"]
    table = Table(
        title=f"Serving calibration: {rep['rows_evaluated']:,} of {rep['rows']:,} rows priced; fit "
        f"{rep['fit_seconds']:.1f} s, leave-one-source-out {rep['loso_seconds']:.1f} s"
    )
    for col in ("device", "rows", "neutral med/p90", "fitted med/p90", "LOSO med/p90", "LOSO speed", "band"):
        table.add_column(col, justify="left" if col == "device" else "right")

    def cells(key: str, label: str) -> list[str]:
        out = []
        for tables in (rep["before"], rep["after"], loso):
            s = tables["overall"] if key == "overall" else tables[key].get(label) if tables else None
            out.append(f"{_pct(s['median_abs_error'])} / {_pct(s['p90_abs_error'])}" if s else "—")
        s = (loso["overall"] if key == "overall" else loso[key].get(label)) if loso else None
        out.append(f"{s['speed_geomean']:.2f}" if s and s["speed_geomean"] is not None else "—")
        return out

    for dev, s in rep["before"]["device"].items():
        table.add_row(dev, f"{s['rows']:,}", *cells("device", dev), _pct(bands.get(dev)))
    table.add_row("all", f"{rep['rows_evaluated']:,}", *cells("overall", ""), "")
    return table


def _render_plan(plan, outcome_status: str) -> None:
    console = stdout_console()
    t = plan.tco
    s = plan.solver
    gap = "—" if s.gap is None else f"{s.gap:.2%}"
    console.print(
        f"[bold]{plan.scenario}[/]: {outcome_status} · [bold]{t.total_usd_per_year:,.0f} USD/year[/] · "
        f"{t.usd_per_request:.5f} USD/request · {t.usd_per_million_tokens:.4f} USD/1M tokens · "
        f"{s.backend} {s.wall_time_s:.1f} s, gap {gap}"
    )
    if plan.objective == "min_latency":
        console.print(
            f"objective min_latency: arrival-weighted mean critical path {plan.mean_critical_path_s:.3f} s, "
            "then the cheapest fleet that achieves it"
        )
    fleet = Table(title="Fleet")
    for col in ("device", "owned used", "owned idle", "bought", "rented", "nodes", "power kW"):
        fleet.add_column(col, justify="left" if col == "device" else "right")
    for e in plan.fleet:
        fleet.add_row(
            e.device,
            str(e.owned_used),
            str(e.owned_idle),
            str(e.bought),
            str(e.rented),
            str(e.nodes),
            f"{e.power_kw:,.1f}",
        )
    console.print(fleet)
    pools = Table(title="Pools")
    for col in ("pool", "device", "tp", "batch", "replicas", "throughput", "utilisation"):
        pools.add_column(col, justify="left" if col in ("pool", "device") else "right")
    for a in sorted(plan.pools, key=lambda a: a.pool):
        pools.add_row(
            a.pool,
            a.device,
            str(a.tensor_parallel),
            str(a.batch),
            str(a.replicas),
            f"{a.throughput:,.1f} {a.throughput_unit}/s",
            f"{a.utilisation:.0%}",
        )
    console.print(pools)
    wfs = Table(title="Workflows")
    for col in ("workflow", "req/s", "critical path s", "SLA s", "slack s", "critical steps"):
        wfs.add_column(col, justify="left" if col in ("workflow", "critical steps") else "right")
    for w in plan.workflows:
        wfs.add_row(
            w.workflow,
            f"{w.arrival_rate_rps:g}",
            f"{w.critical_path_s:,.2f}",
            f"{w.sla_s:g}",
            f"{w.slack_s:,.2f}",
            " → ".join(w.critical_steps),
        )
    console.print(wfs)
    if plan.engine is not None:
        console.print(f"serving engine: {plan.engine} (menus priced with its terms per device)")
    if plan.robust is not None:
        bands = ", ".join(f"{d} {b:.0%}" for d, b in sorted(plan.robust.error_band.items()))
        console.print(f"robust: each device at the slow end of its serving error band ({bands})", soft_wrap=True)
        for w in plan.workflows:
            console.print(
                f"  {w.workflow}: critical path {w.critical_path_nominal_s or 0.0:,.2f} s nominal … "
                f"{w.critical_path_s:,.2f} s slow end (SLA {w.sla_s:g} s)"
            )
    console.print(
        f"TCO/year: capex {t.capex_usd_per_year:,.0f} · energy {t.energy_usd_per_year:,.0f} · hosting "
        f"{t.hosting_usd_per_year:,.0f} · rental {t.rental_usd_per_year:,.0f} · purchases up front "
        f"{t.purchases_usd:,.0f} USD"
    )
    feasible = [b for b in plan.baselines if b.total_usd_per_year is not None]
    if feasible:
        best = min(feasible, key=lambda b: b.total_usd_per_year)
        console.print(
            f"Best homogeneous fleet: {best.device} at {best.total_usd_per_year:,.0f} USD/year → "
            f"heterogeneous plan saves {best.saving_fraction:.1%} "
            f"({len(feasible)} of {len(plan.baselines)} single-accelerator fleets feasible)"
        )
    elif plan.baselines:
        console.print(f"No single-accelerator fleet is feasible ({len(plan.baselines)} tried).")


@app.command("solve")
@guarded
def solve_cmd(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario YAML (default: the bundled default).")] = None,
    backend: Annotated[
        Backend, typer.Option("--backend", help="HiGHS (MILP, via highspy), CBC (MILP, via PuLP) or CP-SAT (OR-Tools).")
    ] = Backend.highs,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", min=0.1, help="Seconds per solve; the best plan found is returned with its gap."),
    ] = None,
    gap: Annotated[float, typer.Option("--gap", min=0.0, max=1.0, help="Relative optimality gap to stop at.")] = 1e-4,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Solver threads (1 = reproducible).")] = 1,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines", help="Also solve the best single-accelerator fleets for comparison."
        ),
    ] = True,
    objective: Annotated[
        Objective,
        typer.Option(
            "--objective",
            help="min_tco: cheapest fleet meeting the SLAs. min_latency: lowest mean end-to-end latency within the "
            "limits (with --budget: fastest under that annual TCO), then the cheapest fleet at that latency.",
        ),
    ] = Objective.min_tco,
    budget: Annotated[
        float | None,
        typer.Option("--budget", min=0.0, help="Annual TCO budget, USD (overrides limits.annual_budget_usd)."),
    ] = None,
    robust: Annotated[
        bool,
        typer.Option(
            "--robust",
            help="Hold every SLA and pool capacity with each device at the slow end of its serving error band "
            "(latency × (1 + band), throughput ÷ (1 + band)); same as the scenario's robust: true.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the plan here (.json or .yaml), atomically.")
    ] = None,
    model_file: Annotated[
        Path | None,
        typer.Option(
            "--write-model",
            help="Also write the built min-TCO model (extra_constraints included) as .lp or .mps, then solve it.",
        ),
    ] = None,
    method: Annotated[
        Method,
        typer.Option(
            "--method",
            help="milp: the whole MILP. decomposition: column generation by model family (a Lagrangian bound), "
            "then the integer master over the columns (see README \"Optimizer\").",
        ),
    ] = Method.milp,
) -> None:
    """Plan the TCO-minimal heterogeneous fleet for a scenario (exit 1 infeasible, 3 no plan in time)."""
    from hetplace.optimizer.model_file import model_file_problem
    from hetplace.optimizer.solve import solve_scenario
    from hetplace.problems.loader import default_scenario_path, load_scenario

    if model_file is not None:
        problem = model_file_problem(model_file)
        if problem is None and objective != Objective.min_tco:
            problem = "writes the min_tco model; it cannot be combined with --objective min_latency"
        if problem is not None:
            raise InputError.single(str(model_file), "--write-model", problem)
    resolved = load_scenario(scenario or default_scenario_path())
    if budget is not None:
        limits = resolved.scenario.limits.model_copy(update={"annual_budget_usd": budget})
        resolved.scenario = resolved.scenario.model_copy(update={"limits": limits})
    if robust:
        resolved.scenario = resolved.scenario.model_copy(update={"robust": True})
    with_baselines = baselines and objective == Objective.min_tco
    err = stderr_console()
    what = "plan and single-accelerator baselines" if with_baselines else "plan"
    title = f"solving {resolved.scenario.id} with {backend.value}: {what}…"
    live = err.is_terminal and not as_json
    with err.status(title, spinner="dots") if live else contextlib.nullcontext() as status:
        outcome = solve_scenario(
            resolved,
            backend.value,
            time_limit,
            gap,
            threads,
            with_baselines,
            objective.value,
            model_file,
            method.value,
            _progress_line(status, title) if status is not None else None,
        )
    if model_file is not None and not as_json:
        stderr_console().print(f"wrote {model_file}")
    if outcome.status == "infeasible":
        stderr_console().print(f"[bold red]infeasible:[/] {resolved.source}", markup=True)
        for cause in outcome.diagnosis:
            stderr_console().print(f"  - {cause}", soft_wrap=True)
        if as_json:
            echo_json({"status": "infeasible", "diagnosis": outcome.diagnosis})
        raise typer.Exit(EXIT_INFEASIBLE)
    if outcome.plan is None:
        stderr_console().print(f"no plan found within the time limit ({time_limit} s); raise --time-limit or --gap")
        raise typer.Exit(EXIT_NO_PLAN)
    data = outcome.plan.model_dump(mode="json")
    if out_file is not None:
        text = dump_yaml(data) if out_file.suffix in (".yaml", ".yml") else dump_json(data)
        atomic_write_text(out_file, text)
    if as_json:
        echo_json(data)
    else:
        _render_plan(outcome.plan, outcome.status)
        if out_file is not None:
            stderr_console().print(f"wrote {out_file}")


def _progress_line(status: Any, title: str) -> Callable[[float | None, float | None], None]:
    """A solver progress callback that rewrites the spinner's line: elapsed time, incumbent TCO, bound and gap
    (at most five times a second)."""
    import time

    t0 = time.perf_counter()
    last = [0.0]
    seen: dict[str, float | None] = {"incumbent": None, "bound": None}

    def report(incumbent: float | None, bound: float | None) -> None:
        now = time.perf_counter()
        if incumbent is not None:
            seen["incumbent"] = incumbent
        if bound is not None:
            seen["bound"] = bound
        if now - last[0] < 0.2:
            return
        last[0] = now
        inc, low = seen["incumbent"], seen["bound"]
        parts = [f"{now - t0:.1f} s", f"incumbent {inc:,.0f} USD/yr" if inc is not None else "no plan yet"]
        if low is not None:
            parts.append(f"bound {low:,.0f}")
        if inc is not None and low is not None and inc > 0:
            parts.append(f"gap {max(0.0, inc - low) / inc:.2%}")
        status.update(f"{title} {' · '.join(parts)}")

    return report


class Executor(StrEnum):
    process = "process"
    ray = "ray"


@app.command("whatif")
@guarded
def whatif_cmd(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario YAML (default: the bundled default).")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="SPEC=VALUE applied to every point (repeatable).")
    ] = None,
    sweeps: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="SPEC=V1,V2,… (repeatable; several form a grid). SPEC is a PATH such as limits.power_cap_kw or "
            "hardware.purchasable[device=h100-sxm].capex_usd, or a question: price:DEVICE (factor), demand:WF|* "
            "(factor), sla:WF|* (factor), owned:DEVICE (count), offer:DEVICE (count), power_cap (kW).",
        ),
    ] = None,
    sweep_file: Annotated[
        Path | None, typer.Option("--sweep-file", help="YAML with 'set: {SPEC: value}' and 'sweep: {SPEC: [values]}'.")
    ] = None,
    backend: Annotated[Backend, typer.Option("--backend")] = Backend.highs,
    objective: Annotated[Objective, typer.Option("--objective")] = Objective.min_tco,
    gap: Annotated[
        float, typer.Option("--gap", min=0.0, max=1.0, help="Relative optimality gap per point (reproducible).")
    ] = 0.005,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", min=0.1, help="Seconds per point (results then depend on speed).")
    ] = None,
    executor: Annotated[Executor, typer.Option("--executor", help="Local process pool or a Ray cluster.")] = (
        Executor.process
    ),
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Parallel points (default: the CPUs available).")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster to join (default: start a local one).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as JSON (no table, no progress bar).")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for points.csv, points.json and the PNG charts.")
    ] = None,
) -> None:
    """Procurement what-ifs: solve a grid of scenario variants and compare their plans (exit 2 on bad input)."""
    from hetplace.problems.loader import default_scenario_path
    from hetplace.whatif.executors import run_points
    from hetplace.whatif.outputs import write_outputs
    from hetplace.whatif.overrides import parse_value
    from hetplace.whatif.sweep import (
        Axis,
        SolveOptions,
        build_tasks,
        parse_axis,
        parse_sweep_file,
        split_assignment,
    )

    path = scenario or default_scenario_path()
    fixed: list[tuple[str, object]] = []
    axes: list[Axis] = []
    if sweep_file is not None:
        fixed, axes = parse_sweep_file(sweep_file)
    for text in sets or []:
        spec, value = split_assignment(text, "--set")
        fixed.append((spec, parse_value(value)))
    axes += [parse_axis(t) for t in sweeps or []]
    options = SolveOptions(backend.value, gap, time_limit, objective.value)
    tasks = build_tasks(path, fixed, axes, options)
    err = stderr_console()
    show_progress = err.is_terminal and not as_json
    with Progress(console=err, disable=not show_progress, transient=True) as progress:
        bar = progress.add_task(f"{len(tasks)} points on {executor.value}", total=len(tasks))
        try:
            results = run_points(tasks, executor.value, workers, address, on_done=lambda _r: progress.advance(bar))
        except RuntimeError as exc:  # e.g. the ray extra is not installed
            err.print(f"[bold red]error:[/] {exc}", markup=True)
            raise typer.Exit(EXIT_INVALID_INPUT) from None
    written = write_outputs(results, axes, out_dir) if out_dir is not None else []
    if as_json:
        echo_json([r.model_dump(mode="json") for r in results])
    else:
        stdout_console().print(_sweep_table(results, axes))
        for f in written:
            err.print(f"wrote {f}")


def _sweep_table(results, axes) -> Table:
    table = Table(title="What-if points")
    for a in axes:
        table.add_column(a.spec)
    for col in ("status", "TCO USD/yr", "vs first", "mean path s", "bought", "rented", "gap", "s"):
        table.add_column(col, justify="right" if col not in ("status", "bought", "rented") else "left")
    first = next((r.total_usd_per_year for r in results if r.total_usd_per_year is not None), None)
    for r in results:
        tco = r.total_usd_per_year
        status = r.status if not (r.diagnosis or r.error) else f"{r.status}: {(r.diagnosis or [r.error])[0]}"
        table.add_row(
            *[str(r.params.get(a.spec)) for a in axes],
            status,
            "—" if tco is None else f"{tco:,.0f}",
            "—" if tco is None or not first else f"{tco / first - 1:+.1%}",
            "—" if r.mean_critical_path_s is None else f"{r.mean_critical_path_s:.2f}",
            " ".join(f"{k}×{v}" for k, v in r.bought.items()),
            " ".join(f"{k}×{v}" for k, v in r.rented.items()),
            "—" if r.gap is None else f"{r.gap:.2%}",
            f"{r.wall_time_s:.1f}",
        )
    return table


@app.command("schedule")
@guarded
def schedule_cmd(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML with a `horizon:` section.")],
    backend: Annotated[Backend, typer.Option("--backend")] = Backend.highs,
    time_limit: Annotated[float | None, typer.Option("--time-limit", min=0.1, help="Seconds per solve.")] = None,
    gap: Annotated[float, typer.Option("--gap", min=0.0, max=1.0)] = 1e-4,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 1,
    greedy: Annotated[
        bool, typer.Option("--greedy/--no-greedy", help="Also plan period by period, to show what foresight saves.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the schedule as JSON.")] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the schedule (.json or .yaml), atomically.")
    ] = None,
) -> None:
    """Multi-period plan: one solve over all periods; purchases stay in the fleet (exit 1 infeasible, 3 no plan)."""
    from hetplace.optimizer.multiperiod import solve_schedule
    from hetplace.problems.loader import load_scenario
    from hetplace.reports.report import schedule_rows

    resolved = load_scenario(scenario)
    status, schedule = solve_schedule(resolved, backend.value, time_limit, gap, threads, greedy)
    if schedule is None:
        stderr_console().print(f"[bold red]{status}:[/] no schedule for {scenario}", markup=True)
        raise typer.Exit(EXIT_INFEASIBLE if status == "infeasible" else EXIT_NO_PLAN)
    data = schedule.model_dump(mode="json")
    if out_file is not None:
        atomic_write_text(out_file, dump_yaml(data) if out_file.suffix in (".yaml", ".yml") else dump_json(data))
    if as_json:
        echo_json(data)
        return
    head, *rows = schedule_rows(schedule)
    table = Table(title=f"{schedule.scenario}: purchase schedule ({schedule.period_years:g}-year periods)")
    for col in head:
        table.add_column(col, justify="right" if col in ("period", "demand ×", "cost USD") else "left")
    for row in rows:
        table.add_row(*row)
    console = stdout_console()
    console.print(table)
    line = f"horizon cost {schedule.total_usd:,.0f} USD ({status}); purchases {schedule.purchases_usd:,.0f} USD"
    if schedule.greedy_total_usd is not None:
        line += (
            f"; period-by-period (greedy) {schedule.greedy_total_usd:,.0f} USD, "
            f"{schedule.greedy_excess_fraction:+.1%} against planning the horizon at once"
        )
    console.print(line)
    if out_file is not None:
        stderr_console().print(f"wrote {out_file}")


@app.command("report")
@guarded
def report_cmd(
    scenarios: Annotated[list[Path], typer.Argument(help="One or more scenario YAML files.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, report.md and the charts.")],
    sweeps: Annotated[
        list[str] | None, typer.Option("--sweep", help="What-if axis run on every scenario (as in `whatif`).")
    ] = None,
    backend: Annotated[Backend, typer.Option("--backend")] = Backend.highs,
    gap: Annotated[float, typer.Option("--gap", min=0.0, max=1.0)] = 1e-4,
    time_limit: Annotated[float | None, typer.Option("--time-limit", min=0.1, help="Seconds per solve.")] = None,
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines")] = True,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Parallel what-if points.")] = None,
) -> None:
    """Batch report: plan every scenario (with its schedule if it has a horizon) and write HTML + Markdown."""
    from hetplace.optimizer.multiperiod import solve_schedule
    from hetplace.optimizer.solve import solve_scenario
    from hetplace.problems.loader import load_scenario
    from hetplace.reports.report import ScenarioSection, unique_folders, write_report
    from hetplace.whatif.executors import run_points
    from hetplace.whatif.outputs import write_outputs
    from hetplace.whatif.sweep import SolveOptions, build_tasks, parse_axis

    resolved_all = [load_scenario(p) for p in scenarios]  # every input checked before any solve
    axes = [parse_axis(t) for t in sweeps or []]
    tasks_all = [build_tasks(p, [], axes, SolveOptions(backend.value, max(gap, 0.005), time_limit)) for p in scenarios]
    sections = []
    err = stderr_console()
    folders = unique_folders([r.scenario.id for r in resolved_all])
    for path, resolved, tasks, folder in zip(scenarios, resolved_all, tasks_all, folders, strict=True):
        with err.status(f"planning {resolved.scenario.id}…") if err.is_terminal else contextlib.nullcontext():
            outcome = solve_scenario(resolved, backend.value, time_limit, gap, 1, baselines)
            section = ScenarioSection(resolved, outcome.plan, outcome.status, outcome.diagnosis, folder=folder)
            if resolved.scenario.horizon is not None:
                _, section.schedule = solve_schedule(resolved, backend.value, time_limit, gap)
            if axes:
                section.sweep = run_points(tasks, "process", workers)
                written = write_outputs(section.sweep, axes, out_dir / folder / "whatif")
                section.sweep_charts = [f for f in written if f.suffix == ".png"]
        sections.append(section)
        err.print(f"{path}: {outcome.status}")
    for page in write_report(sections, out_dir):
        err.print(f"wrote {page}")


@app.command("check")
@guarded
def check_cmd(
    scenario: Annotated[Path, typer.Argument(help="The scenario the plan was made for.")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan written by `hetplace solve --out`.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute every constraint of a plan independently of the solver; exit 1 if any is violated."""
    from hetplace.optimizer.checker import check_notes, check_plan
    from hetplace.problems.loader import load_scenario
    from hetplace.problems.plan import Plan

    resolved = load_scenario(scenario)
    plan = parse_model(Plan, load_mapping(plan_file), str(plan_file))
    violations = check_plan(resolved, plan)
    notes = check_notes(resolved, plan)  # e.g. user rows (extra_constraints) are not re-checked
    if as_json:
        echo_json({"valid": not violations, "violations": violations, "notes": notes})
    else:
        for v in violations:
            stderr_console().print(f"[red]violation:[/] {v}", soft_wrap=True)
        for note in notes:
            stderr_console().print(f"[yellow]note:[/] {note}", soft_wrap=True)
        if not violations:
            stdout_console().print(f"[green]plan is valid[/]: every constraint of {scenario} holds")
    if violations:
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command("schema")
def schema(kind: Annotated[DocumentKind, typer.Argument(help=", ".join(SCHEMAS))]) -> None:
    """Print the JSON Schema of a document kind."""
    typer.echo(json.dumps(json_schema(kind.value), indent=2))


if __name__ == "__main__":
    app()
