"""Decompose one forward pass of a transformer into operators with FLOPs, bytes moved and resident bytes.

Every quantity is per device (tensor parallelism already applied) and vectorised: batch, new tokens, past tokens
and tensor-parallel degree are numpy arrays of one shape (one entry per config), so a single call evaluates a
whole menu. A forward pass processes `batch` sequences with `new_tokens` each (prefill: the uncached prompt;
decode: 1) attending to `past_tokens` already in the KV cache plus the new ones (causal).

Conventions (README "Cost models"): h hidden, n_h heads, n_kv KV heads, d head dim, f FFN width; w/kv bytes per
element of weights and KV cache, activations 16-bit. Rows are summed over the layers they occur in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hetplace.catalogs.schema import DTYPE_BYTES, AttentionKind, FfnKind, ModelArch
from hetplace.costmodels.precision import ACT_BYTES, Precision

Array = np.ndarray

# Row kinds decide which peak applies: weight GEMMs run in the weight format, attention in 16-bit.
GEMM, ATTENTION, VECTOR, COMM = "gemm", "attention", "vector", "comm"


@dataclass(frozen=True)
class Operator:
    name: str
    kind: str  # GEMM | ATTENTION | VECTOR | COMM
    flops: Array  # per device, per forward pass
    bytes: Array  # bytes read + written from device memory (COMM: payload bytes over the link)
    cf_bytes: Array  # resident bytes this operator needs (weights, KV cache)
    layers: int  # layers (or kernel launches) it spans, for the fixed per-kernel overhead
    collectives: Array | int = 0  # all-reduce calls per forward pass (COMM rows)
    gemm_m: Array | None = None  # rows of the operator's main GEMM (for tile/wave padding), per device
    gemm_n: Array | float | None = None  # output columns of that GEMM, per device

    @property
    def oi(self) -> Array:
        """Operational intensity, FLOPs per byte of memory traffic."""
        return np.divide(self.flops, self.bytes, out=np.zeros_like(self.flops, dtype=float), where=self.bytes > 0)


@dataclass(frozen=True)
class Shape:
    """Work of one forward pass, one entry per config."""

    batch: Array
    new_tokens: Array
    past_tokens: Array
    tp: Array

    @classmethod
    def of(cls, batch, new_tokens, past_tokens, tp=1) -> Shape:
        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (batch, new_tokens, past_tokens, tp)))
        return cls(*(np.atleast_1d(a) for a in arrays))

    @property
    def tokens(self) -> Array:
        return self.batch * self.new_tokens


def kv_elems_per_token_layer(model: ModelArch) -> float:
    """KV-cache elements stored per token per layer (MLA: the compressed latent plus the rope key)."""
    if model.attention == AttentionKind.mla:
        assert model.mla is not None
        return float(model.mla.kv_cache_elems_per_token)
    return 2.0 * model.num_kv_heads * model.head_dim


def kv_shard(model: ModelArch, tp: Array) -> Array:
    """Fraction of a layer's KV cache one device holds: KV heads split over tp, replicated beyond n_kv (and
    the MLA latent, shared by all heads, is replicated on every tensor-parallel rank)."""
    if model.attention == AttentionKind.mla:
        return np.ones_like(tp)
    return np.maximum(1.0 / tp, 1.0 / model.num_kv_heads)


def kv_bytes_per_token(model: ModelArch, precision: Precision, tp: Array | float = 1.0) -> Array:
    """KV bytes one device stores per cached token over all layers (sliding-window layers counted in full;
    `attention_context` caps their reads)."""
    tp = np.asarray(tp, dtype=float)
    return kv_elems_per_token_layer(model) * precision.kv_bytes * model.num_layers * kv_shard(model, tp)


def _ffn_mats(model: ModelArch) -> int:
    return 3 if model.ffn == FfnKind.swiglu else 2


def weight_params(model: ModelArch) -> dict[str, float]:
    """Parameters per operator group over the whole model (not sharded)."""
    h, L = model.hidden_size, model.num_layers
    out: dict[str, float] = {"embed": float(model.vocab_size * h)}
    if model.mla is not None:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        q = h * m.q_lora_rank + m.q_lora_rank * model.num_heads * qk if m.q_lora_rank else h * model.num_heads * qk
        out["q_proj"] = float(L * q)
        out["kv_proj"] = float(
            L
            * (
                h * (m.kv_lora_rank + m.qk_rope_head_dim)
                + m.kv_lora_rank * model.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
            )
        )
        out["o_proj"] = float(L * model.num_heads * m.v_head_dim * h)
    else:
        out["qkv_proj"] = float(L * h * (model.num_heads + 2 * model.num_kv_heads) * model.head_dim)
        out["o_proj"] = float(L * model.num_heads * model.head_dim * h)
    mats = _ffn_mats(model)
    if model.moe is None:
        out["ffn"] = float(L * mats * h * model.intermediate_size)
    else:
        moe = model.moe
        moe_layers = L - moe.dense_layers
        if moe.dense_layers:
            out["ffn"] = float(moe.dense_layers * mats * h * model.intermediate_size)
        out["moe_router"] = float(moe_layers * h * moe.num_experts)
        out["moe_experts"] = float(moe_layers * moe.num_experts * mats * h * moe.expert_intermediate_size)
        if moe.num_shared_experts:
            out["moe_shared"] = float(moe_layers * moe.num_shared_experts * mats * h * moe.expert_intermediate_size)
    if model.kind.value == "decoder":
        out["lm_head"] = 0.0 if model.tied_embeddings else float(model.vocab_size * h)
    return out


def weight_bytes(model: ModelArch, precision: Precision) -> float:
    """Bytes of all weights at `precision` (MoE experts may keep their own format, e.g. mxfp4)."""
    return sum(n * _group_weight_bytes(model, precision, g) for g, n in weight_params(model).items())


def _group_weight_bytes(model: ModelArch, precision: Precision, group: str) -> float:
    if group == "moe_experts" and model.moe is not None and model.moe.expert_dtype is not None:
        return min(DTYPE_BYTES[model.moe.expert_dtype], precision.weight_bytes)
    if group == "embed":
        return ACT_BYTES  # embedding tables stay 16-bit in common serving stacks
    return precision.weight_bytes


def expected_distinct_experts(num_experts: int, experts_per_token: int, tokens: Array) -> Array:
    """Expected number of distinct experts a batch of `tokens` routes to, assuming uniform routing:
    E·(1 − (1 − k/E)^tokens)."""
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** tokens)


def attention_context(model: ModelArch, shape: Shape) -> tuple[Array, Array]:
    """(mean positions each new token attends to, KV positions read per sequence), averaged over layers with
    and without a sliding window. Decoders are causal: new token i sees the past plus i earlier new tokens."""
    if model.kind.value == "decoder":
        causal_mean = shape.past_tokens + (shape.new_tokens + 1.0) / 2.0
    else:  # encoders attend bidirectionally: every token sees the whole input
        causal_mean = shape.past_tokens + shape.new_tokens
    kv_positions = shape.past_tokens + shape.new_tokens
    if model.sliding_window is None:
        return causal_mean, kv_positions
    w = float(model.sliding_window.window_tokens)
    frac = model.sliding_window.layers / model.num_layers
    return (
        frac * np.minimum(causal_mean, w) + (1 - frac) * causal_mean,
        frac * np.minimum(kv_positions, w + shape.new_tokens) + (1 - frac) * kv_positions,
    )


def llm_operators(model: ModelArch, shape: Shape, precision: Precision) -> list[Operator]:
    """Operators of one forward pass of a decoder (or encoder) model, per device."""
    h, L, k = float(model.hidden_size), model.num_layers, shape.tp
    n_tok = shape.tokens
    w = precision.weight_bytes
    params = weight_params(model)
    zero = np.zeros_like(n_tok)
    ops: list[Operator] = []

    moe_layers = L - model.moe.dense_layers if model.moe is not None else 0
    dense_ffn_layers = L - moe_layers
    layers_of = {"lm_head": 1, "ffn": dense_ffn_layers, "moe_shared": moe_layers}

    def gemm(name: str, group: str, rows: Array, out_features: float | None = None) -> Operator:
        """A weight GEMM over `rows` token rows in every layer of its group, weights `params[group]` split
        over tp; reads the weights once, the input activations and writes the (sharded) output."""
        layers = layers_of.get(group, L)
        weights = params[group] * _group_weight_bytes(model, precision, group) / k
        act = rows * (h + (out_features or h) / k) * ACT_BYTES * layers
        return Operator(
            name,
            GEMM,
            2.0 * rows * params[group] / k,
            weights + act,
            weights,
            layers,
            gemm_m=rows,
            gemm_n=(out_features or h) / k,
        )

    # Embedding lookup: reads one row per token, no FLOPs; the table is resident (vocab-parallel over tp).
    emb_resident = params["embed"] * ACT_BYTES / k
    ops.append(Operator("embedding", VECTOR, zero.copy(), n_tok * h * ACT_BYTES, emb_resident, 1))

    mean_ctx, kv_pos = attention_context(model, shape)
    kv_elems = kv_elems_per_token_layer(model)
    kv_resident = shape.batch * kv_pos * kv_elems * precision.kv_bytes * L * kv_shard(model, k)
    if model.mla is not None:
        m = model.mla
        ops.append(gemm("q_proj", "q_proj", n_tok))
        # Prefill expands cached latents for every position (kv_b on past + new tokens); decode absorbs kv_b
        # into the query/output projections, so it runs on the new tokens only.
        decode_like = shape.new_tokens <= 1
        kv_rows = np.where(decode_like, n_tok, shape.batch * kv_pos)
        ops.append(gemm("kv_proj", "kv_proj", kv_rows))
        d_qk = np.where(decode_like, m.kv_lora_rank + m.qk_rope_head_dim, m.qk_nope_head_dim + m.qk_rope_head_dim)
        d_v = np.where(decode_like, m.kv_lora_rank, m.v_head_dim)
        heads = model.num_heads / k
    else:
        ops.append(gemm("qkv_proj", "qkv_proj", n_tok, (model.num_heads + 2 * model.num_kv_heads) * model.head_dim))
        d_qk = d_v = float(model.head_dim)
        heads = model.num_heads / k
    attn_flops = 2.0 * n_tok * heads * (d_qk + d_v) * mean_ctx * L
    kv_read = shape.batch * kv_pos * kv_elems * precision.kv_bytes * L * kv_shard(model, k)
    q_o_act = 2.0 * n_tok * heads * np.maximum(d_qk, d_v) * ACT_BYTES * L
    ops.append(Operator("attention", ATTENTION, attn_flops, kv_read + q_o_act, kv_resident, L))
    ops.append(gemm("o_proj", "o_proj", n_tok))

    mats = _ffn_mats(model)
    if "ffn" in params:
        ops.append(gemm("ffn", "ffn", n_tok, model.intermediate_size * (mats - 1)))
    if model.moe is not None:
        moe = model.moe
        router_p = params["moe_router"]
        ops.append(
            Operator(
                "moe_router",
                GEMM,
                2.0 * n_tok * router_p,
                router_p * w + n_tok * h * ACT_BYTES * moe_layers,
                router_p * w + zero,
                moe_layers,
            )
        )
        expert_p = params["moe_experts"] / moe.num_experts  # one expert over all MoE layers
        ewb = _group_weight_bytes(model, precision, "moe_experts")
        touched = expected_distinct_experts(moe.num_experts, moe.experts_per_token, n_tok)
        act = 2.0 * n_tok * moe.experts_per_token * h * ACT_BYTES * moe_layers
        ops.append(
            Operator(
                "moe_experts",
                GEMM,
                2.0 * n_tok * moe.experts_per_token * expert_p / k,
                touched * expert_p * ewb / k + act / k,
                params["moe_experts"] * ewb / k,
                moe_layers,
            )
        )
        if moe.num_shared_experts:
            ops.append(gemm("moe_shared", "moe_shared", n_tok))
    norm_bytes = 2.0 * 2.0 * n_tok * h * ACT_BYTES * L  # two norms per layer, read + write
    ops.append(Operator("norms", VECTOR, 2.0 * 4.0 * n_tok * h * L, norm_bytes, zero.copy(), L))

    if model.kind.value == "decoder":
        # Logits only for the last position of each sequence (prefill) or each new token (decode).
        logit_rows = np.where(shape.new_tokens <= 1, n_tok, shape.batch)
        p = float(model.vocab_size * h)
        head_resident = 0.0 if model.tied_embeddings else p * ACT_BYTES / k
        head_bytes = p * ACT_BYTES / k + logit_rows * (h + model.vocab_size / k) * ACT_BYTES
        ops.append(
            Operator(
                "lm_head",
                GEMM,
                2.0 * logit_rows * p / k,
                head_bytes,
                head_resident + zero,
                1,
                gemm_m=logit_rows,
                gemm_n=model.vocab_size / k,
            )
        )

    # Two all-reduces per layer (after attention and after the FFN) of the layer's activations, when tp > 1.
    payload = np.where(k > 1, n_tok * h * ACT_BYTES * 2 * L, 0.0)
    ops.append(Operator("allreduce", COMM, zero.copy(), payload, zero.copy(), 2 * L, np.where(k > 1, 2 * L, 0)))
    return ops
