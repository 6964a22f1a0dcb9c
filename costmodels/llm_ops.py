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
from hetplace.costmodels.arrays import FloatArray, Floats
from hetplace.costmodels.precision import ACT_BYTES, Precision

# Row kinds decide which peak applies: weight GEMMs run in the weight format, attention in 16-bit.
GEMM, ATTENTION, VECTOR, COMM = "gemm", "attention", "vector", "comm"


@dataclass(frozen=True)
class Operator:
    name: str
    kind: str  # GEMM | ATTENTION | VECTOR | COMM
    flops: FloatArray  # per device, per forward pass
    bytes: FloatArray  # bytes read + written from device memory (COMM: payload bytes over the link)
    cf_bytes: FloatArray  # resident bytes this operator needs (weights, KV cache)
    layers: int  # layers (or kernel launches) it spans, for the fixed per-kernel overhead
    collectives: FloatArray | int = 0  # all-reduce calls per forward pass (COMM rows)
    gemm_m: FloatArray | None = None  # rows of the operator's main GEMM (for tile/wave padding), per device
    gemm_n: Floats | None = None  # output columns of that GEMM, per device

    @property
    def oi(self) -> FloatArray:
        """Operational intensity, FLOPs per byte of memory traffic."""
        return np.divide(self.flops, self.bytes, out=np.zeros_like(self.flops, dtype=float), where=self.bytes > 0)


@dataclass(frozen=True)
class Shape:
    """Work of one forward pass, one entry per config."""

    batch: FloatArray
    new_tokens: FloatArray
    past_tokens: FloatArray
    tp: FloatArray

    @classmethod
    def of(cls, batch, new_tokens, past_tokens, tp=1) -> Shape:
        arrays = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (batch, new_tokens, past_tokens, tp)))
        return cls(*(np.atleast_1d(a) for a in arrays))

    @property
    def tokens(self) -> FloatArray:
        return self.batch * self.new_tokens


def kv_elems_per_token_layer(model: ModelArch) -> float:
    """KV-cache elements stored per token per layer (MLA: the compressed latent plus the rope key)."""
    if model.attention == AttentionKind.mla:
        assert model.mla is not None
        return float(model.mla.kv_cache_elems_per_token)
    return 2.0 * model.num_kv_heads * model.head_dim


def kv_shard(model: ModelArch, tp: FloatArray) -> FloatArray:
    """Fraction of a layer's KV cache one device holds: KV heads split over tp, replicated beyond n_kv (and
    the MLA latent, shared by all heads, is replicated on every tensor-parallel rank)."""
    if model.attention == AttentionKind.mla:
        return np.ones_like(tp)
    return np.maximum(1.0 / tp, 1.0 / model.num_kv_heads)


def kv_bytes_per_token(model: ModelArch, precision: Precision, tp: Floats = 1.0) -> FloatArray:
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


def expected_distinct_experts(num_experts: int, experts_per_token: int, tokens: FloatArray) -> FloatArray:
    """Expected number of distinct experts a batch of `tokens` routes to, assuming uniform routing:
    E·(1 − (1 − k/E)^tokens)."""
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** tokens)


def attention_context(model: ModelArch, shape: Shape) -> tuple[FloatArray, FloatArray]:
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


@dataclass(frozen=True)
class _Pass:
    """What every operator group of one forward pass needs: the model, the work, the formats and the weights."""

    model: ModelArch
    shape: Shape
    precision: Precision
    params: dict[str, float]

    @property
    def h(self) -> float:
        return float(self.model.hidden_size)

    @property
    def layers(self) -> int:
        return self.model.num_layers

    @property
    def tp(self) -> FloatArray:
        return self.shape.tp

    @property
    def tokens(self) -> FloatArray:
        return self.shape.tokens

    @property
    def moe_layers(self) -> int:
        return self.model.num_layers - self.model.moe.dense_layers if self.model.moe is not None else 0

    def zero(self) -> FloatArray:
        """A fresh per-config zero array (operators never share one)."""
        return np.zeros_like(self.tokens)

    def gemm(self, name: str, group: str, rows: FloatArray, out_features: float | None = None) -> Operator:
        """A weight GEMM over `rows` token rows in every layer of its group, weights `params[group]` split
        over tp; reads the weights once, the input activations and writes the (sharded) output."""
        layers_of = {"lm_head": 1, "ffn": self.layers - self.moe_layers, "moe_shared": self.moe_layers}
        layers = layers_of.get(group, self.layers)
        k = self.tp
        weights = self.params[group] * _group_weight_bytes(self.model, self.precision, group) / k
        act = rows * (self.h + (out_features or self.h) / k) * ACT_BYTES * layers
        return Operator(
            name,
            GEMM,
            2.0 * rows * self.params[group] / k,
            weights + act,
            weights,
            layers,
            gemm_m=rows,
            gemm_n=(out_features or self.h) / k,
        )


def _embedding(p: _Pass) -> list[Operator]:
    """Embedding lookup: reads one row per token, no FLOPs; the table is resident (vocab-parallel over tp)."""
    resident = p.params["embed"] * ACT_BYTES / p.tp
    return [Operator("embedding", VECTOR, p.zero(), p.tokens * p.h * ACT_BYTES, resident, 1)]


def _attention(p: _Pass) -> list[Operator]:
    """Q/K/V projections (MLA: q and latent-kv), the attention core over the KV cache, and the O projection."""
    model, shape, k, n_tok, L = p.model, p.shape, p.tp, p.tokens, p.layers
    mean_ctx, kv_pos = attention_context(model, shape)
    kv_elems = kv_elems_per_token_layer(model)
    kv_resident = shape.batch * kv_pos * kv_elems * p.precision.kv_bytes * L * kv_shard(model, k)
    ops: list[Operator] = []
    d_qk: Floats
    d_v: Floats
    if model.mla is not None:
        m = model.mla
        ops.append(p.gemm("q_proj", "q_proj", n_tok))
        # Prefill expands cached latents for every position (kv_b on past + new tokens); decode absorbs kv_b
        # into the query/output projections, so it runs on the new tokens only.
        decode_like = shape.new_tokens <= 1
        kv_rows = np.where(decode_like, n_tok, shape.batch * kv_pos)
        ops.append(p.gemm("kv_proj", "kv_proj", kv_rows))
        d_qk = np.where(decode_like, m.kv_lora_rank + m.qk_rope_head_dim, m.qk_nope_head_dim + m.qk_rope_head_dim)
        d_v = np.where(decode_like, m.kv_lora_rank, m.v_head_dim)
    else:
        qkv_out = (model.num_heads + 2 * model.num_kv_heads) * model.head_dim
        ops.append(p.gemm("qkv_proj", "qkv_proj", n_tok, qkv_out))
        d_qk = d_v = float(model.head_dim)
    heads = model.num_heads / k
    attn_flops = 2.0 * n_tok * heads * (d_qk + d_v) * mean_ctx * L
    kv_read = shape.batch * kv_pos * kv_elems * p.precision.kv_bytes * L * kv_shard(model, k)
    q_o_act = 2.0 * n_tok * heads * np.maximum(d_qk, d_v) * ACT_BYTES * L
    ops.append(Operator("attention", ATTENTION, attn_flops, kv_read + q_o_act, kv_resident, L))
    ops.append(p.gemm("o_proj", "o_proj", n_tok))
    return ops


def _ffn(p: _Pass) -> list[Operator]:
    """The dense FFN of the layers that have one (SwiGLU: gate and up in one GEMM, then down)."""
    if "ffn" not in p.params:
        return []
    return [p.gemm("ffn", "ffn", p.tokens, p.model.intermediate_size * (_ffn_mats(p.model) - 1))]


def _moe(p: _Pass) -> list[Operator]:
    """Router, routed experts (FLOPs of the top-k, bytes of the distinct experts the batch touches), shared experts."""
    moe = p.model.moe
    if moe is None:
        return []
    n_tok, k, h, moe_layers = p.tokens, p.tp, p.h, p.moe_layers
    w = p.precision.weight_bytes
    router_p = p.params["moe_router"]
    router = Operator(
        "moe_router",
        GEMM,
        2.0 * n_tok * router_p,
        router_p * w + n_tok * h * ACT_BYTES * moe_layers,
        router_p * w + p.zero(),
        moe_layers,
    )
    expert_p = p.params["moe_experts"] / moe.num_experts  # one expert over all MoE layers
    ewb = _group_weight_bytes(p.model, p.precision, "moe_experts")
    touched = expected_distinct_experts(moe.num_experts, moe.experts_per_token, n_tok)
    act = 2.0 * n_tok * moe.experts_per_token * h * ACT_BYTES * moe_layers
    experts = Operator(
        "moe_experts",
        GEMM,
        2.0 * n_tok * moe.experts_per_token * expert_p / k,
        touched * expert_p * ewb / k + act / k,
        p.params["moe_experts"] * ewb / k,
        moe_layers,
    )
    shared = [p.gemm("moe_shared", "moe_shared", n_tok)] if moe.num_shared_experts else []
    return [router, experts, *shared]


def _norms(p: _Pass) -> list[Operator]:
    """Two norms per layer, each reading and writing the activations."""
    n_tok, h, L = p.tokens, p.h, p.layers
    norm_bytes = 2.0 * 2.0 * n_tok * h * ACT_BYTES * L
    return [Operator("norms", VECTOR, 2.0 * 4.0 * n_tok * h * L, norm_bytes, p.zero(), L)]


def _lm_head(p: _Pass) -> list[Operator]:
    """Logits of decoders, only for the last position of each sequence (prefill) or each new token (decode)."""
    model, shape, k, h = p.model, p.shape, p.tp, p.h
    if model.kind.value != "decoder":
        return []
    logit_rows = np.where(shape.new_tokens <= 1, p.tokens, shape.batch)
    params = float(model.vocab_size * h)
    head_resident = 0.0 if model.tied_embeddings else params * ACT_BYTES / k
    head_bytes = params * ACT_BYTES / k + logit_rows * (h + model.vocab_size / k) * ACT_BYTES
    return [
        Operator(
            "lm_head",
            GEMM,
            2.0 * logit_rows * params / k,
            head_bytes,
            head_resident + p.zero(),
            1,
            gemm_m=logit_rows,
            gemm_n=model.vocab_size / k,
        )
    ]


def _collectives(p: _Pass) -> list[Operator]:
    """Two all-reduces per layer (after attention and after the FFN) of the layer's activations, when tp > 1."""
    k, L = p.tp, p.layers
    payload = np.where(k > 1, p.tokens * p.h * ACT_BYTES * 2 * L, 0.0)
    return [Operator("allreduce", COMM, p.zero(), payload, p.zero(), 2 * L, np.where(k > 1, 2 * L, 0))]


def llm_operators(model: ModelArch, shape: Shape, precision: Precision) -> list[Operator]:
    """Operators of one forward pass of a decoder (or encoder) model, per device, in execution order."""
    p = _Pass(model, shape, precision, weight_params(model))
    groups = (_embedding, _attention, _ffn, _moe, _norms, _lm_head, _collectives)
    return [op for group in groups for op in group(p)]
