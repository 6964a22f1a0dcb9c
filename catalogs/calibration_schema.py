"""Calibration files: fitted efficiency factors per device that overlay the catalog's priors, and fitted serving
(engine) terms per device and engine.

Written by `hetplace calibrate`, read by `analyze --calibration` and by scenarios (`calibration:` key).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from hetplace.catalogs.schema import EfficiencyFactors
from hetplace.common.schema_base import (
    Fraction,
    Identifier,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    StrictModel,
)

DEFAULT_SERVING_ERROR_BAND = 0.25
"""Relative error band (fraction) assumed for a device the calibration has no serving data for (or with no
calibration at all): an assumption, not a measurement — roughly the p90 serving error of an uncalibrated roofline
after the engine terms, wider than a fitted device's band. `hetplace solve --robust` plans for latency × (1 + band)."""


class ErrorStats(StrictModel):
    """Absolute relative error |predicted − measured| / measured, as fractions."""

    rows: NonNegativeInt
    median_abs_error: NonNegativeFloat
    p90_abs_error: NonNegativeFloat


class DeviceCalibration(StrictModel):
    compute: Fraction
    memory: Fraction
    kernel_overhead_us: NonNegativeFloat
    fit: ErrorStats = Field(description="Error of the fitted model on the rows it was fitted on.")
    held_back: ErrorStats | None = Field(default=None, description="Error on rows kept out of the fit.")
    datasheet_fit: ErrorStats = Field(description="Error of the datasheet roofline (η=1, no overhead), fit rows.")
    datasheet_held_back: ErrorStats | None = None

    def efficiency(self) -> EfficiencyFactors:
        return EfficiencyFactors(
            compute=self.compute, memory=self.memory, kernel_overhead_us=self.kernel_overhead_us, basis="calibrated"
        )


class ServingTerms(StrictModel):
    """Engine terms of one (device, engine) pair; every default is neutral (the plain roofline). Mirrors
    hetplace.costmodels.engine_terms.ServingParams, whose docstrings say what each models and where a value
    comes from."""

    step_overhead_s: NonNegativeFloat = Field(default=0.0, description="Seconds per forward step (engine overhead).")
    layer_overhead_s: NonNegativeFloat = Field(
        default=0.0,
        description="Seconds per layer of every forward step (per-layer kernels and launch gaps); absent = 0.",
    )
    ttft_overhead_s: NonNegativeFloat = Field(
        default=0.0, description="Seconds added once to each request's time to first token (front end, admission)."
    )
    decode_attention_eta: PositiveFloat = Field(default=1.0, description="Multiplier on η_m of decode attention.")
    moe_gemm_eta: PositiveFloat = Field(default=1.0, description="Multiplier on η_c and η_m of routed-expert GEMMs.")
    fp8_gemm_eta: PositiveFloat = Field(default=1.0, description="Multiplier on η_c of fp8 weight GEMMs.")
    int8_gemm_eta: PositiveFloat = Field(default=1.0, description="Multiplier on η_c of int8 weight GEMMs.")
    fp4_gemm_eta: PositiveFloat = Field(default=1.0, description="Multiplier on η_c of fp4 weight GEMMs.")
    link_latency_s: NonNegativeFloat | None = Field(
        default=None, description="Seconds per all-reduce call on the scale-up link (null: built-in 10 µs)."
    )
    nic_latency_s: NonNegativeFloat | None = Field(
        default=None, description="Seconds per all-reduce call across nodes (null: built-in 25 µs)."
    )
    link_efficiency: Fraction | None = Field(
        default=None, description="Achieved / peak scale-up all-reduce bandwidth (null: built-in 0.8)."
    )
    nic_efficiency: Fraction | None = Field(
        default=None, description="Achieved / peak cross-node all-reduce bandwidth (null: built-in 0.8)."
    )
    compute_eta: PositiveFloat = Field(
        default=1.0, description="Multiplier on η_c of every operator (this engine's kernels; prefill speed)."
    )


class ServingFitInfo(StrictModel):
    """How the `serving` terms were fitted (`hetplace calibrate --serving`) and how well they transfer."""

    measurements: str = Field(description="Serving CSV file(s) the terms were fitted to.")
    method: str
    rows: NonNegativeInt = Field(description="Rows read.")
    rows_evaluated: NonNegativeInt = Field(description="Rows the serving model could price (the rest: `skipped`).")
    skipped: dict[str, NonNegativeInt] = Field(default_factory=dict, description="Rows not priced, by reason.")
    source_groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Sources left out together in leave-one-source-out (same benchmark)."
    )
    neutral: ErrorStats = Field(description="Error of the uncalibrated (neutral) serving model on all rows.")
    fitted: ErrorStats = Field(description="Error with the fitted terms on the rows they were fitted to.")
    leave_one_source_out: ErrorStats | None = Field(
        default=None, description="Error on each source group's rows of a fit that never saw that group."
    )
    transferred: dict[str, str] = Field(
        default_factory=dict,
        description="`device/engine` entries of `serving` with no rows of their own: the engine's terms shifted by "
        "what the device showed under its other engines (costmodels/serving_fit.device_transfer).",
    )


class CalibrationFile(StrictModel):
    schema_version: str = "1"
    measurements: str = Field(description="File(s) the factors were fitted to.")
    method: str
    held_back_fraction: float = Field(ge=0, lt=1)
    seed: int
    devices: dict[Identifier, DeviceCalibration]
    serving: dict[Identifier, dict[Identifier, ServingTerms]] = Field(
        default_factory=dict,
        description="Serving (engine) terms per device id, then per engine id (catalogs/engines); a pair not "
        "listed runs with the engine-level terms of `serving_engines`, else the engine's catalog defaults, else "
        "the neutral roofline.",
    )
    serving_engines: dict[Identifier, ServingTerms] = Field(
        default_factory=dict,
        description="Per engine id: terms fitted to the engine's rows on all devices, for a device without its own "
        "(device, engine) entry in `serving`.",
    )
    serving_error_band: dict[Identifier, NonNegativeFloat] = Field(
        default_factory=dict,
        description="Per device: p90 of the leave-one-source-out |predicted − measured| / measured of serving "
        "metrics (a fraction), the band `--robust` plans against (latency × (1 + band), throughput ÷ (1 + band)).",
    )
    serving_error_band_default: NonNegativeFloat | None = Field(
        default=None,
        description="Band of a device not in serving_error_band: it runs uncalibrated, so the neutral model's p90.",
    )
    serving_fit: ServingFitInfo | None = None

    def error_band(self, device_id: str) -> float | None:
        """The device's serving error band (fraction), the default for a device without one, or None."""
        return self.serving_error_band.get(device_id, self.serving_error_band_default)

    @model_serializer(mode="wrap")
    def _drop_empty_serving(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """GEMM-only calibrations are written exactly as before: no empty `serving*` keys."""
        data = handler(self)
        if isinstance(data, dict):
            for key in (
                "serving", "serving_engines", "serving_error_band", "serving_error_band_default", "serving_fit",
            ):  # fmt: skip
                if data.get(key) in ({}, None):
                    data.pop(key, None)
        return data
