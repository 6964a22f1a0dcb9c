"""The serving-engine versions the exports target, and the command-line flags recorded from them: the one place to
change when moving to another engine release.

Only flags listed here are ever written, and the tests check every generated argument list against these records
(vLLM and SGLang need CUDA/ROCm builds and cannot be imported on a CPU-only machine, so their real parsers cannot
run there). A record is (flag, allowed values or None for free values, takes a value); only the flags hetplace
writes are recorded, and a `choices` tuple may be a subset of the release's (never values it does not accept).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    name: str
    choices: tuple[str, ...] | None = None  # None: any value
    takes_value: bool = True


@dataclass(frozen=True)
class EngineRelease:
    engine: str
    version: str
    command: tuple[str, ...]  # the launch command before the flags (a positional model, if any, follows it)
    positional_model: bool  # the model is the first positional argument (vllm serve MODEL) or a flag
    port: int  # the OpenAI-compatible server's default port
    flags: dict[str, Flag]
    sources: tuple[str, ...]

    def flag(self, name: str) -> Flag:
        return self.flags[name]


def _flags(*flags: Flag) -> dict[str, Flag]:
    return {f.name: f for f in flags}


VLLM = EngineRelease(
    engine="vllm",
    version="v0.8.5",
    command=("vllm", "serve"),
    positional_model=True,
    port=8000,
    flags=_flags(
        Flag("--host"),
        Flag("--port"),
        Flag("--served-model-name"),
        Flag("--task", ("auto", "generate", "embedding", "embed", "classify", "score", "reward", "transcription")),
        Flag("--device", ("auto", "cuda", "neuron", "cpu", "tpu", "xpu", "hpu")),
        Flag("--tensor-parallel-size"),
        Flag("--dtype", ("auto", "half", "float16", "bfloat16", "float", "float32")),
        Flag("--quantization"),
        Flag("--kv-cache-dtype", ("auto", "fp8", "fp8_e5m2", "fp8_e4m3")),
        Flag("--max-num-seqs"),
        Flag("--max-model-len"),
        Flag("--gpu-memory-utilization"),
        Flag("--kv-transfer-config"),
    ),
    sources=(
        "vLLM v0.8.5 `vllm serve` usage: https://docs.vllm.ai/en/v0.8.5/serving/engine_args.html "
        "(vllm/engine/arg_utils.py EngineArgs.add_cli_args and vllm/entrypoints/openai/cli_args.py at tag v0.8.5)",
        "KV transfer for disaggregated prefill: examples/online_serving/disaggregated_prefill.sh at tag v0.8.5 "
        '(--kv-transfer-config \'{"kv_connector":"PyNcclConnector","kv_role":"kv_producer"|"kv_consumer",...}\')',
    ),
)

SGLANG = EngineRelease(
    engine="sglang",
    version="v0.5.3",
    command=("python3", "-m", "sglang.launch_server"),
    positional_model=False,
    port=30000,
    flags=_flags(
        Flag("--model-path"),
        Flag("--host"),
        Flag("--port"),
        Flag("--served-model-name"),
        Flag("--device", ("cuda", "xpu", "hpu", "npu", "cpu")),
        Flag("--tp-size"),
        Flag("--dtype", ("auto", "half", "float16", "bfloat16", "float", "float32")),
        Flag("--quantization"),
        Flag("--kv-cache-dtype", ("auto", "fp8_e5m2", "fp8_e4m3")),
        Flag("--max-running-requests"),
        Flag("--context-length"),
        Flag("--mem-fraction-static"),
        Flag("--is-embedding", None, takes_value=False),
        Flag("--disaggregation-mode", ("null", "prefill", "decode")),
        Flag("--disaggregation-transfer-backend", ("mooncake", "nixl", "ascend", "fake")),
    ),
    sources=(
        "SGLang v0.5.3 python/sglang/srt/server_args.py (ServerArgs.add_cli_args) at tag v0.5.3; "
        "https://docs.sglang.ai/advanced_features/server_arguments.html",
        "PD disaggregation: https://docs.sglang.ai/advanced_features/pd_disaggregation.html "
        "(--disaggregation-mode prefill|decode, --disaggregation-transfer-backend mooncake)",
    ),
)

ENGINES: dict[str, EngineRelease] = {"vllm": VLLM, "sglang": SGLANG}

# vLLM's KV connector for prefill → decode in the named release (one constant, see VLLM.sources).
VLLM_KV_CONNECTOR = "PyNcclConnector"
SGLANG_TRANSFER_BACKEND = "mooncake"

# Dynamo: the DynamoGraphDeployment shape of ai-dynamo/dynamo components/backends/vllm/deploy/disagg.yaml as
# shipped with the vllm-runtime 0.3.2 image (commit 0bb3389103cb3c8297a9398f5eed2700c075200f): services Frontend
# (componentType main) and workers (componentType worker) whose mainContainer args run `python3 -m dynamo.vllm`,
# the prefill workers with `--is-prefill-worker`.
DYNAMO_VERSION = "0.3.2"
DYNAMO_IMAGE = "nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.3.2"
DYNAMO_SOURCE = (
    "ai-dynamo/dynamo components/backends/vllm/deploy/disagg.yaml (vllm-runtime 0.3.2; commit 0bb3389103cb3c8297a93"
    "98f5eed2700c075200f)"
)
DYNAMO_FLAGS = _flags(
    Flag("--model"),
    Flag("--tensor-parallel-size"),
    Flag("--dtype", VLLM.flags["--dtype"].choices),
    Flag("--quantization"),
    Flag("--kv-cache-dtype", VLLM.flags["--kv-cache-dtype"].choices),
    Flag("--max-num-seqs"),
    Flag("--max-model-len"),
    Flag("--is-prefill-worker", None, takes_value=False),
)


def unknown_args(args: list[str], flags: dict[str, Flag]) -> list[str]:
    """Problems with an argument list against recorded flags: unknown flags, values outside the choices, a flag
    missing its value. Positional arguments (the model of `vllm serve MODEL`) are skipped at the front only."""
    problems = []
    i = 0
    while i < len(args) and not args[i].startswith("--"):
        i += 1
    while i < len(args):
        name = args[i]
        flag = flags.get(name)
        if flag is None:
            problems.append(f"unknown flag {name}")
            i += 2 if i + 1 < len(args) and not args[i + 1].startswith("--") else 1
            continue
        if not flag.takes_value:
            i += 1
            continue
        if i + 1 >= len(args) or args[i + 1].startswith("--"):
            problems.append(f"{name} needs a value")
            i += 1
            continue
        value = args[i + 1]
        if flag.choices is not None and value not in flag.choices:
            problems.append(f"{name} {value}: not one of {', '.join(flag.choices)}")
        i += 2
    return problems
