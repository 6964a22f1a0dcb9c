"""Turn a Hugging Face `config.json` into a ModelArch catalog entry, offline.

Handles the config shapes of the families in the catalog (Llama/Mistral/Mixtral, Qwen2/3 dense and MoE,
DeepSeek-V2/V3 with MLA, gpt-oss, BERT-style encoders) and multimodal configs that nest a `text_config`.
A field the config does not determine is an error naming the key, never a guess.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hetplace.catalogs.schema import ModelArch, ModelKind
from hetplace.common.errors import InputError
from hetplace.common.io import parse_model, read_text

ENCODER_MODEL_TYPES = {"bert", "roberta", "xlm-roberta", "nomic_bert", "new", "modernbert"}
DTYPE_FROM_TORCH = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return slug or "imported-model"


class _Reader:
    """Reads keys from the config, recording the path of a missing one for the error message."""

    def __init__(self, cfg: dict[str, Any], source: str, prefix: str) -> None:
        self.cfg, self.source, self.prefix = cfg, source, prefix

    def get(self, *keys: str, default: Any = None, required: bool = False) -> Any:
        for key in keys:
            if self.cfg.get(key) is not None:
                return self.cfg[key]
        if required:
            raise InputError.single(self.source, self.prefix + keys[0], "required key missing from config.json")
        return default


def _moe_block(r: _Reader, model_type: str) -> dict[str, Any] | None:
    experts = r.get("n_routed_experts", "num_local_experts", "num_experts")
    if not experts or experts <= 1:
        return None
    moe: dict[str, Any] = {
        "num_experts": experts,
        "experts_per_token": r.get("num_experts_per_tok", "experts_per_token", "moe_topk", required=True),
        "num_shared_experts": r.get("n_shared_experts", default=0),
        "expert_intermediate_size": r.get("moe_intermediate_size", "intermediate_size", required=True),
    }
    if model_type.startswith("deepseek"):
        moe["dense_layers"] = r.get("first_k_dense_replace", default=0)
    elif r.get("mlp_only_layers"):
        # Qwen-MoE: listed layers use a dense MLP. Only a leading block can be represented exactly.
        dense = sorted(r.get("mlp_only_layers"))
        if dense != list(range(len(dense))):
            raise InputError.single(r.source, r.prefix + "mlp_only_layers", "only leading dense layers are supported")
        moe["dense_layers"] = len(dense)
    if r.get("decoder_sparse_step", default=1) != 1:
        raise InputError.single(r.source, r.prefix + "decoder_sparse_step", "interleaved dense/MoE layers unsupported")
    quant = r.get("quantization_config", default={}) or {}
    if quant.get("quant_method") == "mxfp4":
        moe["expert_dtype"] = "fp4"
    return moe


def _weight_dtype(r: _Reader) -> str:
    quant = r.get("quantization_config", default={}) or {}
    method = str(quant.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8"
    torch_dtype = r.get("torch_dtype", "dtype", default="bfloat16")
    if torch_dtype not in DTYPE_FROM_TORCH:
        raise InputError.single(r.source, r.prefix + "torch_dtype", f"unsupported dtype '{torch_dtype}'")
    return DTYPE_FROM_TORCH[torch_dtype]


def _sliding_window(r: _Reader, num_layers: int) -> dict[str, Any] | None:
    window = r.get("sliding_window")
    layer_types = r.get("layer_types")
    if not window:
        return None
    if layer_types:
        sliding = sum(1 for t in layer_types if t == "sliding_attention")
        return {"window_tokens": window, "layers": sliding} if sliding else None
    if r.get("use_sliding_window", default=True) is False:
        return None
    return {"window_tokens": window, "layers": num_layers}


def config_to_model(
    cfg: dict[str, Any], source: str, model_id: str | None = None, hf_repo: str | None = None
) -> ModelArch:
    """Build a validated ModelArch from a parsed config.json mapping."""
    prefix = ""
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrapper: the LLM lives in text_config
        cfg, prefix = cfg["text_config"], "text_config."
    r = _Reader(cfg, source, prefix)
    model_type = str(r.get("model_type", default="")).lower()
    if hf_repo is None:
        named = str(r.get("_name_or_path", default=""))
        # Only a hub id (ORG/NAME) counts; configs saved from a local cache carry a file path here.
        hf_repo = named if re.fullmatch(r"[\w.-]+/[\w.-]+", named) else None
    if not hf_repo:
        raise InputError.single(source, "_name_or_path", "config names no hub repository; pass --hf-repo ORG/NAME")
    num_layers = r.get("num_hidden_layers", "n_layer", "num_layers", required=True)
    hidden = r.get("hidden_size", "d_model", "n_embd", required=True)
    heads = r.get("num_attention_heads", "n_head", required=True)
    kv_heads = r.get("num_key_value_heads", default=heads)
    is_encoder = model_type in ENCODER_MODEL_TYPES
    weight_dtype = _weight_dtype(r)
    entry: dict[str, Any] = {
        "id": model_id or _slug(hf_repo.split("/")[-1]),
        "name": hf_repo.split("/")[-1],
        "kind": (ModelKind.embedding if is_encoder else ModelKind.decoder).value,
        "hf_repo": hf_repo,
        "num_layers": num_layers,
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": r.get("head_dim", default=hidden // heads),
        "intermediate_size": r.get("intermediate_size", "ffn_dim", "n_inner", required=True),
        "ffn": "gelu" if is_encoder or str(r.get("hidden_act", default="silu")).startswith("gelu") else "swiglu",
        "vocab_size": r.get("vocab_size", required=True),
        "max_context_tokens": r.get("max_position_embeddings", "n_positions", required=True),
        "tied_embeddings": bool(r.get("tie_word_embeddings", default=is_encoder)),
        "weight_dtype": weight_dtype,
        # Serving stacks keep the KV cache in 16-bit unless told otherwise, even for fp8 checkpoints.
        "kv_dtype": "fp16" if weight_dtype == "fp16" else "bf16",
        "sources": [
            {
                "title": f"{hf_repo} config.json (Hugging Face)",
                "url": f"https://huggingface.co/{hf_repo}/blob/main/config.json",
                "note": "imported offline with `hetplace catalog import-hf`",
            }
        ],
    }
    if r.get("kv_lora_rank"):
        entry["attention"] = "mla"
        entry["mla"] = {
            "kv_lora_rank": r.get("kv_lora_rank"),
            "q_lora_rank": r.get("q_lora_rank"),
            "qk_nope_head_dim": r.get("qk_nope_head_dim", required=True),
            "qk_rope_head_dim": r.get("qk_rope_head_dim", required=True),
            "v_head_dim": r.get("v_head_dim", required=True),
        }
        entry["head_dim"] = entry["mla"]["qk_nope_head_dim"] + entry["mla"]["qk_rope_head_dim"]
    else:
        entry["attention"] = "mha" if kv_heads == heads else "gqa"
    moe = _moe_block(r, model_type)
    if moe:
        entry["moe"] = moe
    window = _sliding_window(r, num_layers)
    if window:
        entry["sliding_window"] = window
    return parse_model(ModelArch, entry, source)


def import_hf_config(path: Path, model_id: str | None = None, hf_repo: str | None = None) -> ModelArch:
    """Read `path` (a config.json) and convert it; every failure is an InputError naming the file."""
    text = read_text(Path(path))
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.single(str(path), "", f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(cfg, dict):
        raise InputError.single(str(path), "", "config.json must hold a JSON object")
    return config_to_model(cfg, str(path), model_id=model_id, hf_repo=hf_repo)
