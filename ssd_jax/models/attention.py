"""The reference grouped-query attention over keys/values laid out `[batch, kv_heads, length, head_dim]`.

It materialises float32 scores `[B, K, G, T, S]` and takes a dense mask: exact and, on CPU,
the fastest at short lengths, but quadratic in memory. `self_attention` picks it or a
blockwise / kernel implementation for full sequences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)  # a finite "minus infinity": no NaN on empty rows
_MASKED = MASKED


def causal_segment_mask(segment_ids: jax.Array | None, length: int, batch: int) -> jax.Array:
    """`[B, L, L]` mask for a full sequence: causal, and never across packed segments."""
    causal = jnp.tril(jnp.ones((length, length), dtype=bool))[None]
    if segment_ids is None:
        return jnp.broadcast_to(causal, (batch, length, length))
    same_segment = segment_ids[:, :, None] == segment_ids[:, None, :]
    return causal & same_segment


def cached_mask(key_mask: jax.Array, write_index: jax.Array, query_len: int) -> jax.Array:
    """`[B, T, S]` mask for queries at cache slots `write_index + t`: valid and not in the future."""
    max_len = key_mask.shape[1]
    query_slots = write_index + jnp.arange(query_len)
    not_future = jnp.arange(max_len)[None, :] <= query_slots[:, None]
    return key_mask[:, None, :] & not_future[None]


def grouped(x: jax.Array, num_kv: int) -> jax.Array:
    """`[B, T, H, D]` → `[B, K, G, T, D]`: each KV head's `G` query heads, time-major."""
    batch, length, num_heads, head_dim = x.shape
    return x.reshape(batch, length, num_kv, num_heads // num_kv, head_dim).transpose(0, 2, 3, 1, 4)


def ungrouped(x: jax.Array) -> jax.Array:
    """`[B, K, G, T, D]` → `[B, T, H, D]` (the inverse of `grouped`)."""
    batch, num_kv, group, length, head_dim = x.shape
    return x.transpose(0, 3, 1, 2, 4).reshape(batch, length, num_kv * group, head_dim)


def _masked_scores(q: jax.Array, k: jax.Array, mask: jax.Array) -> jax.Array:
    """float32 `[B, K, G, T, S]` scaled scores of grouped queries, `MASKED` where `mask` is false."""
    scores = jnp.einsum("bkgtd,bksd->bkgts", q, k, preferred_element_type=jnp.float32)
    return jnp.where(mask[:, None, None], scores * (q.shape[-1] ** -0.5), MASKED)


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Grouped queries → (output `[B, K, G, T, D]`, float32 log-sum-exp of the scores `[B, K, G, T, 1]`)."""
    scores = _masked_scores(q, k, mask)
    top = jnp.max(scores, axis=-1, keepdims=True)
    exps = jnp.exp(scores - top)
    total = jnp.sum(exps, axis=-1, keepdims=True)
    weights = (exps / total).astype(v.dtype)
    return jnp.einsum("bkgts,bksd->bkgtd", weights, v), top + jnp.log(total)


@jax.custom_vjp
def grouped_query_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """q `[B, T, H, D]`, k/v `[B, K, S, D]`, mask `[B, T, S]` → `[B, T, H, D]`.

    Scores and softmax run in float32 whatever the compute dtype. The gradient recomputes the
    attention weights from the saved log-sum-exp (as flash attention does) instead of keeping
    every layer's `[B, H, T, S]` weights for the backward pass: less memory, and on XLA's CPU
    backend a faster training step (SmolLM2-135M: no stacked weights written and re-read).
    """
    return _attention_forward(q, k, v, mask)[0]


def _attention_forward(q, k, v, mask):
    grouped_q = grouped(q, k.shape[1])
    out, log_norm = _attend(grouped_q, k, v, mask)
    return ungrouped(out), (grouped_q, k, v, mask, out, log_norm)


def _attention_backward(residuals, d_out):
    q, k, v, mask, out, log_norm = residuals
    d_out = grouped(d_out, k.shape[1])
    weights = jnp.exp(_masked_scores(q, k, mask) - log_norm)
    # d_v and d_k contract over (group, time), the leading axes of both operands; written as
    # `[.., D, S]` products the large `[T, S]` operand needs no transposed copy, only the small one.
    d_v = jnp.einsum("bkgtd,bkgts->bkds", d_out, weights.astype(v.dtype)).swapaxes(-1, -2)
    d_weights = jnp.einsum("bkgtd,bksd->bkgts", d_out, v, preferred_element_type=jnp.float32)
    row_dot = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1, keepdims=True)
    d_scores = weights * (d_weights - row_dot) * (q.shape[-1] ** -0.5)
    d_q = jnp.einsum("bkgts,bksd->bkgtd", d_scores.astype(k.dtype), k)
    d_k = jnp.einsum("bkgtd,bkgts->bkds", q, d_scores.astype(q.dtype)).swapaxes(-1, -2)
    return ungrouped(d_q), d_k, d_v, None


grouped_query_attention.defvjp(_attention_forward, _attention_backward)
