"""Every ModelArch schema rule, each broken once by a hand-written input."""

from __future__ import annotations

from typing import Any

import pytest

from hetplace.catalogs.schema import ModelArch
from hetplace.common.io import parse_model
from tests.conftest import schema_problems

MLA = {"kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128}


def problems_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    return schema_problems(ModelArch, data, "model.yaml")


def test_valid_model_parses(llama8b: dict[str, Any]) -> None:
    model = parse_model(ModelArch, llama8b, "model.yaml")
    assert (model.num_layers, model.hidden_size, model.num_kv_heads) == (32, 4096, 8)


def test_mla_block_gives_latent_kv_size(llama8b: dict[str, Any]) -> None:
    llama8b.update(attention="mla", mla=MLA, num_kv_heads=32)
    model = parse_model(ModelArch, llama8b, "model.yaml")
    assert model.mla is not None and model.mla.kv_cache_elems_per_token == 512 + 64


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda m: m.update(num_kv_heads=5), "", "multiple of num_kv_heads 5"),
        (lambda m: m.update(attention="mha"), "", "num_kv_heads == num_heads"),
        (lambda m: m.update(num_kv_heads=32), "", "num_kv_heads < num_heads"),
        (lambda m: m.update(attention="mla"), "", "'mla' block is required exactly"),
        (lambda m: m.update(mla=MLA), "", "'mla' block is required exactly"),
        (
            lambda m: m.update(moe={"num_experts": 8, "experts_per_token": 9, "expert_intermediate_size": 10}),
            "moe",
            "experts_per_token cannot exceed num_experts",
        ),
        (
            lambda m: m.update(
                moe={"num_experts": 8, "experts_per_token": 2, "expert_intermediate_size": 10, "dense_layers": 40}
            ),
            "",
            "dense_layers cannot exceed num_layers",
        ),
        (lambda m: m.update(sliding_window={"window_tokens": 128, "layers": 33}), "", "cannot exceed num_layers"),
        (lambda m: m.update(kind="encoder"), "", "encoder_input is required exactly"),
        (lambda m: m.update(num_layers=0), "num_layers", "greater than 0"),
        (lambda m: m.update(weight_dtype="fp6"), "weight_dtype", "Input should be"),
        (lambda m: m.update(attention="linear"), "attention", "Input should be"),
        (lambda m: m.update(layers=32), "layers", "Extra inputs are not permitted"),
        (lambda m: m.pop("vocab_size"), "vocab_size", "Field required"),
        (lambda m: m.update(sources=[{"title": "x"}]), "sources[0].title", "at least 3 characters"),
    ],
)
def test_model_rule_violations(llama8b: dict[str, Any], mutate, field: str, fragment: str) -> None:
    mutate(llama8b)
    found = problems_of(llama8b)
    assert any(path == field and fragment in msg for path, msg in found), found
