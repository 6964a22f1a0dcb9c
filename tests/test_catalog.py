"""The bundled catalogs: loader behaviour and data-quality invariants every entry must keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from hetplace.catalogs.loader import Catalog, bundled_dir, load_catalog
from hetplace.catalogs.schema import Dtype, ModelArch, ModelKind, Tier
from hetplace.common.errors import InputError
from tests.conftest import write_yaml

PRE_HOPPER_NVIDIA = ["v100-sxm2-32gb", "t4", "a10g", "a40", "a100-40gb-sxm", "a100-80gb-sxm"]
REQUIRED_MODELS = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "mixtral-8x7b",
    "deepseek-v3",
    "qwen3-30b-a3b",
    "gpt-oss-120b",
    "bge-large-en-v1.5",
    "clip-vit-l-14-336",
]


def test_catalog_has_enough_devices_in_three_tiers(catalog: Catalog) -> None:
    assert len(catalog.devices) >= 16
    by_tier = {t: [d for d in catalog.devices.values() if d.tier == t] for t in Tier}
    assert len(by_tier[Tier.older_gpu]) >= 4
    assert len(by_tier[Tier.new_accelerator]) >= 4
    assert len(by_tier[Tier.cpu]) >= 2


def test_vidur_calibration_devices_present(catalog: Catalog) -> None:
    assert {"a100-80gb-sxm", "h100-sxm", "a40"} <= catalog.devices.keys()


def test_every_device_cites_sources_and_labels_estimates(catalog: Catalog) -> None:
    for dev in catalog.devices.values():
        assert dev.sources, dev.id
        if dev.capex_basis is not None and dev.capex_basis.value == "estimate":
            assert "capex_usd" in dev.estimated_fields, dev.id
        if dev.tier == Tier.cpu:
            # CPU matrix peaks are derived from cores x FLOPs/cycle x clock, never a datasheet line.
            assert "peak_tflops" in dev.estimated_fields, dev.id


def test_dtype_support_matches_hardware_generations(catalog: Catalog) -> None:
    for dev_id in PRE_HOPPER_NVIDIA:
        dev = catalog.device(dev_id)
        assert not dev.supports(Dtype.fp8) and not dev.supports(Dtype.fp4), dev_id
    assert not catalog.device("v100-sxm2-32gb").supports(Dtype.bf16)
    assert catalog.device("h100-sxm").supports(Dtype.fp8)
    assert catalog.device("b200").supports(Dtype.fp4)
    assert not catalog.device("h100-sxm").supports(Dtype.fp4)


def test_lower_precision_is_never_slower(catalog: Catalog) -> None:
    order = [Dtype.fp32, Dtype.bf16, Dtype.fp8, Dtype.fp4]
    for dev in catalog.devices.values():
        peaks = [dev.peak_tflops[d] for d in order if d in dev.peak_tflops]
        assert peaks == sorted(peaks), (dev.id, peaks)


def test_hopper_figures_match_datasheet(catalog: Catalog) -> None:
    h100 = catalog.device("h100-sxm")
    assert (h100.mem_gb, h100.mem_bw_gbs, h100.tdp_w) == (80, 3350, 700)
    assert h100.peak_tflops[Dtype.bf16] == pytest.approx(989.5)  # 1979 sparse / 2
    assert h100.scaleup_bw_gbs == 450  # 900 GB/s bidirectional NVLink


def test_cloud_only_devices_have_no_purchase_price(catalog: Catalog) -> None:
    for dev_id in ("tpu-v5e", "tpu-v6e", "graviton4"):
        dev = catalog.device(dev_id)
        assert dev.capex_usd is None and dev.cloud_usd_per_hour is not None, dev_id


def test_required_models_present(catalog: Catalog) -> None:
    assert len(catalog.models) >= 8
    assert set(REQUIRED_MODELS) <= catalog.models.keys()
    kinds = {m.kind for m in catalog.models.values()}
    assert kinds == {ModelKind.decoder, ModelKind.embedding, ModelKind.encoder}
    assert catalog.model("deepseek-v3").attention.value == "mla"
    assert any(m.moe and m.id.startswith("qwen3") for m in catalog.models.values())


def _params_b(m: ModelArch) -> float:
    """Parameter count from architecture fields — an independent formula to cross-check catalog numbers."""
    h = m.hidden_size
    if m.mla is not None:
        q_in = m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim
        q = (
            h * m.mla.q_lora_rank + m.mla.q_lora_rank * m.num_heads * q_in
            if m.mla.q_lora_rank
            else h * m.num_heads * q_in
        )
        kv = h * (m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) + m.mla.kv_lora_rank * m.num_heads * (
            m.mla.qk_nope_head_dim + m.mla.v_head_dim
        )
        attn = q + kv + m.num_heads * m.mla.v_head_dim * h
    else:
        attn = 2 * h * m.num_heads * m.head_dim + 2 * h * m.num_kv_heads * m.head_dim
    mats = 3 if m.ffn.value == "swiglu" else 2
    dense_ffn = mats * h * m.intermediate_size
    if m.moe is None:
        ffn_total = m.num_layers * dense_ffn
    else:
        moe_layer = (m.moe.num_experts + m.moe.num_shared_experts) * mats * h * m.moe.expert_intermediate_size
        moe_layer += h * m.moe.num_experts  # router
        ffn_total = m.moe.dense_layers * dense_ffn + (m.num_layers - m.moe.dense_layers) * moe_layer
    embed = m.vocab_size * h * (1 if m.tied_embeddings or m.kind != ModelKind.decoder else 2)
    return (m.num_layers * attn + ffn_total + embed) / 1e9


def test_architecture_reproduces_published_parameter_counts(catalog: Catalog) -> None:
    checked = 0
    for m in catalog.models.values():
        if m.reference_params_b is None:
            continue
        assert _params_b(m) == pytest.approx(m.reference_params_b, rel=0.01), m.id
        checked += 1
    assert checked >= 8


def test_hand_computed_llama_8b_parameter_count(catalog: Catalog) -> None:
    # 32 x (2*4096*4096 + 2*4096*1024 + 3*4096*14336) + 2*128256*4096 = 8.030e9
    assert _params_b(catalog.model("llama-3.1-8b")) == pytest.approx(8.0302, abs=1e-3)


def test_bundled_ids_equal_file_names() -> None:
    for kind in ("devices", "models"):
        stems = sorted(p.stem for p in bundled_dir(kind).glob("*.yaml"))
        cat = load_catalog()
        assert stems == sorted(cat.devices if kind == "devices" else cat.models)


def test_extended_catalog_adds_entries_and_rejects_duplicates(tmp_path: Path, h100: dict) -> None:
    h100["id"] = "h100-sxm-discounted"
    extra = write_yaml(tmp_path / "extra.yaml", h100)
    cat = load_catalog().extended(device_files=[extra])
    assert "h100-sxm-discounted" in cat.devices and "h100-sxm-discounted" not in load_catalog().devices
    with pytest.raises(InputError) as exc:
        cat.extended(device_files=[extra])
    assert exc.value.source == str(extra)
    assert "already defined" in exc.value.problems[0].message


def test_extended_catalog_reports_bad_entry_with_file(tmp_path: Path, h100: dict) -> None:
    h100["mem_gb"] = -1
    bad = write_yaml(tmp_path / "bad.yaml", h100)
    with pytest.raises(InputError) as exc:
        load_catalog().extended(device_files=[bad])
    assert exc.value.source == str(bad)
    assert exc.value.problems[0].field_path == "mem_gb"
