"""Calibration files: fitted efficiency factors per device that overlay the catalog's priors.

Written by `hetplace calibrate`, read by `analyze --calibration` and by scenarios (`calibration:` key).
"""

from __future__ import annotations

from pydantic import Field

from hetplace.catalogs.schema import EfficiencyFactors
from hetplace.common.schema_base import Fraction, Identifier, NonNegativeFloat, NonNegativeInt, StrictModel


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


class CalibrationFile(StrictModel):
    schema_version: str = "1"
    measurements: str = Field(description="File(s) the factors were fitted to.")
    method: str
    held_back_fraction: float = Field(ge=0, lt=1)
    seed: int
    devices: dict[Identifier, DeviceCalibration]
