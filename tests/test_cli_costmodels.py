"""`hetplace analyze` and `hetplace calibrate` through CliRunner: JSON shapes, plots, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.cli import app
from tests.conftest import FIXTURES

runner = CliRunner()
SAMPLE = FIXTURES / "measurements" / "vidur_gemm_fp16_sample.csv"
OPERATOR_KEYS = {"name", "flops", "bytes", "oi", "cf_bytes", "latency_s", "bound"}


def run(*args: str):
    return runner.invoke(app, list(args))


def test_analyze_issue_command_json() -> None:
    result = run(
        "analyze",
        "--model",
        "llama-3.1-70b",
        "--device",
        "h100-sxm",
        "--tp",
        "4",
        "--phase",
        "decode",
        "--batch",
        "32",
        "--context",
        "4096",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"operators", "totals", "priced_with"}
    assert data["priced_with"] == {"calibration": "serving-public", "engine": "vllm"}  # the documented defaults
    assert all(op.keys() >= OPERATOR_KEYS for op in data["operators"])
    totals = data["totals"]
    for key in ("latency_s", "tokens_per_s", "fits", "max_batch", "cf_bytes"):
        assert key in totals
    assert totals["fits"] is True and totals["tokens_per_s"] == pytest.approx(32 / totals["latency_s"])
    # 70B bf16 over 4 devices: 141.1e9 bytes of weights / 4
    assert totals["weight_bytes_per_device"] == pytest.approx(141.1e9 / 4, rel=0.01)
    assert {op["bound"] for op in data["operators"] if op["name"] == "allreduce"} == {"comm"}


def test_analyze_plot_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "roofline.png"
    result = run(
        "analyze",
        "--model",
        "llama-3.1-8b",
        "--device",
        "l4",
        "--phase",
        "prefill",
        "--prompt-tokens",
        "2048",
        "--engine",
        "none",  # no per-pass engine overhead: the total is then exactly the sum of the operators
        "--plot",
        str(out),
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 7 and cells[0] and cells[1][:1].isdigit():  # operator, GFLOP, MB, OI, CF GB, ms, bound
            rows[cells[0]] = [float(c.replace(",", "")) for c in cells[1:6]]
    assert {"qkv_proj", "attention", "o_proj", "ffn", "lm_head"} <= rows.keys()
    # SwiGLU FFN over 2,048 prompt tokens: 2 · 2048 · 3·4096·14336 · 32 layers = 23,089.74 GFLOP
    assert rows["ffn"][0] == pytest.approx(2 * 2048 * 3 * 4096 * 14336 * 32 / 1e9, abs=0.005)
    total = re.search(r"latency ([\d.]+) ms · ([\d,]+) tokens/s", " ".join(result.stdout.split()))
    assert total is not None, result.stdout
    latency_ms = float(total[1])
    assert latency_ms == pytest.approx(sum(r[4] for r in rows.values()), abs=0.001 * len(rows))  # sum of operators
    assert float(total[2].replace(",", "")) == pytest.approx(2048 / (latency_ms / 1e3), abs=1)  # prompt tokens / s


def test_analyze_workflow_lists_every_step_on_every_device() -> None:
    result = run("analyze", "--workflow", "web-agent", "--json")
    assert result.exit_code == 0, result.output

    def reject_nan(token: str) -> float:
        raise ValueError(f"non-standard JSON constant {token}")

    data = json.loads(result.stdout, parse_constant=reject_nan)
    assert [s["step"] for s in data["steps"]] == [
        "rewrite",
        "embed_question",
        "kb_search",
        "web_search",
        "browse",
        "embed_pages",
        "read",
        "answer",
    ]
    tools = {s["step"]: s for s in data["steps"]}
    assert tools["web_search"]["cheapest_tier"] == "cpu"  # tools only run on CPUs
    assert all(len(s["devices"]) >= 16 for s in data["steps"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "llama-9b", "--device", "h100-sxm"], "no model 'llama-9b'"),
        (["--model", "llama-3.1-8b", "--device", "a100-80gb-sxm", "--dtype", "fp8"], "no native fp8"),
        (["--model", "llama-3.1-8b", "--device", "h100-sxm", "--dtype", "fp6"], "unknown dtype 'fp6'"),
        (["--model", "llama-3.1-8b", "--device", "h100-sxm", "--tp", "3"], "tp=3 must divide 32 heads"),
        (["--model", "llama-3.1-8b"], "give --model and --device"),
        (["--workflow", "no-such-flow"], "file not found"),
    ],
)
def test_analyze_bad_input_exits_2(args: list[str], fragment: str) -> None:
    result = run("analyze", *args)
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_calibrate_then_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "cal.yaml"
    result = run("calibrate", str(SAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    cal = yaml.safe_load(out.read_text())
    assert set(cal["devices"]) == {"a100-80gb-sxm", "a40", "h100-sxm"}
    scored = run("calibrate", str(SAMPLE), "--evaluate", str(out), "--json")
    assert scored.exit_code == 0, scored.output
    data = json.loads(scored.stdout)
    assert 0 < data["median_abs_error"] < 0.09 and data["p90_abs_error"] < 0.3
    assert set(data["per_device"]) == set(cal["devices"])
    used = run("analyze", "--model", "llama-3.1-8b", "--device", "h100-sxm", "--calibration", str(out), "--json")
    assert used.exit_code == 0
    prior = run("analyze", "--model", "llama-3.1-8b", "--device", "h100-sxm", "--json")
    assert json.loads(used.stdout)["totals"]["latency_s"] != json.loads(prior.stdout)["totals"]["latency_s"]


def test_calibrate_bad_csv_exits_2_without_output(tmp_path: Path) -> None:
    bad = tmp_path / "m.csv"
    bad.write_text("device,m,k,n,dtype,time_s\nh100-sxm,1,2,three,fp16,0.1\n")
    out = tmp_path / "cal.yaml"
    result = run("calibrate", str(bad), "--out", str(out))
    assert result.exit_code == 2 and "line 2" in result.stderr
    assert not out.exists()
