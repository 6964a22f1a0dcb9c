"""Serving measurement CSVs: rows parse with their units; bad rows name the file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetplace.catalogs.serving_measurements import (
    COLUMNS,
    LoadMode,
    ServingMetric,
    load_serving_csv,
    load_serving_measurements,
)
from hetplace.common.errors import InputError

HEADER = ",".join(COLUMNS)
GOOD = "src-a,https://example.org/bench,2025-01,h100-sxm,llama-3.1-8b,vllm,0.6.0,bf16,bf16,1,1024,128,concurrency,8,tpot_s,0.0123,no,"


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def test_a_row_parses_with_its_setup(tmp_path: Path) -> None:
    (row,) = load_serving_csv(_write(tmp_path, GOOD))
    assert (row.device, row.model, row.tp, row.isl, row.osl) == ("h100-sxm", "llama-3.1-8b", 1, 1024, 128)
    assert (row.mode, row.load, row.metric, row.value) == (LoadMode.concurrency, 8.0, ServingMetric.tpot_s, 0.0123)
    assert row.derived is False


def test_bad_rows_name_line_and_column(tmp_path: Path) -> None:
    bad_value = GOOD.replace(",0.0123,", ",-1,")
    no_load = GOOD.replace(",concurrency,8,", ",concurrency,,")
    with pytest.raises(InputError) as err:
        load_serving_csv(_write(tmp_path, GOOD, bad_value, no_load))
    text = str(err.value)
    assert "rows.csv" in text and "line 3: value" in text and "line 4" in text and "needs a load" in text


def test_missing_column_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("source_id,url\nx,https://example.org\n")
    with pytest.raises(InputError, match="missing columns: published"):
        load_serving_csv(path)


def test_bundled_rows_cover_vendors_engines_and_sources() -> None:
    """What issue 13 asks of the bundled set: ≥ 100 rows, ≥ 6 device types including AMD, vLLM/SGLang-class and
    TensorRT-LLM-class engines, every row with a source address; catalog ids only."""
    from hetplace.catalogs.loader import load_catalog

    rows = load_serving_measurements()
    catalog = load_catalog()
    devices = {r.device for r in rows}
    assert len(rows) >= 100 and len(devices) >= 6 and {"mi300x", "h100-sxm"} <= devices
    assert {"vllm", "sglang", "trtllm"} <= {r.engine for r in rows}
    assert all(r.url.startswith("https://") for r in rows)
    assert devices <= set(catalog.devices) and {r.model for r in rows} <= set(catalog.models)
    assert len({r.source_id for r in rows}) >= 6
