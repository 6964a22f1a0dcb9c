"""Tile/wave GEMM model and calibration: hand-computed padding, parameter recovery, real vidur data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hetplace.catalogs.loader import Catalog
from hetplace.common.errors import InputError
from hetplace.costmodels.calibration import Measurements, calibrate, evaluate, fit_device, load_measurements, predict
from hetplace.costmodels.gemm import padded_flops, padding_factor
from tests.conftest import FIXTURES, present

VIDUR = FIXTURES / "measurements" / "vidur_gemm_fp16_sample.csv"  # every 20th row of the public vidur data


def test_padding_hand_computed() -> None:
    # 4096 x 14336 output on 132 SMs: best tile 64x128 -> 7168 tiles -> 55 waves (last partial)
    assert padding_factor(np.array([4096.0]), np.array([14336.0]), np.array([132.0]))[0] == pytest.approx(
        55 * 132 * 64 * 128 / (4096 * 14336)
    )
    # Exactly one full wave of 128x128 tiles: no padding at all
    assert padded_flops(128.0 * 12, 128.0 * 11, 64.0, 132.0) == 2 * 128 * 12 * 128 * 11 * 64
    # Fewer tiles than units (split-K): only m is padded, 1 -> 64 rows
    assert padding_factor(np.array([1.0]), np.array([4096.0]), np.array([132.0]))[0] == pytest.approx(64.0)
    # Unknown compute units: plain 2mnk
    assert padded_flops(100.0, 100.0, 10.0, np.nan) == 2 * 100 * 100 * 10


def _synthetic(catalog: Catalog, device_id: str, ec: float, em: float, oh: float) -> Measurements:
    rng = np.random.default_rng(1)
    m = rng.choice([1, 8, 64, 256, 1024, 4096], 400).astype(float)
    n = rng.choice([4096, 8192, 14336], 400).astype(float)
    k = rng.choice([4096, 8192], 400).astype(float)
    base = Measurements("synthetic", np.full(400, device_id), np.full(400, "fp16"), m, k, n, np.ones(400))
    t = predict(catalog.device(device_id), base, ec, em, oh)
    return Measurements("synthetic", base.device, base.dtype, m, k, n, t)


def test_fit_recovers_known_factors(catalog: Catalog) -> None:
    meas = _synthetic(catalog, "a100-80gb-sxm", 0.62, 0.83, 12e-6)
    ec, em, oh = fit_device(catalog.device("a100-80gb-sxm"), meas)
    assert ec == pytest.approx(0.62, abs=0.006) and em == pytest.approx(0.83, abs=0.006)
    assert oh == pytest.approx(12e-6, abs=1e-6)


def test_vidur_calibration_beats_datasheet_roofline(catalog: Catalog) -> None:
    cal = calibrate(load_measurements(VIDUR), catalog, held_back_fraction=0.25, seed=0)
    assert set(cal.devices) == {"a100-80gb-sxm", "h100-sxm", "a40"}
    for dev in cal.devices.values():
        assert present(dev.datasheet_held_back).median_abs_error > 0.25  # the README's ~30 % datasheet error
        assert present(dev.held_back).median_abs_error < 0.09
        assert present(dev.held_back).p90_abs_error < 0.25
    scored = evaluate(load_measurements(VIDUR), cal, catalog)
    assert scored["median_abs_error"] < 0.08 and set(scored["per_device"]) == set(cal.devices)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("device,m,k\nh100-sxm,1,2\n", "expected columns"),
        ("device,m,k,n,dtype,time_s\nh100-sxm,1,x,3,fp16,0.1\n", "line 2"),
        ("device,m,k,n,dtype,time_s\nh100-sxm,1,2,3,fp16,-1\n", "must be positive"),
        ("device,m,k,n,dtype,time_s\n", "no measurement rows"),
    ],
)
def test_bad_measurement_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(InputError) as exc:
        load_measurements(path)
    assert fragment in str(exc.value) and str(path) in str(exc.value)


def test_unknown_device_in_measurements(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "m.csv"
    path.write_text("device,m,k,n,dtype,time_s\nh900,1,2,3,fp16,0.1\n")
    with pytest.raises(InputError, match="not in the catalog: h900"):
        calibrate(load_measurements(path), catalog)
