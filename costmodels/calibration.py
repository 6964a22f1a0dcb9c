"""Fit per-device efficiency factors and launch overheads to measured GEMM timings, and score calibrations.

Model fitted (the same one the roofline uses for weight GEMMs, see gemm.py):
    t = max(tile/wave-padded FLOPs / (peak · η_c), bytes / (BW · η_m)) + overhead
Per device we search η_c, η_m ∈ [0.2, 1] and overhead ∈ [0, 60] µs minimising the mean absolute log error
(robust to the heavy tail of tiny kernels), coarse grid then a fine grid around the best point. A seeded fraction
of rows is kept out of the fit to report held-back error honestly.

Input formats (detected from the header):
- vidur profiles as converted in ../shared/data/measurements/vidur_gemm_fp16.csv:
  device, m, k, n, dtype, measured_ms_median, ... (other columns ignored)
- hetplace's own: device, m, k, n, dtype, time_s
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hetplace.catalogs.calibration_schema import CalibrationFile, DeviceCalibration, ErrorStats
from hetplace.catalogs.loader import Catalog
from hetplace.catalogs.schema import Device, Dtype
from hetplace.common.errors import InputError
from hetplace.common.io import read_text
from hetplace.costmodels.arrays import BoolArray, FloatArray, StrArray
from hetplace.costmodels.gemm import gemm_time

VIDUR_COLUMNS = ("device", "m", "k", "n", "dtype", "measured_ms_median")
HETPLACE_COLUMNS = ("device", "m", "k", "n", "dtype", "time_s")
METHOD = "grid search of eta_c, eta_m, overhead on mean |log(pred/measured)|; tile/wave-padded GEMM roofline"


@dataclass(frozen=True)
class Measurements:
    source: str
    device: StrArray  # device ids
    dtype: StrArray
    m: FloatArray
    k: FloatArray
    n: FloatArray
    time_s: FloatArray

    def __len__(self) -> int:
        return int(self.m.size)

    def subset(self, mask: BoolArray) -> Measurements:
        return Measurements(
            self.source, *(getattr(self, f)[mask] for f in ("device", "dtype", "m", "k", "n", "time_s"))
        )


def load_measurements(path: Path) -> Measurements:
    """Read a measurement CSV in vidur or hetplace format; bad rows are errors naming line and column."""
    text = read_text(Path(path))
    src = str(path)
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if set(VIDUR_COLUMNS) <= set(header):
        time_col, scale = "measured_ms_median", 1e-3
    elif set(HETPLACE_COLUMNS) <= set(header):
        time_col, scale = "time_s", 1.0
    else:
        raise InputError.single(
            src,
            "header",
            f"expected columns {', '.join(HETPLACE_COLUMNS)} (or vidur's "
            f"{', '.join(VIDUR_COLUMNS)}); found {', '.join(header) or 'none'}",
        )
    cols: dict[str, list] = {c: [] for c in ("device", "dtype", "m", "k", "n", "time_s")}
    for line_no, row in enumerate(reader, start=2):
        try:
            values = [float(row[c]) for c in ("m", "k", "n", time_col)]
        except (TypeError, ValueError):
            raise InputError.single(src, f"line {line_no}", "m, k, n and the time must be numbers") from None
        if min(values) <= 0:
            raise InputError.single(src, f"line {line_no}", "m, k, n and the time must be positive")
        cols["device"].append(row["device"])
        cols["dtype"].append(row["dtype"])
        for c, v in zip(("m", "k", "n", "time_s"), values, strict=True):
            cols[c].append(v * (scale if c == "time_s" else 1.0))
    if not cols["m"]:
        raise InputError.single(src, "", "no measurement rows")
    return Measurements(
        src,
        np.array(cols["device"]),
        np.array(cols["dtype"]),
        *(np.array(cols[c], dtype=float) for c in ("m", "k", "n", "time_s")),
    )


def holdout_mask(n: int, fraction: float, seed: int) -> BoolArray:
    """True for rows kept out of the fit: a seeded random `fraction` (reproducible across runs)."""
    rng = np.random.default_rng(seed)
    return rng.random(n) < fraction


def _device_arrays(device: Device, dtype: str) -> tuple[float, float, float]:
    dt = Dtype("bf16" if dtype == "fp16" and "fp16" not in device.peak_tflops else dtype)
    if dt not in device.peak_tflops:
        raise InputError.single("measurements", "dtype", f"{device.id} has no {dt.value} peak in the catalog")
    units = float(device.compute_units) if device.compute_units else np.nan
    return device.peak_tflops[dt] * 1e12, device.mem_bw_gbs * 1e9, units


def predict(
    device: Device, meas: Measurements, eta_c: float, eta_m: float, overhead_s: float, padded: bool = True
) -> FloatArray:
    """Modelled GEMM times for the rows of `meas` (all on `device`)."""
    peak, bw, units = _device_arrays(device, str(meas.dtype[0]))
    return gemm_time(meas.m, meas.n, meas.k, peak, bw, eta_c, eta_m, overhead_s, units if padded else np.nan)


def error_stats(pred: FloatArray, measured: FloatArray) -> ErrorStats:
    err = np.abs(pred / measured - 1.0)
    return ErrorStats(
        rows=int(err.size),
        median_abs_error=float(np.median(err)) if err.size else 0.0,
        p90_abs_error=float(np.percentile(err, 90)) if err.size else 0.0,
    )


def _grid_search(
    terms: tuple[FloatArray, FloatArray],
    measured: FloatArray,
    etas_c: FloatArray,
    etas_m: FloatArray,
    overheads: FloatArray,
) -> tuple[float, float, float]:
    compute, memory = terms  # times at η = 1, no overhead
    log_t = np.log(measured)
    best = (np.inf, 1.0, 1.0, 0.0)
    for ec in etas_c:
        c = compute / ec
        for em in etas_m:
            base = np.maximum(c, memory / em)
            # all overheads at once: (n_overheads, n_rows)
            err = np.mean(np.abs(np.log(base[None, :] + overheads[:, None]) - log_t[None, :]), axis=1)
            i = int(np.argmin(err))
            if err[i] < best[0]:
                best = (float(err[i]), float(ec), float(em), float(overheads[i]))
    return best[1], best[2], best[3]


def fit_device(device: Device, meas: Measurements) -> tuple[float, float, float]:
    """(η_c, η_m, overhead_s) minimising mean |log error| on `meas` (rows of one device and dtype)."""
    peak, bw, units = _device_arrays(device, str(meas.dtype[0]))
    compute = gemm_time(meas.m, meas.n, meas.k, peak, np.inf, 1.0, 1.0, 0.0, units)
    memory = gemm_time(meas.m, meas.n, meas.k, np.inf, bw, 1.0, 1.0, 0.0, units)
    ec, em, oh = _grid_search(
        (compute, memory),
        meas.time_s,
        np.arange(0.2, 1.0001, 0.05),
        np.arange(0.2, 1.0001, 0.05),
        np.arange(0.0, 60.1e-6, 5e-6),
    )
    fine = np.arange(-0.05, 0.0501, 0.005)
    return _grid_search(
        (compute, memory),
        meas.time_s,
        np.clip(ec + fine, 0.05, 1.0),
        np.clip(em + fine, 0.05, 1.0),
        np.clip(oh + np.arange(-5e-6, 5.01e-6, 0.5e-6), 0.0, None),
    )


def _stats(device: Device, part: Measurements, ec: float, em: float, oh: float, padded: bool) -> ErrorStats | None:
    return error_stats(predict(device, part, ec, em, oh, padded), part.time_s) if len(part) else None


def calibrate(meas: Measurements, catalog: Catalog, held_back_fraction: float = 0.25, seed: int = 0) -> CalibrationFile:
    """Fit every device in `meas`; report datasheet vs fitted error on fit and held-back rows."""
    unknown = sorted(set(meas.device) - catalog.devices.keys())
    if unknown:
        raise InputError.single(meas.source, "device", f"devices not in the catalog: {', '.join(unknown)}")
    held = holdout_mask(len(meas), held_back_fraction, seed)
    out: dict[str, DeviceCalibration] = {}
    for dev_id in sorted(set(meas.device)):
        device = catalog.device(dev_id)
        rows = meas.device == dev_id
        fit_rows, test_rows = meas.subset(rows & ~held), meas.subset(rows & held)
        ec, em, oh = fit_device(device, fit_rows)

        fitted, datasheet = (ec, em, oh, True), (1.0, 1.0, 0.0, False)
        out[dev_id] = DeviceCalibration(
            compute=round(ec, 4),
            memory=round(em, 4),
            kernel_overhead_us=round(oh * 1e6, 3),
            fit=_stats(device, fit_rows, *fitted),
            held_back=_stats(device, test_rows, *fitted),
            datasheet_fit=_stats(device, fit_rows, *datasheet),
            datasheet_held_back=_stats(device, test_rows, *datasheet),
        )
    return CalibrationFile(
        measurements=meas.source, method=METHOD, held_back_fraction=held_back_fraction, seed=seed, devices=out
    )


def evaluate(meas: Measurements, calibration: CalibrationFile, catalog: Catalog) -> dict:
    """Score an existing calibration on other measurements (no refitting): overall and per device.

    Devices the calibration does not cover are scored with the catalog's prior factors and marked so."""
    preds = np.empty(len(meas))
    per_device = {}
    for dev_id in sorted(set(meas.device)):
        if dev_id not in catalog.devices:
            raise InputError.single(meas.source, "device", f"device '{dev_id}' is not in the catalog")
        device = catalog.device(dev_id)
        rows = meas.device == dev_id
        cal = calibration.devices.get(dev_id)
        eff = cal.efficiency() if cal else device.efficiency
        preds[rows] = predict(device, meas.subset(rows), eff.compute, eff.memory, eff.kernel_overhead_us * 1e-6)
        s = error_stats(preds[rows], meas.time_s[rows])
        per_device[dev_id] = {**s.model_dump(), "factors": "calibrated" if cal else "catalog prior"}
    total = error_stats(preds, meas.time_s)
    return {
        "measurements": meas.source,
        "rows": total.rows,
        "median_abs_error": total.median_abs_error,
        "p90_abs_error": total.p90_abs_error,
        "per_device": per_device,
    }
