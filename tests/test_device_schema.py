"""Every Device schema rule, each broken once by a hand-written input."""

from __future__ import annotations

from typing import Any

import pytest

from hetplace.catalogs.schema import Device, Dtype
from hetplace.common.io import parse_model
from tests.conftest import schema_problems


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return schema_problems(Device, data, "dev.yaml")


def test_valid_device_parses(h100: dict[str, Any]) -> None:
    dev = parse_model(Device, h100, "dev.yaml")
    assert dev.peak_tflops[Dtype.bf16] == pytest.approx(989.5)
    assert dev.supports("fp8") and not dev.supports("fp4")


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda d: d.update(mem_gb=0), "mem_gb", "greater than 0"),
        (lambda d: d.update(mem_bw_gbs=-5), "mem_bw_gbs", "greater than 0"),
        (lambda d: d.update(tdp_w="lots"), "tdp_w", "valid number"),
        (lambda d: d.update(kind="fpga"), "kind", "'gpu', 'accelerator' or 'cpu'"),
        (lambda d: d.update(tier="vintage"), "tier", "older_gpu"),
        (lambda d: d["peak_tflops"].update(fp6=10), "peak_tflops.fp6", "invalid key: Input should be"),
        (lambda d: d["peak_tflops"].update(bf16=0), "peak_tflops.bf16", "greater than 0"),
        (lambda d: d.update(peak_tflops={}), "", "at least one dtype"),
        (lambda d: d.update(id="H100 SXM"), "id", "String should match pattern"),
        (lambda d: d.update(mem_gbs=80), "mem_gbs", "Extra inputs are not permitted"),
        (lambda d: d.update(sources=[]), "sources", "at least 1 item"),
        (lambda d: d["sources"][0].update(url="not a url"), "sources[0].url", "URL"),
        (lambda d: d.pop("capex_basis"), "", "capex_basis is required"),
        (lambda d: d.update(estimated_fields=[]), "", "list capex_usd in estimated_fields"),
        (lambda d: d.update(estimated_fields=["capex_usd", "colour"]), "", "unknown fields ['colour']"),
        (lambda d: d.update(kind="cpu", tier="cpu"), "", "cores is required"),
        (lambda d: d.update(tier="cpu"), "", "kind 'cpu' and tier 'cpu' go together"),
        (lambda d: d.update(year=1999), "year", "greater than or equal to 2010"),
        (
            lambda d: (
                d["efficiency"].update(compute=1.5) if "efficiency" in d else d.update(efficiency={"compute": 1.5})
            ),
            "efficiency.compute",
            "less than or equal to 1",
        ),
        (lambda d: d.pop("scaleup_domain"), "scaleup_domain", "Field required"),
    ],
)
def test_device_rule_violations(h100: dict[str, Any], mutate, field: str, fragment: str) -> None:
    mutate(h100)
    found = problems_of(h100)
    assert any(path == field and fragment in msg for path, msg in found), found
