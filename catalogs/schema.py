"""Schemas of catalog entries: hardware devices and model architectures.

Units live in field names (`_gb`, `_gbs`, `_gbps`, `_tflops`, `_w`, `_usd`). Every device cites its sources;
figures that are not read off a datasheet or price list are listed in `estimated_fields`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from hetplace.common.schema_base import (
    Fraction,
    Identifier,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Source,
    StrictModel,
)


class Dtype(StrEnum):
    """Numeric formats a device can run and a model can be stored in."""

    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    int8 = "int8"
    fp4 = "fp4"
    int4 = "int4"


DTYPE_BYTES: dict[Dtype, float] = {
    Dtype.fp32: 4.0,
    Dtype.tf32: 4.0,
    Dtype.bf16: 2.0,
    Dtype.fp16: 2.0,
    Dtype.fp8: 1.0,
    Dtype.int8: 1.0,
    Dtype.fp4: 0.5,
    Dtype.int4: 0.5,
}
"""Storage bytes per element (block-scale overheads of fp4/int4 formats are ignored)."""


class DeviceKind(StrEnum):
    gpu = "gpu"
    accelerator = "accelerator"
    cpu = "cpu"


class Tier(StrEnum):
    """Procurement tier: what a planner calls the device, independent of its architecture."""

    older_gpu = "older_gpu"
    new_accelerator = "new_accelerator"
    cpu = "cpu"


class CapexBasis(StrEnum):
    list_price = "list"
    street = "street"
    estimate = "estimate"


class EfficiencyFactors(StrictModel):
    """Default fractions of datasheet peaks that real kernels reach, plus a fixed per-kernel overhead.

    These are priors (labelled as such); `hetplace calibrate` replaces them with fitted values.
    """

    compute: Fraction = Field(default=0.7, description="Achieved / peak dense FLOP/s on large GEMMs.")
    memory: Fraction = Field(default=0.8, description="Achieved / peak memory bandwidth on streaming reads.")
    kernel_overhead_us: NonNegativeFloat = Field(
        default=5.0, description="Fixed launch/dispatch cost per operator, microseconds."
    )
    basis: Literal["prior", "calibrated"] = "prior"


DEVICE_ESTIMABLE_FIELDS = {
    "peak_tflops",
    "mem_bw_gbs",
    "scaleup_bw_gbs",
    "scaleout_nic_gbps",
    "tdp_w",
    "capex_usd",
    "cloud_usd_per_hour",
    "efficiency",
}


class Device(StrictModel):
    """One hardware device (a GPU, accelerator chip or CPU socket) as a planning unit."""

    id: Identifier
    name: str
    vendor: str
    kind: DeviceKind
    tier: Tier
    year: int = Field(ge=2010, le=2030, description="Year of general availability.")
    peak_tflops: dict[Dtype, PositiveFloat] = Field(
        description="Dense (no sparsity) peak TFLOP/s (TOPS for int formats) per dtype the hardware runs natively. "
        "A dtype absent here is unsupported: configs in it are infeasible, never extrapolated."
    )
    mem_gb: PositiveFloat = Field(description="Device memory (HBM/GDDR; DRAM per socket for CPUs), GB = 1e9 bytes.")
    mem_bw_gbs: PositiveFloat = Field(description="Peak memory bandwidth, GB/s.")
    scaleup_link: str = Field(description="Scale-up interconnect name (nvlink4, xgmi, ici, pcie4, upi, ...).")
    scaleup_bw_gbs: PositiveFloat = Field(
        description="Scale-up bandwidth per device per direction, GB/s (datasheet bidirectional figure / 2)."
    )
    scaleup_domain: PositiveInt = Field(
        description="Devices reachable over the scale-up link without the NIC (max tensor-parallel group)."
    )
    scaleout_nic_gbps: PositiveFloat = Field(description="Scale-out network per device, Gb/s.")
    devices_per_node: PositiveInt
    tdp_w: PositiveFloat = Field(description="Board/module/socket TDP, W.")
    cores: PositiveInt | None = Field(default=None, description="Physical cores (CPUs only).")
    compute_units: PositiveInt | None = Field(
        default=None,
        description="Streaming multiprocessors / compute units; enables the tile-and-wave GEMM model (GPUs).",
    )
    capex_usd: PositiveFloat | None = Field(default=None, description="Purchase price per device, USD.")
    capex_basis: CapexBasis | None = None
    cloud_usd_per_hour: PositiveFloat | None = Field(
        default=None, description="On-demand cloud price per device-hour, USD (instance price / devices)."
    )
    efficiency: EfficiencyFactors = Field(default_factory=EfficiencyFactors)
    estimated_fields: list[str] = Field(
        default_factory=list, description="Fields whose values are estimates, not datasheet/price-list figures."
    )
    sources: list[Source] = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> Device:
        if not self.peak_tflops:
            raise ValueError("peak_tflops must list at least one dtype")
        if self.capex_usd is not None and self.capex_basis is None:
            raise ValueError("capex_basis is required when capex_usd is given (list | street | estimate)")
        if self.capex_basis == CapexBasis.estimate and "capex_usd" not in self.estimated_fields:
            raise ValueError("capex_basis is 'estimate': list capex_usd in estimated_fields")
        unknown = sorted(set(self.estimated_fields) - DEVICE_ESTIMABLE_FIELDS)
        if unknown:
            raise ValueError(
                f"estimated_fields names unknown fields {unknown}; allowed {sorted(DEVICE_ESTIMABLE_FIELDS)}"
            )
        if self.kind == DeviceKind.cpu and self.cores is None:
            raise ValueError("cores is required for kind 'cpu'")
        if (self.kind == DeviceKind.cpu) != (self.tier == Tier.cpu):
            raise ValueError("kind 'cpu' and tier 'cpu' go together")
        return self

    def supports(self, dtype: Dtype | str) -> bool:
        return Dtype(dtype) in self.peak_tflops


class ModelKind(StrEnum):
    decoder = "decoder"
    embedding = "embedding"
    encoder = "encoder"


class AttentionKind(StrEnum):
    mha = "mha"
    gqa = "gqa"
    mla = "mla"


class FfnKind(StrEnum):
    swiglu = "swiglu"  # gate, up, down: three matrices
    gelu = "gelu"  # up, down: two matrices


class MlaConfig(StrictModel):
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache holds a compressed latent per token."""

    kv_lora_rank: PositiveInt
    q_lora_rank: PositiveInt | None = None
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt

    @property
    def kv_cache_elems_per_token(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim


class MoeConfig(StrictModel):
    num_experts: PositiveInt = Field(description="Routed experts per MoE layer.")
    experts_per_token: PositiveInt = Field(description="Routed experts activated per token (top-k).")
    num_shared_experts: NonNegativeInt = 0
    expert_intermediate_size: PositiveInt
    dense_layers: NonNegativeInt = Field(default=0, description="Leading layers with a dense FFN instead of MoE.")
    expert_dtype: Dtype | None = Field(default=None, description="Expert weight dtype if it differs (e.g. mxfp4).")

    @model_validator(mode="after")
    def _check(self) -> MoeConfig:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        return self


class SlidingWindow(StrictModel):
    window_tokens: PositiveInt
    layers: PositiveInt = Field(description="How many layers use the window (the rest attend to full context).")


class EncoderInput(StrictModel):
    """What one input item of an encoder becomes (image → patches, audio clip → frames)."""

    modality: Literal["image", "audio"]
    tokens_per_item: PositiveInt
    description: str


class ModelArch(StrictModel):
    """A transformer architecture with exact config values (from the model's public config.json)."""

    id: Identifier
    name: str
    kind: ModelKind
    hf_repo: str | None = Field(default=None, description="Hugging Face repo the config comes from.")
    num_layers: PositiveInt
    hidden_size: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    intermediate_size: PositiveInt = Field(description="Dense FFN width (the dense layers' width for MoE models).")
    ffn: FfnKind = FfnKind.swiglu
    vocab_size: PositiveInt
    max_context_tokens: PositiveInt
    attention: AttentionKind
    mla: MlaConfig | None = None
    moe: MoeConfig | None = None
    sliding_window: SlidingWindow | None = None
    tied_embeddings: bool = False
    weight_dtype: Dtype = Dtype.bf16
    kv_dtype: Dtype = Dtype.bf16
    encoder_input: EncoderInput | None = None
    reference_params_b: PositiveFloat | None = Field(
        default=None, description="Total parameters (billions) stated by the model card, for cross-checking."
    )
    sources: list[Source] = Field(min_length=1)
    notes: str | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> ModelArch:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} must be a multiple of num_kv_heads {self.num_kv_heads}")
        if self.attention == AttentionKind.mha and self.num_kv_heads != self.num_heads:
            raise ValueError("attention 'mha' needs num_kv_heads == num_heads (use 'gqa' otherwise)")
        if self.attention == AttentionKind.gqa and self.num_kv_heads == self.num_heads:
            raise ValueError("attention 'gqa' needs num_kv_heads < num_heads (use 'mha' otherwise)")
        if (self.attention == AttentionKind.mla) != (self.mla is not None):
            raise ValueError("an 'mla' block is required exactly when attention is 'mla'")
        if self.moe is not None and self.moe.dense_layers > self.num_layers:
            raise ValueError("moe.dense_layers cannot exceed num_layers")
        if self.sliding_window is not None and self.sliding_window.layers > self.num_layers:
            raise ValueError("sliding_window.layers cannot exceed num_layers")
        if (self.kind == ModelKind.encoder) != (self.encoder_input is not None):
            raise ValueError("encoder_input is required exactly for kind 'encoder'")
        return self
