"""hetplace command line: parse, call a library function, render. No modelling logic lives here.

Exit codes: 0 ok, 1 infeasible, 2 invalid input (file + field path, no traceback), 3 no plan within the time limit,
4 internal error (one line; `--debug` shows the traceback), 130 interrupted (Ctrl-C).
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
from rich.markup import escape
from rich.progress import Progress

from hetplace.catalogs.hf_import import import_hf_config
from hetplace.catalogs.loader import DEFAULT_CALIBRATION, DEFAULT_ENGINE, load_catalog
from hetplace.catalogs.schema import Dtype
from hetplace.common.enums import Backend, Method, Objective
from hetplace.common.errors import (
    EXIT_INFEASIBLE,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_NO_PLAN,
    InputError,
)
from hetplace.common.failures import (
    debug_requested,
    drop_unread_stdout,
    flush_stdout,
    set_debug,
    unexpected_error_line,
)
from hetplace.common.io import atomic_write_text, dump_json, dump_yaml, load_mapping, parse_model
from hetplace.common.output_paths import JSON_OR_YAML, PNG, YAML, check_output_file, check_output_folder
from hetplace.problems.documents import SCHEMAS, json_schema, validate_file

app = typer.Typer(
    name="hetplace",
    help="Plan AI-agent inference fleets on heterogeneous hardware at the lowest total cost of ownership.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # help text is printed as written: `hardware.purchasable[device=…]` keeps its selector
)
catalog_app = typer.Typer(
    help="Browse the device and model catalogs; import Hugging Face configs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(catalog_app, name="catalog")


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich exits 1 when the reader leaves (`| head`); let `guarded` decide (the command's own code)."""
        self.quiet = True
        raise BrokenPipeError


def stdout_console() -> Console:
    """Rich console on the current stdout; wide when piped so tables are not cut to 80 columns. Markup is off:
    ids, paths and messages print literally (`[a-z0-9]`); a styled line passes markup=True and escapes its values."""
    return _Console(highlight=False, markup=False, width=None if sys.stdout.isatty() else 160)


def stderr_console() -> Console:
    return _Console(stderr=True, highlight=False, markup=False, width=None if sys.stderr.isatty() else 160)


F = TypeVar("F", bound=Callable[..., Any])


def package_version() -> str:
    try:
        return version("hetplace")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def guarded(func: F) -> F:
    """Every way a command can end, as one message and a documented exit code, never a traceback: InputError → 2,
    Ctrl-C → "interrupted" and 130, any other exception → one line and 4 (`--debug` re-raises it), a reader that
    left (`| head`) → the command's own code (typer.Exit passes through)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        code = 0
        try:
            func(*args, **kwargs)
        except typer.Exit as exc:
            code = exc.exit_code
        except (typer.TyperException, typer.Abort):  # usage errors: typer prints them
            raise
        except InputError as exc:
            _error_line(f"[bold red]error:[/] {escape(str(exc))}")
            code = EXIT_INVALID_INPUT
        except KeyboardInterrupt:
            _error_line("[bold red]interrupted[/]")
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            drop_unread_stdout()
        except Exception as exc:
            if debug_requested():
                raise
            _error_line(f"[bold red]error:[/] {escape(unexpected_error_line(exc))}")
            code = EXIT_INTERNAL_ERROR
        try:
            flush_stdout()
        except BrokenPipeError:
            drop_unread_stdout()
        if code:
            raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


def _error_line(markup_text: str) -> None:
    with contextlib.suppress(OSError):  # stderr may be gone too
        stderr_console().print(markup_text, markup=True, soft_wrap=True)


def _explicit(ctx: typer.Context, *names: str) -> list[str]:
    """The options among `names` (parameter names) that the user gave, as they are spelled on the command line."""
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    sources = {n: ctx.get_parameter_source(n) for n in names}  # typer's own (vendored) click enum: compare names
    return [flags[n] for n, src in sources.items() if src is not None and src.name in ("COMMANDLINE", "ENVIRONMENT")]


def _refuse_together(command: str, mode: str, ignored: list[str], why: str) -> None:
    """Exit 2 for options the chosen mode would silently ignore."""
    if ignored:
        raise InputError.single(command, "/".join(ignored), f"{', '.join(ignored)} cannot be used with {mode}: {why}")


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
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an unexpected error (also: HETPLACE_DEBUG=1)."),
    ] = False,
) -> None:
    """hetplace: TCO-minimal heterogeneous fleet planning for agent workflows."""
    set_debug(debug)


class CatalogKind(StrEnum):
    devices = "devices"
    models = "models"


@catalog_app.command("list")
@guarded
def catalog_list(
    kind: Annotated[CatalogKind, typer.Argument(help="devices or models")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of full entries.")] = False,
) -> None:
    """List catalog entries as a table (or JSON)."""
    from hetplace.reports import terminal as screens

    catalog = load_catalog()
    entries = list((catalog.devices if kind == CatalogKind.devices else catalog.models).values())
    if as_json:
        echo_json([e.model_dump(mode="json") for e in entries])
    else:
        table = screens.devices_table(entries) if kind == CatalogKind.devices else screens.models_table(entries)
        stdout_console().print(table)


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
    if out_file is not None:
        check_output_file(out_file, "--out", YAML)
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
        stdout_console().print(
            "[green]valid[/] " + escape(f"{report.kind} '{report.id}' ({file}): {report.summary}"), markup=True
        )


class Phase(StrEnum):
    prefill = "prefill"
    decode = "decode"


@app.command("analyze")
@guarded
def analyze(
    ctx: typer.Context,
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
        str,
        typer.Option(
            "--engine",
            help="Serving engine (catalogs/engines; aliases like trtllm work): its terms from the calibration. "
            "'none' = the plain roofline, no engine terms.",
        ),
    ] = DEFAULT_ENGINE,
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
        str,
        typer.Option(
            "--calibration",
            help="A bundled calibration id or a `hetplace calibrate` .yaml file; 'none' = the catalog's "
            "datasheet priors.",
        ),
    ] = DEFAULT_CALIBRATION,
) -> None:
    """Operators of one config with FLOPs, bytes, OI, CF, latency and bound — or a workflow's steps on every device.

    With --isl/--osl and one of --batch/--concurrency/--max-load, also the serving estimate (TTFT, TPOT, e2e,
    output tokens/s; README "Serving estimate")."""
    from hetplace.catalogs.loader import load_engines, resolve_engine_id
    from hetplace.costmodels.analysis import analyze_llm, analyze_serving, analyze_workflow
    from hetplace.costmodels.engine_terms import serving_params
    from hetplace.reports import terminal as screens

    if workflow is not None:
        one_config = ("model", "device", "tp", "phase", "batch", "prompt_tokens", "context", "dtype", "kv_dtype")
        serving_only = ("engine", "isl", "osl", "concurrency", "max_load", "plot")
        _refuse_together(
            "analyze",
            "--workflow",
            _explicit(ctx, *one_config, *serving_only),
            "they describe one model on one device (a workflow runs every step on every catalog device at batch 1, "
            "and draws no roofline)",
        )
    if plot is not None:
        check_output_file(plot, "--plot", PNG)
    catalog = load_catalog()
    cal = None
    if calibration != "none":
        from hetplace.catalogs.loader import resolve_calibration

        cal = resolve_calibration(calibration, Path.cwd(), "--calibration", catalog)
        catalog = catalog.with_calibration(cal)
    if workflow is not None:
        from hetplace.problems.loader import bundled_workflow_path, load_workflow

        path = (
            Path(workflow) if Path(workflow).suffix in (".yaml", ".yml", ".json") else bundled_workflow_path(workflow)
        )
        result = analyze_workflow(load_workflow(path, catalog), catalog)
        echo_json(result) if as_json else stdout_console().print(screens.workflow_view(result))
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
    engines = load_engines()
    engine_id = None if engine == "none" else resolve_engine_id(engine, engines, "--engine")
    params = serving_params(dev.id, engine_id, engines, cal)
    mode, load = _serving_mode(isl, osl, batch, concurrency, max_load)
    if mode is None:
        batch = batch or 1
        result = analyze_llm(arch, dev, tp, phase.value, batch, prompt_tokens, context, weight_dtype, 0, kv, params)
    else:
        assert isl is not None and osl is not None  # _serving_mode checked
        scheduler = engines[engine_id].scheduler if engine_id else None
        result = analyze_serving(arch, dev, tp, weight_dtype, kv, isl, osl, mode, load, phase.value, params, scheduler)
        batch = result["totals"]["batch"]
    result["priced_with"] = {"calibration": calibration, "engine": engine_id or "none"}
    if plot is not None:
        from hetplace.reports.roofline_plot import plot_roofline

        plot_roofline(
            [dev],
            weight_dtype,
            result["operators"],
            plot,
            title=f"{arch.id} {phase.value} on {dev.id}, tp={tp}, batch={batch}",
        )
    echo_json(result) if as_json else stdout_console().print(screens.analyze_view(result))


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


@app.command("calibrate")
@guarded
def calibrate_cmd(
    ctx: typer.Context,
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
    from hetplace.costmodels.calibration import calibrate, evaluate, holdout_mask, load_measurements
    from hetplace.reports import terminal as screens

    files = measurements or []
    if serving:
        _refuse_together(
            "calibrate", "--serving", _explicit(ctx, "evaluate_file", "holdout", "seed"), "they apply to the GEMM fit"
        )
    elif evaluate_file is not None:
        _refuse_together(
            "calibrate",
            "--evaluate",
            _explicit(ctx, "out_file", "holdout", "seed"),
            "--evaluate scores an existing calibration on every row and writes nothing",
        )
    if out_file is not None:
        check_output_file(out_file, "--out", YAML)
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
        title = f"{evaluate_file} scored on {measurements_file} ({result['rows']:,} rows)"
        stdout_console().print(screens.evaluation_table(result, title))
        return
    _check_rows_per_device(meas.device, holdout_mask(len(meas), holdout, seed), str(measurements_file))
    cal = calibrate(meas, catalog, held_back_fraction=holdout, seed=seed)
    text = dump_yaml(cal.model_dump(mode="json"))
    if out_file is not None:
        atomic_write_text(out_file, "# Written by `hetplace calibrate`; efficiency factors per device.\n" + text)
    if as_json:
        echo_json(cal.model_dump(mode="json"))
    elif out_file is None:
        typer.echo(text, nl=False)
    else:
        stdout_console().print(screens.calibration_table(cal))
        stderr_console().print(f"wrote {out_file}")


GEMM_FIT_PARAMETERS = 3  # η_c, η_m and the kernel overhead, per device


def _check_rows_per_device(devices: Any, held: Any, source: str) -> None:
    """A device needs rows in the fit: none is an input error (exit 2); fewer than the three fitted parameters is a
    warning on stderr (its factors are then not determined by the data), and the fit goes on."""
    for dev_id in sorted(set(devices)):
        rows = devices == dev_id
        n_fit, n_all = int((rows & ~held).sum()), int(rows.sum())
        if n_fit == 0:
            raise InputError.single(
                source, "device", f"{dev_id}: all {n_all} row(s) are held back; lower --holdout or add rows"
            )
        if n_fit < GEMM_FIT_PARAMETERS:
            stderr_console().print(
                f"warning: {dev_id} has {n_fit} fit row(s) ({n_all} in the file): too few to fit three parameters "
                "(η_c, η_m, overhead); its factors are not determined by the data",
                markup=False,
                soft_wrap=True,
            )


def _calibrate_serving(
    files: list[Path], base: Path | None, with_loso: bool, out_file: Path | None, as_json: bool
) -> None:
    """`calibrate --serving`: fit, write the calibration (atomically), print the before / fitted / LOSO table."""
    from hetplace.catalogs.loader import load_calibration, load_engines
    from hetplace.catalogs.serving_measurements import bundled_serving_dir, load_serving_measurements
    from hetplace.costmodels.serving_fit import report_dict, run_serving_fit, serving_calibration
    from hetplace.reports import terminal as screens

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
    stdout_console().print(screens.serving_table(report_dict(report), cal.serving_error_band))
    if out_file is None:
        stderr_console().print("no --out given: nothing written")
    else:
        stderr_console().print(f"wrote {out_file}")


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
    fleet_file: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            metavar="PLAN",
            help="Keep this plan's devices (as owned, no purchases) and only re-place pools for the scenario's "
            "demand; infeasible: says what the fleet is short of.",
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
    from hetplace.optimizer.model_file import MODEL_SUFFIXES, model_file_problem
    from hetplace.optimizer.solve import solve_scenario
    from hetplace.problems.loader import default_scenario_path, load_scenario
    from hetplace.reports import terminal as screens

    if model_file is not None:
        problem = model_file_problem(model_file)
        if problem is None and objective != Objective.min_tco:
            problem = "writes the min_tco model; it cannot be combined with --objective min_latency"
        if problem is not None:
            raise InputError.single(str(model_file), "--write-model", problem)
        check_output_file(model_file, "--write-model", MODEL_SUFFIXES)
    if out_file is not None:
        check_output_file(out_file, "--out", JSON_OR_YAML)
    resolved = load_scenario(scenario or default_scenario_path())
    if budget is not None:
        limits = resolved.scenario.limits.model_copy(update={"annual_budget_usd": budget})
        resolved.scenario = resolved.scenario.model_copy(update={"limits": limits})
    if robust:
        resolved.scenario = resolved.scenario.model_copy(update={"robust": True})
    if fleet_file is not None:
        from hetplace.optimizer.fleet import fixed_fleet
        from hetplace.problems.plan import Plan

        resolved = fixed_fleet(resolved, parse_model(Plan, load_mapping(fleet_file), str(fleet_file)), str(fleet_file))
        baselines = False  # a fixed fleet has no single-accelerator alternative to compare with
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
    if outcome.status == "infeasible" and fleet_file is not None:
        from hetplace.optimizer.fleet import fleet_shortage

        short = fleet_shortage(resolved, backend.value, time_limit, gap)
        outcome.diagnosis = [*(short or []), *outcome.diagnosis]
    if outcome.status == "infeasible":
        stderr_console().print(f"[bold red]infeasible:[/] {escape(str(resolved.source))}", markup=True)
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
        text = dump_yaml(data) if out_file.suffix.lower() in (".yaml", ".yml") else dump_json(data)
        atomic_write_text(out_file, text)
    if as_json:
        echo_json(data)
    else:
        stdout_console().print(screens.plan_screen(resolved, outcome.plan, outcome.status))
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
    ctx: typer.Context,
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
    warm_start: Annotated[
        bool,
        typer.Option(
            "--warm-start/--no-warm-start",
            help="Start each point from its solved neighbours' plans (same optimum, less time); off: every point cold.",
        ),
    ] = True,
) -> None:
    """Procurement what-ifs: solve a grid of scenario variants and compare their plans (exit 2 on bad input)."""
    from hetplace.problems.loader import default_scenario_path
    from hetplace.problems.sweep_point import PointResult
    from hetplace.reports import terminal as screens
    from hetplace.whatif.executors import run_points
    from hetplace.whatif.outputs import FOLDER_FILES, write_sweep_folder
    from hetplace.whatif.overrides import parse_value
    from hetplace.whatif.sweep import (
        Axis,
        SolveOptions,
        build_tasks,
        parse_axis,
        parse_sweep_file,
        split_assignment,
    )

    if executor == Executor.process:
        _refuse_together("whatif", "--executor process", _explicit(ctx, "address"), "--address names a Ray cluster")
    if out_dir is not None:
        check_output_folder(out_dir, "--out", FOLDER_FILES)
    path = scenario or default_scenario_path()
    fixed: list[tuple[str, object]] = []
    axes: list[Axis] = []
    if sweep_file is not None:
        fixed, axes = parse_sweep_file(sweep_file)
    for text in sets or []:
        spec, value = split_assignment(text, "--set")
        fixed.append((spec, parse_value(value)))
    axes += [parse_axis(t) for t in sweeps or []]
    options = SolveOptions(backend.value, gap, time_limit, objective.value, warm_start)
    tasks = build_tasks(path, fixed, axes, options)
    err = stderr_console()
    show_progress = err.is_terminal and not as_json
    finished: list[PointResult] = []  # kept when Ctrl-C stops the sweep

    def point_done(result: PointResult) -> None:
        finished.append(result)
        progress.advance(bar)
        if not show_progress and not as_json:  # a log line per point for batch jobs (no progress bar there)
            err.print(f"point {len(finished)}/{len(tasks)} done: {result.status}")

    with Progress(console=err, disable=not show_progress, transient=True) as progress:
        bar = progress.add_task(f"{len(tasks)} points on {executor.value}", total=len(tasks))
        try:
            results = run_points(tasks, executor.value, workers, address, on_done=point_done)
        except RuntimeError as exc:  # e.g. the ray extra is not installed
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(EXIT_INVALID_INPUT) from None
        except KeyboardInterrupt:
            _keep_partial_sweep(sorted(finished, key=lambda r: r.index), axes, len(tasks), out_dir, as_json)
            raise
    written = write_sweep_folder(results, axes, out_dir) if out_dir is not None else []
    if as_json:
        echo_json([r.model_dump(mode="json") for r in results])
    else:
        stdout_console().print(screens.sweep_table(results, [a.spec for a in axes]))
        for f in written:
            err.print(f"wrote {f}")


def _keep_partial_sweep(results, axes, planned: int, out_dir: Path | None, as_json: bool) -> None:
    """Ctrl-C during a sweep: show and write the points that finished, marked partial (then exit 130)."""
    from hetplace.reports import terminal as screens
    from hetplace.whatif.outputs import write_sweep_folder

    err = stderr_console()
    err.print(f"interrupted after {len(results)} of {planned} points")
    if not results:
        return  # nothing to keep; a previous --out folder stays as it was
    if out_dir is not None:
        for f in write_sweep_folder(results, axes, out_dir, planned=planned):
            err.print(f"wrote {f}")
    if as_json:
        echo_json([r.model_dump(mode="json") for r in results])
    else:
        table = screens.sweep_table(results, [a.spec for a in axes])
        table.title = f"What-if points (partial: {len(results)} of {planned}, interrupted)"
        stdout_console().print(table)


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
    from hetplace.reports import terminal as screens
    from hetplace.reports.report import schedule_rows

    if out_file is not None:
        check_output_file(out_file, "--out", JSON_OR_YAML)
    resolved = load_scenario(scenario)
    status, schedule = solve_schedule(resolved, backend.value, time_limit, gap, threads, greedy)
    if schedule is None:
        stderr_console().print(f"[bold red]{status}:[/] no schedule for {escape(str(scenario))}", markup=True)
        raise typer.Exit(EXIT_INFEASIBLE if status == "infeasible" else EXIT_NO_PLAN)
    data = schedule.model_dump(mode="json")
    if out_file is not None:
        text = dump_yaml(data) if out_file.suffix.lower() in (".yaml", ".yml") else dump_json(data)
        atomic_write_text(out_file, text)
    if as_json:
        echo_json(data)
        return
    stdout_console().print(screens.schedule_view(schedule, status, schedule_rows(schedule)))
    if out_file is not None:
        stderr_console().print(f"wrote {out_file}")


REPORT_SIMULATE_S = 1800.0  # report's simulated span per plan: about 10 s CPU on the default scenario (README)


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
    simulate_s: Annotated[
        float,
        typer.Option("--simulate-s", min=1.0, help="Seconds of Poisson arrivals to simulate each plan for (seed 0)."),
    ] = REPORT_SIMULATE_S,
    simulate: Annotated[
        bool, typer.Option("--simulate/--no-simulate", help="Add the Simulation section (or skip it).")
    ] = True,
) -> None:
    """Batch report: plan every scenario (with its schedule if it has a horizon), simulate each plan and write
    HTML + Markdown."""
    from hetplace.common.enums import SolverStatus
    from hetplace.common.output_paths import staged_folder
    from hetplace.optimizer.multiperiod import solve_schedule
    from hetplace.optimizer.solve import solve_scenario
    from hetplace.problems.loader import load_scenario
    from hetplace.reports.report import FOLDER_FILES, ScenarioSection, unique_folders, write_report
    from hetplace.simulate.run import SimOptions, simulate_plan
    from hetplace.whatif.executors import run_points
    from hetplace.whatif.outputs import write_outputs
    from hetplace.whatif.sweep import SolveOptions, build_tasks, parse_axis

    check_output_folder(out_dir, "--out", FOLDER_FILES)
    resolved_all = [load_scenario(p) for p in scenarios]  # every input checked before any solve
    axes = [parse_axis(t) for t in sweeps or []]
    tasks_all = [build_tasks(p, [], axes, SolveOptions(backend.value, max(gap, 0.005), time_limit)) for p in scenarios]
    sections = []
    err = stderr_console()
    folders = unique_folders([r.scenario.id for r in resolved_all])
    statuses: set[str] = set()  # every solve's status, for the exit code
    with staged_folder(out_dir) as stage:  # the whole folder appears at once, replacing an older report
        for path, resolved, tasks, folder in zip(scenarios, resolved_all, tasks_all, folders, strict=True):
            with err.status(f"planning {resolved.scenario.id}…") if err.is_terminal else contextlib.nullcontext():
                outcome = solve_scenario(resolved, backend.value, time_limit, gap, 1, baselines)
                section = ScenarioSection(resolved, outcome.plan, outcome.status, outcome.diagnosis, folder=folder)
                section.settings = {"gap target": f"{gap:g}", "baselines": "yes" if baselines else "no"}
                if resolved.scenario.horizon is not None:
                    schedule_status, section.schedule = solve_schedule(resolved, backend.value, time_limit, gap)
                    statuses.add(schedule_status)
                if axes:
                    section.sweep = run_points(tasks, "process", workers)
                    written = write_outputs(section.sweep, axes, stage / folder / "whatif")
                    section.sweep_charts = [f for f in written if f.suffix == ".png"]
                if simulate and outcome.plan is not None:
                    options = SimOptions(simulate_s, seed=0)
                    section.simulation = simulate_plan(resolved, outcome.plan, options, str(path))
            sections.append(section)
            statuses.add(outcome.status)
            err.print(f"{path}: {outcome.status}")
        pages = [out_dir / p.relative_to(stage) for p in write_report(sections, stage)]
    for page in pages:
        err.print(f"wrote {page}")
    # A batch job must be able to tell: the report is written either way, the exit code says whether every
    # scenario got a plan (1 = some scenario is infeasible, else 3 = some solve stopped without a plan).
    if SolverStatus.infeasible in statuses:
        raise typer.Exit(EXIT_INFEASIBLE)
    if SolverStatus.no_solution in statuses:
        raise typer.Exit(EXIT_NO_PLAN)


@app.command("check")
@guarded
def check_cmd(
    scenario: Annotated[Path, typer.Argument(help="The scenario the plan was made for.")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan written by `hetplace solve --out`.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    export_dir: Annotated[
        Path | None,
        typer.Option("--export", help="Also check that this `hetplace export` folder agrees with the plan."),
    ] = None,
) -> None:
    """Recompute every constraint of a plan independently of the solver; exit 1 if any is violated."""
    from hetplace.optimizer.checker import check_notes, check_plan
    from hetplace.optimizer.plan_match import plan_mismatches
    from hetplace.problems.loader import load_scenario
    from hetplace.problems.plan import Plan

    resolved = load_scenario(scenario)
    plan = parse_model(Plan, load_mapping(plan_file), str(plan_file))
    mismatches = plan_mismatches(resolved, plan)  # a plan made for another scenario: input error, exit 2
    if mismatches:
        raise InputError(f"{plan_file} (checked against {scenario})", mismatches)
    violations = check_plan(resolved, plan)
    notes = check_notes(resolved, plan)  # e.g. user rows (extra_constraints) are not re-checked
    if export_dir is not None:
        from hetplace.export.verify import verify_export

        violations += [f"export {export_dir}: {m}" for m in verify_export(plan, resolved, str(plan_file), export_dir)]
    if as_json:
        echo_json({"valid": not violations, "violations": violations, "notes": notes})
    else:
        for v in violations:
            stderr_console().print(f"[red]violation:[/] {escape(v)}", markup=True, soft_wrap=True)
        for note in notes:
            stderr_console().print(f"[yellow]note:[/] {escape(note)}", markup=True, soft_wrap=True)
        if not violations:
            agrees = f"; the export in {escape(str(export_dir))} agrees with it" if export_dir is not None else ""
            stdout_console().print(
                f"[green]plan is valid[/]: every constraint of {escape(str(scenario))} holds{agrees}", markup=True
            )
    if violations:
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command("schema")
@guarded
def schema(kind: Annotated[DocumentKind, typer.Argument(help=", ".join(SCHEMAS))]) -> None:
    """Print the JSON Schema of a document kind."""
    typer.echo(json.dumps(json_schema(kind.value), indent=2))


@app.command("export")
@guarded
def export_cmd(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan written by `hetplace solve --out`.")],
    scenario: Annotated[Path, typer.Option("--scenario", help="The scenario the plan was made for.")],
    fmt: Annotated[str, typer.Option("--format", help="vllm, sglang, k8s, dynamo or purchase-order.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (replaced atomically).")],
    schedule_file: Annotated[
        Path | None, typer.Option("--schedule", help="purchase-order: a `hetplace schedule --out` file (delivery).")
    ] = None,
) -> None:
    """Deployment artefacts from a plan: engine launch commands, Kubernetes manifests, Dynamo graphs or a purchase
    order (exit 2 on a plan of another scenario, an unknown format or a model without a Hugging Face repo)."""
    from hetplace.export.write import export_plan, parse_format
    from hetplace.problems.loader import load_scenario
    from hetplace.problems.plan import Plan, SchedulePlan

    export_format = parse_format(fmt)
    resolved = load_scenario(scenario)
    plan = parse_model(Plan, load_mapping(plan_file), str(plan_file))
    schedule = None
    if schedule_file is not None:
        schedule = parse_model(SchedulePlan, load_mapping(schedule_file), str(schedule_file))
    written = export_plan(plan, resolved, str(plan_file), export_format, out_dir, schedule, str(schedule_file))
    stderr_console().print(f"wrote {len(written)} files to {out_dir} ({export_format.value})")


# ---- simulate and workflow (issue 16) ------------------------------------------------------------------------


@app.command("simulate")
@guarded
def simulate_cmd(
    scenario: Annotated[Path, typer.Argument(help="The scenario the plan was made for.")],
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan written by `hetplace solve --out`.")],
    duration: Annotated[float, typer.Option("--duration", min=1.0, help="Seconds of arrivals to simulate.")] = 600.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same output).")] = 0,
    arrivals: Annotated[
        str,
        typer.Option("--arrivals", help="poisson, gamma:CV (gaps with that coefficient of variation) or trace:FILE."),
    ] = "poisson",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for CSV/JSON results, latency-CDF and queue PNGs.")
    ] = None,
    switch: Annotated[
        str | None,
        typer.Option(
            "--switch",
            help="T1=PLAN1,T2=PLAN2,...: switch to PLAN1 at T1 s, ... (blue-green); compares with PLAN kept static.",
        ),
    ] = None,
) -> None:
    """Discrete-event simulation of a plan: end-to-end latency percentiles and SLA attainment per workflow,
    TTFT/TPOT per LLM step, utilisation and queue length per pool."""
    from hetplace.problems.loader import load_scenario
    from hetplace.problems.plan import Plan
    from hetplace.reports import terminal as screens
    from hetplace.simulate.arrivals import parse_arrival_spec
    from hetplace.simulate.results import write_outputs
    from hetplace.simulate.run import SimOptions, simulate_plan

    spec = parse_arrival_spec(arrivals)
    if switch is not None:
        if out_dir is not None:
            raise InputError.single("--out", "", "not written with --switch (it prints the comparison only)")
        switches = _parse_switches(switch)
    resolved = load_scenario(scenario)
    plan = parse_model(Plan, load_mapping(plan_file), str(plan_file))
    if switch is not None:
        from hetplace.simulate.switch import Segment, simulate_switching

        segments = [Segment(0.0, plan, str(plan_file))]
        segments += [Segment(t, parse_model(Plan, load_mapping(p), str(p)), str(p)) for t, p in switches]
        comparison = simulate_switching(resolved, segments, SimOptions(duration, seed, spec))
        if as_json:
            echo_json(comparison.summary())
        else:
            stdout_console().print(comparison.table())
        return
    result = simulate_plan(resolved, plan, SimOptions(duration, seed, spec), str(plan_file))
    if out_dir is not None:
        for f in write_outputs(result, out_dir):
            stderr_console().print(f"wrote {f}")
    if as_json:
        echo_json(result.summary())
        return
    stdout_console().print(screens.simulation_view(result))


def _parse_switches(text: str) -> list[tuple[float, Path]]:
    """`simulate --switch T1=PLAN1,T2=PLAN2`: (time s, plan path) pairs, times > 0 and increasing."""
    out: list[tuple[float, Path]] = []
    for i, item in enumerate(text.split(",")):
        t, sep, path = item.partition("=")
        try:
            time_s = float(t)
        except ValueError:
            time_s = float("nan")
        if not sep or not path or not time_s > (out[-1][0] if out else 0.0):
            raise InputError.single(
                "--switch", f"[{i}]", f"'{item}': use T=PLAN with times in seconds, > 0 and increasing"
            )
        out.append((time_s, Path(path)))
    return out


workflow_app = typer.Typer(help="Build workflow documents (from public serving traces).", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


class TraceFormat(StrEnum):
    azure_llm = "azure-llm"
    burstgpt = "burstgpt"
    mooncake = "mooncake"
    copilot_agent = "copilot-agent"


@workflow_app.command("from-trace")
@guarded
def workflow_from_trace(
    trace_file: Annotated[Path, typer.Argument(metavar="FILE", help="The trace file.")],
    fmt: Annotated[TraceFormat, typer.Option("--format", help="The trace's format.")],
    out: Annotated[Path | None, typer.Option("--out", help="Workflow YAML to write (default: print it).")] = None,
    arrivals_out: Annotated[
        Path | None, typer.Option("--arrivals-out", help="Arrival CSV for `simulate --arrivals trace:FILE`.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="Catalog LLM that serves the trace's calls.")] = "llama-3.1-8b",
    sla: Annotated[float, typer.Option("--sla", min=0.001, help="End-to-end SLA of one request, s.")] = 30.0,
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="Workflow id (default: from format and file).")
    ] = None,
) -> None:
    """Turn a public LLM-serving trace into a workflow (arrival rate, mean token counts, cached-prefix share; agent
    loop and tool-batch durations for copilot-agent sessions) and an arrival file with every request's own token
    counts."""
    from hetplace.simulate.agent_traces import copilot_workflow, read_sessions
    from hetplace.simulate.traces import read_trace, trace_workflow

    if fmt is TraceFormat.copilot_agent:
        turns = read_sessions(trace_file)
        built = copilot_workflow(turns, str(trace_file), model, sla, load_catalog(), workflow_id)
    else:
        trace = read_trace(trace_file, fmt.value)
        built = trace_workflow(trace, fmt.value, str(trace_file), model, sla, load_catalog(), workflow_id)
    text = dump_yaml(built.workflow)
    if out is not None:
        atomic_write_text(out, text)
    if arrivals_out is not None:
        atomic_write_text(arrivals_out, built.arrivals_csv)
    if out is None:
        typer.echo(text, nl=False)
    err = stderr_console()
    err.print(
        f"{built.requests:,} requests over {built.span_s:,.1f} s ({built.skipped} skipped) → workflow "
        f"'{built.workflow['id']}' at {built.workflow['arrival_rate_rps']:.3f} req/s"
    )
    for f in (out, arrivals_out):
        if f is not None:
            err.print(f"wrote {f}")


if __name__ == "__main__":
    app()
