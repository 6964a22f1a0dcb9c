"""`hetplace analyze` with --isl/--osl (the serving estimate), --kv-dtype and --engine, through CliRunner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hetplace.catalogs.loader import bundled_dir
from hetplace.cli import app

runner = CliRunner()
BASE = ["analyze", "--model", "llama-3.1-70b", "--device", "h100-sxm", "--tp", "4"]
SERVING_KEYS = {"ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s", "output_tokens_per_s_per_device", "batch"}


def analyze(*args: str) -> dict:
    result = runner.invoke(app, [*BASE, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def gemm_calibration(tmp_path: Path, serving: dict) -> Path:
    """The bundled GEMM calibration plus a `serving` section."""
    data = yaml.safe_load((bundled_dir("calibrations") / "vidur-gemm-fp16.yaml").read_text())
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump({**data, "serving": serving}))
    return path


@pytest.mark.parametrize(
    ("mode", "batch"), [(["--batch", "32"], 32), (["--concurrency", "32"], 32), (["--max-load"], None)]
)
def test_serving_object_in_each_mode(mode: list[str], batch: int | None) -> None:
    data = analyze("--isl", "1000", "--osl", "1000", *mode)
    serving = data["serving"]
    assert serving.keys() >= SERVING_KEYS | {"mode", "terms", "fits"}
    assert serving["e2e_latency_s"] == pytest.approx(serving["ttft_s"] + 999 * serving["tpot_s"], rel=1e-12)
    assert serving["output_tokens_per_s"] == pytest.approx(serving["batch"] * 1000 / serving["e2e_latency_s"])
    assert serving["output_tokens_per_s_per_device"] == pytest.approx(serving["output_tokens_per_s"] / 4)
    assert serving["batch"] == (batch or serving["max_batch"])
    # the operator table is the serving batch's decode step at the mean context 1000 + 1000/2
    assert data["totals"]["batch"] == serving["batch"] and data["totals"]["context_tokens"] == 1500
    assert set(serving["terms"]) == {
        "step_overhead",
        "layer_overhead",
        "ttft_overhead",
        "compute",
        "decode_attention",
        "moe_gemm",
        "low_precision",
        "collectives",
    }


def test_kv_dtype_fp8_halves_the_kv_bytes_and_doubles_max_load() -> None:
    bf16 = analyze("--isl", "1000", "--osl", "1000", "--max-load")
    fp8 = analyze("--isl", "1000", "--osl", "1000", "--max-load", "--kv-dtype", "fp8")
    kv = bf16["totals"]["kv_bytes_per_token_per_device"]
    assert fp8["totals"]["kv_bytes_per_token_per_device"] == kv / 2 and fp8["totals"]["kv_dtype"] == "fp8"
    # 80 layers · 2 · 8 KV heads · 128 · 2 bytes / 4 devices
    assert kv == 80 * 2 * 8 * 128 * 2 / 4
    assert fp8["serving"]["batch"] in (2 * bf16["serving"]["batch"], 2 * bf16["serving"]["batch"] + 1)


def test_engine_terms_come_from_the_calibration_file(tmp_path: Path) -> None:
    """A fitted step overhead of 4 ms for (h100-sxm, vllm) adds exactly 4 ms to the pass and to TPOT in batch mode;
    with --engine none, or for another engine, the same file leaves the numbers at the GEMM-calibrated roofline."""
    cal = gemm_calibration(tmp_path, {"h100-sxm": {"vllm": {"step_overhead_s": 0.004}}})
    args = ["--isl", "500", "--osl", "100", "--batch", "8", "--calibration", str(cal)]
    plain = analyze(*args, "--engine", "none")
    vllm = analyze(*args, "--engine", "vllm")
    sglang = analyze(*args, "--engine", "sglang")
    assert vllm["totals"]["latency_s"] == pytest.approx(plain["totals"]["latency_s"] + 0.004, rel=1e-12)
    assert vllm["totals"]["terms"]["step_overhead"] == pytest.approx(0.004)
    assert vllm["serving"]["tpot_s"] == pytest.approx(plain["serving"]["tpot_s"] + 0.004, rel=1e-12)
    assert vllm["serving"]["terms"]["step_overhead"]["e2e_latency_s"] == pytest.approx(100 * 0.004)
    assert sglang["serving"] == plain["serving"]
    assert all(v == 0.0 for v in plain["totals"]["terms"].values())


def test_terminal_view_says_what_set_the_batch() -> None:
    """The screen names the limit the JSON reports in `batch_bound_by`, with the KV capacity beside it."""
    small = ["analyze", "--model", "llama-3.1-8b", "--device", "h100-sxm", "--dtype", "fp8"]
    small += ["--isl", "128", "--osl", "128"]
    capped = runner.invoke(app, [*small, "--max-load"])
    data = json.loads(runner.invoke(app, [*small, "--max-load", "--json"]).stdout)["serving"]
    assert capped.exit_code == 0 and data["batch_bound_by"] == "engine_max_running_seqs" and data["batch"] == 1024
    flat = " ".join(capped.stdout.split())
    assert f"batch set by the engine's cap on running sequences (the KV cache fits {data['max_batch']:,.0f})" in flat
    kv = runner.invoke(app, [*BASE, "--isl", "1024", "--osl", "512", "--max-load"])
    assert "batch set by the KV cache at ISL + OSL" in " ".join(kv.stdout.split())
    asked = runner.invoke(app, [*BASE, "--isl", "1024", "--osl", "512", "--concurrency", "8"])
    assert asked.exit_code == 0 and "batch set by" not in asked.stdout


def test_single_pass_view_is_unchanged_without_isl_osl() -> None:
    data = analyze("--batch", "32", "--context", "4096")
    assert set(data) == {"operators", "totals", "priced_with"} and data["totals"]["batch"] == 32
    default = analyze()
    assert default["totals"]["batch"] == 1 and default["totals"]["phase"] == "decode"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--isl", "100", "--osl", "10"], "give exactly one of --batch, --concurrency, --max-load"),
        (["--isl", "100", "--osl", "10", "--batch", "2", "--max-load"], "(got --batch, --max-load)"),
        (["--isl", "100", "--batch", "2"], "give both --isl and --osl"),
        (["--concurrency", "8"], "--concurrency needs --isl and --osl"),
        (["--max-load"], "--max-load needs --isl and --osl"),
        (["--engine", "tgi"], "unknown engine 'tgi'"),
        (["--kv-dtype", "int4"], "unknown KV-cache dtype 'int4'"),
    ],
)
def test_bad_serving_options_exit_2(args: list[str], fragment: str) -> None:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.stderr.split()) and "Traceback" not in result.output


def test_calibration_with_unknown_engine_or_device_exits_2(tmp_path: Path) -> None:
    for serving, fragment in (
        ({"h100-sxm": {"tgi": {}}}, "unknown engine 'tgi'"),
        ({"h100-pcie-9": {"vllm": {}}}, "unknown device 'h100-pcie-9'"),
        ({"h100-sxm": {"vllm": {"decode_attention_eta": 0}}}, "decode_attention_eta"),
    ):
        cal = gemm_calibration(tmp_path, serving)
        result = runner.invoke(app, [*BASE, "--calibration", str(cal)])
        assert result.exit_code == 2, result.output
        assert fragment in " ".join(result.stderr.split())


def test_table_output_shows_the_serving_line_and_terms(tmp_path: Path) -> None:
    cal = gemm_calibration(tmp_path, {"h100-sxm": {"vllm": {"step_overhead_s": 0.002}}})
    result = runner.invoke(
        app, [*BASE, "--isl", "100", "--osl", "10", "--concurrency", "4", "--engine", "vllm", "--calibration", str(cal)]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "serving (concurrency, batch 4): TTFT" in out and "step_overhead +2.000" in out


def test_calibration_files_without_serving_terms_are_written_as_before(tmp_path: Path) -> None:
    from hetplace.catalogs.loader import load_calibration

    gemm_only = load_calibration(bundled_dir("calibrations") / "vidur-gemm-fp16.yaml")
    assert "serving" not in gemm_only.model_dump(mode="json")
    cal = load_calibration(gemm_calibration(tmp_path, {"mi300x": {"sglang": {"moe_gemm_eta": 0.6}}}))
    dumped = cal.model_dump(mode="json")
    assert dumped["serving"]["mi300x"]["sglang"]["moe_gemm_eta"] == 0.6
    assert dumped["serving"]["mi300x"]["sglang"]["step_overhead_s"] == 0.0


def test_defaults_are_the_bundled_calibration_and_vllm() -> None:
    """No --calibration/--engine prices exactly like `--calibration serving-public --engine vllm`; `none` for both is
    the catalog's datasheet roofline with every engine term zero."""
    args = ["--isl", "1024", "--osl", "256", "--concurrency", "16"]
    default = analyze(*args)
    explicit = analyze(*args, "--calibration", "serving-public", "--engine", "vllm")
    assert default == explicit
    plain = analyze(*args, "--calibration", "none", "--engine", "none")
    assert plain["priced_with"] == {"calibration": "none", "engine": "none"}
    assert all(v == 0.0 for v in plain["totals"]["terms"].values())
    fitted = yaml.safe_load((bundled_dir("calibrations") / "serving-public.yaml").read_text())
    per_layer_s = fitted["serving"]["h100-sxm"]["vllm"]["layer_overhead_s"]  # the fit's per-layer form
    assert per_layer_s > 0 and default["totals"]["terms"]["layer_overhead"] == pytest.approx(80 * per_layer_s, rel=1e-9)


def test_engine_aliases_name_the_catalog_engine() -> None:
    """Benchmark spellings (trtllm, trt-llm) are TensorRT-LLM's aliases in catalogs/engines."""
    args = ["--isl", "512", "--osl", "128", "--batch", "4"]
    canonical = analyze(*args, "--engine", "tensorrt-llm")
    for alias in ("trtllm", "trt-llm"):
        assert analyze(*args, "--engine", alias) == canonical
    assert canonical["priced_with"]["engine"] == "tensorrt-llm"


def test_a_scenario_may_name_its_engine_by_an_alias(tmp_path: Path) -> None:
    """`engine: trtllm` in a scenario resolves to the catalog's tensorrt-llm (what plans and the checker record)."""
    from hetplace.problems.loader import load_scenario
    from tests.conftest import FIXTURES, read_yaml, write_yaml

    shutil.copy(FIXTURES / "scenarios" / "small-agent-workflow.yaml", tmp_path / "small-agent-workflow.yaml")
    data = read_yaml(FIXTURES / "scenarios" / "small-agent.yaml") | {"engine": "trtllm"}
    assert load_scenario(write_yaml(tmp_path / "s.yaml", data)).scenario.engine == "tensorrt-llm"
    data["engine"] = "tgi"
    result = runner.invoke(app, ["validate", str(write_yaml(tmp_path / "bad.yaml", data))])
    assert result.exit_code == 2 and "unknown engine 'tgi'" in " ".join(result.stderr.split())
