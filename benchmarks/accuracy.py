"""Serving accuracy benchmark: the bundled public serving rows, priced by the serving model before calibration
(neutral terms), after fitting on all rows, and leave-one-source-out, as Markdown tables.

    python -m benchmarks.accuracy                       # prints the tables (about 1.5 minutes on 2 cores)
    python -m benchmarks.accuracy --out benchmarks/RESULTS.md   # also writes them into that file's
                                                                # "Serving accuracy" section (replaced if present)
    python -m benchmarks.accuracy --gemm ../shared/data/measurements/vidur_gemm_fp16.csv   # + GEMMs, held-out models

The fit runs on top of the bundled GEMM calibration (catalogs/calibrations/vidur-gemm-fp16.yaml), as
catalogs/calibrations/serving-public.yaml does. Error = |predicted − measured| / measured; speed = predicted /
measured speed (throughput as is, 1/latency for latencies), geometric mean: > 1 means the model is optimistic.
Leave-one-source-out: each source group's rows are predicted by a fit that never saw them; a (device, engine)
pair with no rows left in the other sources runs neutral, like an uncalibrated device (costmodels/serving_fit.py).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hetplace.catalogs.loader import bundled_dir, load_calibration, load_catalog, load_engines
from hetplace.catalogs.serving_measurements import load_serving_measurements
from hetplace.common.io import atomic_write_text
from hetplace.costmodels.calibration import fit_device, load_measurements, predict
from hetplace.costmodels.serving_fit import (
    ANY_DEVICE,
    BREAKDOWNS,
    FIT_PARAMS,
    OLDER_WEIGHT,
    OVERHEAD_FORM,
    OVERHEAD_FORMS,
    PRIOR_WEIGHT,
    CaseCache,
    ErrorSummary,
    MappedRow,
    Prediction,
    ServingReport,
    breakdown,
    error_bands,
    held_out,
    is_current,
    map_rows,
    run_serving_fit,
    skip_counts,
)

START, END = "<!-- serving-accuracy:start -->", "<!-- serving-accuracy:end -->"
GEMM_BASE = bundled_dir("calibrations") / "vidur-gemm-fp16.yaml"


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{x * 100:.1f}%"


def _cell(s: ErrorSummary | None) -> str:
    return "—" if s is None or s.rows == 0 else f"{_pct(s.median)} / {_pct(s.p90)}"


def _speed(s: ErrorSummary | None) -> str:
    return "—" if s is None or s.rows == 0 else f"{s.speed_geomean:.2f}"


def comparison_table(title: str, key: str | None, runs: Mapping[str, Sequence[Prediction]]) -> list[str]:
    """One Markdown table: rows = labels of `key` (None: overall), columns = median / p90 and speed per run."""
    per_run = {
        name: ({"all": ErrorSummary.of(preds)} if key is None else breakdown(preds, key))
        for name, preds in runs.items()
    }
    first = next(iter(per_run.values()))
    head = [title, "rows", *(f"{n} med / p90" for n in runs), *(f"{n} speed" for n in runs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s0 in first.items():
        cells = [per_run[n].get(label) for n in runs]
        lines.append(
            "| " + " | ".join([label, f"{s0.rows:,}", *(_cell(c) for c in cells), *(_speed(c) for c in cells)]) + " |"
        )
    return lines


def terms_table(report: ServingReport) -> list[str]:
    names = FIT_PARAMS
    labels = {"step_overhead_s": "step overhead ms", "layer_overhead_s": "layer overhead µs",
              "ttft_overhead_s": "TTFT overhead ms", "compute_eta": "compute η×",
              "decode_attention_eta": "decode attn η×", "moe_gemm_eta": "MoE η×", "fp8_gemm_eta": "fp8 η×",
              "fp4_gemm_eta": "fp4 η×"}  # fmt: skip
    head = ["device", "engine", "rows", *(labels[n] for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    engine_level = {(ANY_DEVICE, e): pf for e, pf in report.fit.engines.items()}
    for (dev, eng), pf in {**report.fit.pairs, **engine_level}.items():
        vals = []
        for n in names:
            if n not in pf.names:
                vals.append("—")
            else:
                v = getattr(pf.params, n)
                scale = 1e6 if n == "layer_overhead_s" else 1e3
                vals.append(f"{v * scale:.1f}" if n.endswith("_s") else f"{v:.2f}")
        lines.append("| " + " | ".join([dev, eng, f"{pf.rows:,}", *vals]) + " |")
    return lines


def markdown(report: ServingReport) -> str:
    runs: dict[str, Sequence[Prediction]] = {"neutral": report.before, "fitted": report.after}
    if report.loso is not None:
        runs["LOSO"] = report.loso
    if report.lomo is not None:
        runs["LOMO"] = report.lomo
    skipped = ", ".join(f"{n} {reason}" for reason, n in skip_counts(report.skipped).items()) or "none"
    out = [
        "## Serving accuracy (public end-to-end measurements)",
        "",
        f"`python -m benchmarks.accuracy`: {report.rows:,} bundled rows (catalogs/measurements/serving), "
        f"{len(report.mapped):,} priced; not priced: {skipped}. Fit on all rows {report.fit_seconds:.0f} s, "
        f"leave-one-source-out {report.loso_seconds:.0f} s, "
        f"leave-one-model-out {report.lomo_seconds:.0f} s (this machine, one process). Cells: median / p90 of "
        "|predicted − measured| / measured; speed: geometric mean of predicted / measured speed (> 1: optimistic). "
        "`neutral` = the serving model with no engine terms (GEMM calibration only), `fitted` = terms fitted on all "
        "rows and scored on the same rows, `LOSO` = each source group predicted by a fit on the others (the two "
        "InferenceMAX ids are one group), `LOMO` = each model family (Llama sizes together) predicted by a fit that "
        "never saw it. Era: `current` = a stack from 2025-09 on, `older` = before or unknown (measurements README, "
        '"Stack era"); older rows enter the fit at weight '
        f"{OLDER_WEIGHT:g}, the priors at weight {PRIOR_WEIGHT:g}.",
        "",
    ]
    held = report.loso if report.loso is not None else report.lomo
    if held is not None and len(held) < len(report.mapped):
        out += [
            f"LOSO and LOMO score the {len(held):,} current-stack rows only (`--transfer-rows current`); their "
            "cells for older rows are empty.",
            "",
        ]
    out += [*comparison_table("overall", None, runs), ""]
    for key in BREAKDOWNS:
        out += [*comparison_table(key, key, runs), ""]
    if report.loso is not None:
        bands = error_bands(report.loso)
        out += [
            "Error band per device (p90 of the LOSO error over its current-stack rows, else all its rows; "
            "`serving_error_band`):",
            "",
        ]
        out += ["| device | band |", "|---|---|"] + [f"| {d} | {_pct(b)} |" for d, b in bands.items()] + [""]
    out += [
        "Fitted terms (all rows; η× multiplies the device's η; — = not visible in that pair's rows; device `*` = "
        "the engine-level terms a device without its own rows runs with):",
        "",
    ]
    out += [*terms_table(report), ""]
    return "\n".join(out)


def select_weights(
    mapped: Sequence[MappedRow],
    cache: CaseCache,
    prior_weights: Sequence[float],
    older_weights: Sequence[float],
    overhead_form: str | None = None,
) -> list[str]:
    """The transfer error of current-stack rows (LOSO and LOMO medians, their mean) for each (prior weight, older
    weight): the numbers PRIOR_WEIGHT and OLDER_WEIGHT are chosen by (costmodels/serving_fit.py docstring)."""
    lines = [
        "| prior weight | older weight | LOSO med / p90 | LOMO med / p90 | mean of medians | LOSO speed | LOMO speed |",
        "|---|---|---|---|---|---|---|",
    ]
    for ow in older_weights:
        for pw in prior_weights:
            so = ErrorSummary.of(held_out(mapped, cache, "source", pw, ow, is_current, overhead_form=overhead_form))
            mo = ErrorSummary.of(held_out(mapped, cache, "model", pw, ow, is_current, overhead_form=overhead_form))
            lines.append(
                f"| {pw:g} | {ow:g} | {_cell(so)} | {_cell(mo)} | {_pct((so.median + mo.median) / 2)} | "
                f"{_speed(so)} | {_speed(mo)} |"
            )
            print(lines[-1], flush=True)
    return lines


def gemm_held_out_models(path: Path) -> str:
    """GEMM calibration transfer to unseen architectures: per device, η_c, η_m and overhead fitted on every model but
    one (costmodels/calibration.fit_device), scored on that model's rows (vidur CSV with a `model` column)."""
    measurements = load_measurements(path)
    with path.open(encoding="utf-8") as f:
        models = np.array([row.get("model", "") for row in csv.DictReader(f)])
    catalog = load_catalog()
    lines = ["| device | held-out model | rows | median | p90 |", "|---|---|---|---|---|"]
    errors: list[np.ndarray] = []
    for dev_id in np.unique(measurements.device):
        device = catalog.devices[str(dev_id)]
        on_dev = measurements.device == dev_id
        for model in np.unique(models[on_dev]):
            held = measurements.subset(on_dev & (models == model))
            eta_c, eta_m, overhead_s = fit_device(device, measurements.subset(on_dev & (models != model)))
            err = np.abs(predict(device, held, eta_c, eta_m, overhead_s) / held.time_s - 1.0)
            errors.append(err)
            lines.append(
                f"| {dev_id} | {model} | {err.size:,} | {_pct(float(np.median(err)))} | "
                f"{_pct(float(np.quantile(err, 0.9)))} |"
            )
    pooled = np.concatenate(errors)
    lines.append(
        f"| all | | {pooled.size:,} | {_pct(float(np.median(pooled)))} | {_pct(float(np.quantile(pooled, 0.9)))} |"
    )
    head = [
        "### GEMMs on held-out models",
        "",
        f"`{path.name}`: per device, the GEMM calibration fitted on all models but one and scored on that one.",
        "",
    ]
    return "\n".join(head + lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace the marked section of `path` (or append it; create the file if missing), atomically."""
    block = f"{START}\n{text}\n{END}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + block
    atomic_write_text(path, new)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="Write the tables into this Markdown file's serving-accuracy section.")
    ap.add_argument("--no-loso", action="store_true", help="Skip leave-one-source-out and leave-one-model-out.")
    ap.add_argument("--no-lomo", action="store_true", help="Skip leave-one-model-out.")
    ap.add_argument(
        "--transfer-rows",
        choices=("all", "current"),
        default="all",
        help="Rows LOSO/LOMO score: all, or only current-stack rows (fewer fits: older-only sources are not held out).",
    )
    ap.add_argument(
        "--select",
        nargs=2,
        metavar=("PRIOR_WEIGHTS", "OLDER_WEIGHTS"),
        help="Only print the current-stack transfer error for each comma-separated prior weight x older weight.",
    )
    ap.add_argument(
        "--overhead-form",
        choices=tuple(OVERHEAD_FORMS),
        help=f"The fixed cost per forward step the fit searches (default {OVERHEAD_FORM}; serving_fit.OVERHEAD_FORMS).",
    )
    ap.add_argument("--gemm", type=Path, help="Also score the GEMM calibration on held-out models of this vidur CSV.")
    args = ap.parse_args(argv)
    catalog = load_catalog()
    catalog = catalog.with_calibration(load_calibration(GEMM_BASE, catalog))
    rows = load_serving_measurements()
    if args.select is not None:
        mapped, _ = map_rows(rows, catalog, load_engines())
        pws, ows = ([float(x) for x in a.split(",")] for a in args.select)
        print("\n".join(select_weights(mapped, CaseCache(catalog), pws, ows, args.overhead_form)))
        return
    report = run_serving_fit(
        rows,
        catalog,
        load_engines(),
        with_loso=not args.no_loso,
        with_lomo=not (args.no_loso or args.no_lomo),
        held_filter=is_current if args.transfer_rows == "current" else None,
        overhead_form=args.overhead_form,
    )
    text = markdown(report)
    if args.gemm is not None:
        text += "\n" + gemm_held_out_models(args.gemm)
    print(text)
    if args.out is not None:
        write_section(args.out, text)


if __name__ == "__main__":
    main()
