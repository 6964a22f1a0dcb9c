"""`catalog import-hf` on real config.json shapes: the result must match the hand-written catalog entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hetplace.catalogs.hf_import import config_to_model, import_hf_config
from hetplace.catalogs.loader import Catalog
from hetplace.common.errors import InputError
from tests.conftest import FIXTURES

HF = FIXTURES / "hf"
ARCH_FIELDS = ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size", "attention")

# fixture file -> catalog id it must reproduce
CASES = {
    "llama-3.1-8b": "llama-3.1-8b",
    "mixtral-8x7b": "mixtral-8x7b",
    "deepseek-v3": "deepseek-v3",
    "qwen3-30b-a3b": "qwen3-30b-a3b",
    "gpt-oss-120b": "gpt-oss-120b",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_import_matches_catalog_entry(name: str, catalog: Catalog) -> None:
    imported = import_hf_config(HF / f"{name}.config.json", model_id=CASES[name], hf_repo="org/" + name)
    expected = catalog.model(CASES[name])
    for field in ARCH_FIELDS:
        assert getattr(imported, field) == getattr(expected, field), (name, field)
    assert (imported.moe is None) == (expected.moe is None)
    if expected.moe:
        for field in (
            "num_experts",
            "experts_per_token",
            "num_shared_experts",
            "expert_intermediate_size",
            "dense_layers",
        ):
            assert getattr(imported.moe, field) == getattr(expected.moe, field), (name, field)
    assert imported.mla == expected.mla
    if expected.moe is None or expected.moe.dense_layers:
        assert imported.intermediate_size == expected.intermediate_size


def test_deepseek_v3_mla_and_fp8() -> None:
    m = import_hf_config(HF / "deepseek-v3.config.json", hf_repo="deepseek-ai/DeepSeek-V3")
    assert m.attention.value == "mla" and m.mla is not None
    assert m.mla.kv_cache_elems_per_token == 576  # 512 latent + 64 rope
    assert m.weight_dtype.value == "fp8"
    assert m.moe is not None and (m.moe.num_experts, m.moe.experts_per_token, m.moe.dense_layers) == (256, 8, 3)


def test_gpt_oss_sliding_window_and_mxfp4_experts() -> None:
    m = import_hf_config(HF / "gpt-oss-120b.config.json", hf_repo="openai/gpt-oss-120b")
    assert m.sliding_window is not None
    assert (m.sliding_window.window_tokens, m.sliding_window.layers) == (128, 18)
    assert m.moe is not None and m.moe.expert_dtype is not None and m.moe.expert_dtype.value == "fp4"


def test_bert_style_config_becomes_embedding_model() -> None:
    m = import_hf_config(HF / "bge-large-en-v1.5.config.json", hf_repo="BAAI/bge-large-en-v1.5")
    assert (m.kind.value, m.attention.value, m.ffn.value) == ("embedding", "mha", "gelu")
    assert (m.num_layers, m.hidden_size, m.max_context_tokens) == (24, 1024, 512)


def test_multimodal_wrapper_uses_text_config() -> None:
    inner = json.loads((HF / "llama-3.1-8b.config.json").read_text())
    wrapped = {"model_type": "llava", "text_config": inner, "vision_config": {"hidden_size": 1024}}
    m = config_to_model(wrapped, "wrapped.json", hf_repo="org/llava-like")
    assert (m.num_layers, m.hidden_size) == (32, 4096)


def test_missing_key_names_it(tmp_path: Path) -> None:
    cfg = json.loads((HF / "llama-3.1-8b.config.json").read_text())
    del cfg["num_hidden_layers"]
    cfg["text_config"] = {k: v for k, v in cfg.items() if k != "text_config"}
    with pytest.raises(InputError) as exc:
        config_to_model(cfg, "c.json", hf_repo="a/b")
    assert exc.value.problems[0].field_path == "text_config.num_hidden_layers"


def test_repo_name_is_required_when_config_has_none() -> None:
    cfg = json.loads((HF / "llama-3.1-8b.config.json").read_text())
    cfg.pop("_name_or_path", None)
    with pytest.raises(InputError) as exc:
        config_to_model(cfg, "c.json")
    assert "--hf-repo" in exc.value.problems[0].message


def test_invalid_architecture_is_reported_with_field(tmp_path: Path) -> None:
    cfg = json.loads((HF / "llama-3.1-8b.config.json").read_text())
    cfg["num_key_value_heads"] = 5
    with pytest.raises(InputError) as exc:
        config_to_model(cfg, "c.json", hf_repo="a/b")
    assert "multiple of num_kv_heads 5" in exc.value.problems[0].message


def test_local_cache_path_is_not_taken_for_a_repo_name() -> None:
    with pytest.raises(InputError) as exc:
        import_hf_config(HF / "bge-large-en-v1.5.config.json")
    assert exc.value.problems[0].field_path == "_name_or_path"
    cfg = json.loads((HF / "llama-3.1-8b.config.json").read_text())
    cfg["_name_or_path"] = "meta-llama/Llama-3.1-8B-Instruct"
    m = config_to_model(cfg, "c.json")
    assert (m.id, m.hf_repo) == ("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct")
