"""Grouped-query attention over keys/values laid out `[batch, kv_heads, length, head_dim]`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


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


def grouped_query_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """q `[B, T, H, D]`, k/v `[B, K, S, D]`, mask `[B, T, S]` → `[B, T, H, D]`.

    Scores and softmax run in float32 whatever the compute dtype.
    """
    batch, q_len, num_heads, head_dim = q.shape
    num_kv = k.shape[1]
    q = q.reshape(batch, q_len, num_kv, num_heads // num_kv, head_dim)
    scores = jnp.einsum("btkgd,bksd->bkgts", q, k, preferred_element_type=jnp.float32)
    scores = scores * (head_dim**-0.5)
    scores = jnp.where(mask[:, None, None], scores, _MASKED)
    weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgts,bksd->btkgd", weights, v)
    return out.reshape(batch, q_len, num_heads, head_dim)
