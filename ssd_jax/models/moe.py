"""Mixture-of-experts feed-forward: a top-k router and SwiGLU experts run as grouped matmuls.

Routing is dropless: every token's `top_k` (expert, weight) assignments are sorted by expert and
each expert multiplies exactly the rows routed to it (`jax.lax.ragged_dot`, a grouped matmul),
so compute scales with tokens × top_k, never with tokens × experts, and no token is ever dropped
for lack of capacity (the sampler's outputs do not depend on what else is in the batch). That
is what runs on TPU (XLA's ragged-dot instruction) and GPU. XLA's CPU backend has no grouped
matmul: it expands `ragged_dot` into every group over every row with `[groups, rows, width]`
masks (benchmarks/moe.py: ~6x slower than dispatch/combine at 1k tokens, 32 experts). On CPU
the experts therefore run densely (`dense_experts`: every held expert on every token, weighted
by the sparse combine weights), the same result with plain matmuls, right for the small models
a CPU runs. How the experts are split over devices is `ssd_jax.parallel.experts`' business; the
functions here see one device's experts.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssd_jax.models.config import ModelConfig
from ssd_jax.models.self_attention import platform
from ssd_jax.parallel.experts import run_experts


class Routing(NamedTuple):
    """A token's experts `[N, k]` (int32), their combine weights `[N, k]`, and the router's
    float32 logits `[N, E]` (for the load-balancing loss)."""

    experts: jax.Array
    weights: jax.Array
    logits: jax.Array


def route(x: jax.Array, router: jax.Array, config: ModelConfig, bias: jax.Array | None = None) -> Routing:
    """The router on tokens `x [N, embed]`. Qwen3-MoE: softmax over all experts in float32, the
    top k, renormalised to sum to 1 when `norm_topk_prob`. gpt-oss: the top k of the (biased)
    logits, softmax over those k."""
    logits = x @ router.astype(x.dtype)
    if bias is not None:
        logits = logits + bias.astype(x.dtype)
    if config.family == "gpt_oss":
        top, experts = jax.lax.top_k(logits, config.num_experts_per_tok)
        weights = jax.nn.softmax(top, axis=-1)
        return Routing(experts.astype(jnp.int32), weights.astype(x.dtype), logits.astype(jnp.float32))
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    top, experts = jax.lax.top_k(probs, config.num_experts_per_tok)
    if config.norm_topk_prob:
        top = top / jnp.sum(top, axis=-1, keepdims=True)
    return Routing(experts.astype(jnp.int32), top.astype(x.dtype), logits.astype(jnp.float32))


def swiglu(gate: jax.Array, up: jax.Array) -> jax.Array:
    return jax.nn.silu(gate) * up


def clamped_swiglu(gate: jax.Array, up: jax.Array, limit: float, alpha: float) -> jax.Array:
    """gpt-oss's SwiGLU: gate clipped above at `limit`, up to ±`limit`, (up + 1) · gate · σ(α · gate)."""
    gate = jnp.minimum(gate, limit)
    up = jnp.clip(up, -limit, limit)
    return (up + 1) * gate * jax.nn.sigmoid(gate * alpha)


_REPLICA_VMAP = contextvars.ContextVar("replica_vmap", default=False)


@contextlib.contextmanager
def under_replica_vmap():
    """Marks code traced under the sampler's vmap over its cache replicas. `ragged_dot` has no
    batching rule for that case in this JAX version, so there the grouped matmuls run one replica
    after another (`lax.map`). Inference only: no reverse-mode derivative goes through it."""
    token = _REPLICA_VMAP.set(True)
    try:
        yield
    finally:
        _REPLICA_VMAP.reset(token)


@jax.custom_batching.custom_vmap
def _replica_mapped_ragged_dot(lhs: jax.Array, rhs: jax.Array, group_sizes: jax.Array) -> jax.Array:
    return jax.lax.ragged_dot(lhs, rhs, group_sizes)


@_replica_mapped_ragged_dot.def_vmap
def _ragged_dot_over_replicas(axis_size, in_batched, lhs, rhs, group_sizes):
    """One replica after another; an unbatched argument (the expert weights) is shared by every
    step, never broadcast to the replicas (that would copy the weights once per replica)."""
    args = (lhs, rhs, group_sizes)

    def one(mapped):
        rest = iter(mapped)
        return _replica_mapped_ragged_dot(*(next(rest) if b else a for a, b in zip(args, in_batched)))

    return jax.lax.map(one, tuple(a for a, b in zip(args, in_batched) if b)), True


def _ragged_dot(lhs: jax.Array, rhs: jax.Array, group_sizes: jax.Array) -> jax.Array:
    dot = _replica_mapped_ragged_dot if _REPLICA_VMAP.get() else jax.lax.ragged_dot
    return dot(lhs, rhs, group_sizes)


def grouped_experts(
    x: jax.Array, experts: jax.Array, weights: jax.Array, gate: jax.Array, up: jax.Array, down: jax.Array,
    first_expert: jax.Array | int = 0, activation=swiglu, gate_bias: jax.Array | None = None,
    up_bias: jax.Array | None = None,
) -> jax.Array:
    """Σ over each token's assignments to the experts held here of weight · expert(token).

    x `[N, embed]`; experts / weights `[N, k]` (global expert ids); gate / up `[E_here, embed,
    mlp]`, down `[E_here, mlp, embed]` are experts `first_expert .. first_expert + E_here`.
    Assignments to other experts contribute nothing (another device holds those experts).
    """
    num_tokens, top_k = experts.shape
    held = gate.shape[0]
    local = experts.reshape(-1) - first_expert
    mine = (local >= 0) & (local < held)
    local = jnp.where(mine, local, held)  # other devices' assignments sort last, in no group
    order = jnp.argsort(local, stable=True)
    rows = order // top_k
    group_sizes = jnp.sum(local[:, None] == jnp.arange(held), axis=0, dtype=jnp.int32)
    routed = x[rows]
    gate_out, up_out = _ragged_dot(routed, gate, group_sizes), _ragged_dot(routed, up, group_sizes)
    if gate_bias is not None:
        expert_of_row = jnp.minimum(local[order], held - 1)
        gate_out, up_out = gate_out + gate_bias[expert_of_row], up_out + up_bias[expert_of_row]
    hidden = activation(gate_out, up_out)
    out = _ragged_dot(hidden.astype(x.dtype), down, group_sizes)
    combine = jnp.where(mine, weights.reshape(-1), 0).astype(out.dtype)[order]
    out = jnp.where(mine[order][:, None], out * combine[:, None], 0)
    return jnp.zeros((num_tokens, x.shape[-1]), out.dtype).at[rows].add(out).astype(x.dtype)


def dense_experts(
    x: jax.Array, experts: jax.Array, weights: jax.Array, gate: jax.Array, up: jax.Array, down: jax.Array,
    first_expert: jax.Array | int = 0, activation=swiglu, gate_bias: jax.Array | None = None,
    up_bias: jax.Array | None = None,
) -> jax.Array:
    """`grouped_experts`' result (same arguments) computed by every held expert on every token."""
    held = gate.shape[0]
    combine = jnp.sum(jax.nn.one_hot(experts - first_expert, held, dtype=x.dtype) * weights[..., None], axis=1)
    gate_out, up_out = jnp.einsum("nh,ehm->enm", x, gate), jnp.einsum("nh,ehm->enm", x, up)
    if gate_bias is not None:
        gate_out, up_out = gate_out + gate_bias[:, None], up_out + up_bias[:, None]
    out = jnp.einsum("enm,emh->enh", activation(gate_out, up_out).astype(x.dtype), down)
    return jnp.einsum("ne,enh->nh", combine, out).astype(x.dtype)


def experts_for(platform: str):
    """The expert implementation for a platform: grouped matmuls, or dense on CPU (module docstring)."""
    return dense_experts if platform == "cpu" else grouped_experts


def load_balancing_stats(logits: jax.Array, token_mask: jax.Array, top_k: int) -> jax.Array:
    """One layer's `[3, E]` sums for the load-balancing loss: top-k assignment counts, router
    probabilities and (broadcast) the number of counted tokens, over tokens where `token_mask`."""
    probs = jax.nn.softmax(logits, axis=-1)
    _, chosen = jax.lax.top_k(probs, top_k)
    mask = token_mask.astype(jnp.float32)
    counts = jnp.sum(jax.nn.one_hot(chosen, logits.shape[-1], dtype=jnp.float32) * mask[:, None, None], axis=(0, 1))
    prob_sums = jnp.sum(probs * mask[:, None], axis=0)
    return jnp.stack([counts, prob_sums, jnp.broadcast_to(jnp.sum(mask), counts.shape)])


def load_balancing_loss(stats: jax.Array) -> jax.Array:
    """The Switch-Transformer auxiliary loss exactly as `transformers` computes it over all MoE
    layers (`load_balancing_loss_func`): E · Σ_e (assignments_e / tokens) · (probability_e / tokens),
    both summed over every layer; `stats` are the layers' `load_balancing_stats` stacked `[L, 3, E]`."""
    counts, prob_sums, tokens = (jnp.sum(stats[:, i], axis=0) for i in range(3))
    tokens = jnp.maximum(tokens, 1.0)
    return stats.shape[-1] * jnp.sum((counts / tokens) * (prob_sums / tokens))


def feed_forward(h: jax.Array, p: dict[str, jax.Array], config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """One block's mixture-of-experts feed-forward on normed `h [..., embed]`: (output like `h`,
    the router's float32 logits `[tokens, E]`). `p` holds the block's `router`, `expert_*` weights."""
    x = h.reshape(-1, h.shape[-1])
    routing = route(x, p["router"], config, p.get("router_bias"))
    weights = {"gate": p["expert_gate"], "up": p["expert_up"], "down": p["expert_down"]}
    activation = swiglu
    if config.swiglu_limit is not None:
        activation = functools.partial(clamped_swiglu, limit=config.swiglu_limit, alpha=config.swiglu_alpha)
    if "expert_gate_bias" in p:
        weights.update(gate_bias=p["expert_gate_bias"], up_bias=p["expert_up_bias"])
    local = functools.partial(experts_for(platform()), activation=activation)
    out = run_experts(local, x, routing.experts, routing.weights, weights)
    if "expert_down_bias" in p:  # Σ_k weight_k · bias of expert_k, outside the experts' sharded sum
        biases = p["expert_down_bias"][routing.experts].astype(out.dtype)
        out = out + jnp.sum(routing.weights[..., None].astype(out.dtype) * biases, axis=1)
    return out.reshape(h.shape), routing.logits
