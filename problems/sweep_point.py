"""One row of a what-if sweep: a document the sweep writes and the reports read, so it sits below both."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PointResult(BaseModel):
    """One row of a sweep: the variant's parameters and what its plan costs and looks like."""

    index: int
    params: dict[str, Any]
    status: str = Field(description="optimal | feasible | infeasible | no_solution | error")
    total_usd_per_year: float | None = None
    usd_per_request: float | None = None
    purchases_usd: float | None = None
    mean_critical_path_s: float | None = None
    gap: float | None = None
    wall_time_s: float = 0.0
    devices: dict[str, int] = Field(default_factory=dict, description="Devices in use per type.")
    bought: dict[str, int] = Field(default_factory=dict)
    rented: dict[str, int] = Field(default_factory=dict)
    owned_idle: dict[str, int] = Field(default_factory=dict)
    diagnosis: list[str] = Field(default_factory=list)
    error: str | None = None
