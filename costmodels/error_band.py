"""The serving estimate's error band per device, and the engine terms a plan is priced with, per device.

Robust planning (`hetplace solve --robust`, scenario `robust: true`) prices every LLM config of a device at the
slow end of its band: latency × (1 + band) and throughput ÷ (1 + band). The band is the calibration's
`serving_error_band[device]` (p90 of the leave-one-source-out error), else the file's
`serving_error_band_default` (the uncalibrated model's p90), else DEFAULT_SERVING_ERROR_BAND — an assumption for
devices without serving data. The optimizer's menus and the independent checker both read these
two functions, so both price the same numbers `hetplace analyze --engine E --calibration F` prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hetplace.catalogs.calibration_schema import DEFAULT_SERVING_ERROR_BAND, CalibrationFile
from hetplace.catalogs.engine_schema import Engine
from hetplace.costmodels.engine_terms import ServingParams, serving_params


def error_band(device_id: str, calibration: CalibrationFile | None) -> float:
    """Relative error band (fraction) of the serving estimate on `device_id`."""
    if calibration is None:
        return DEFAULT_SERVING_ERROR_BAND
    band = calibration.error_band(device_id)  # the device's LOSO p90, else the file's uncalibrated default
    return DEFAULT_SERVING_ERROR_BAND if band is None else band


def slow_factor(device_id: str, calibration: CalibrationFile | None, robust: bool) -> float:
    """What robust planning multiplies a device's LLM latency by (and divides its throughput by); 1 if nominal."""
    return 1.0 + error_band(device_id, calibration) if robust else 1.0


def engine_params_by_device(
    device_ids: Iterable[str],
    engine_id: str | None,
    engines: Mapping[str, Engine],
    calibration: CalibrationFile | None,
) -> dict[str, ServingParams] | None:
    """Per device the terms a scenario's engine runs with (`serving_params`); None without an engine, which
    keeps every menu on the plain roofline, bit for bit."""
    if engine_id is None:
        return None
    return {d: serving_params(d, engine_id, engines, calibration) for d in device_ids}
