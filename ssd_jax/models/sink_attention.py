"""Attention with learned sinks and sliding windows (gpt-oss), on the reference layout.

A sink is one extra logit per query head that joins every softmax and attends to nothing: the
weights of the real keys sum to less than one. A sliding window of `w` lets a query see only
the `w` most recent slots (itself included), as transformers' `sliding_window_overlay`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssd_jax.models.attention import MASKED, grouped, ungrouped


def window_mask(mask: jax.Array, window: jax.Array | int, query_slots: jax.Array) -> jax.Array:
    """`mask [B, T, S]` limited to keys less than `window` slots before each query
    (`query_slots [T]`); `window` 0 keeps it whole."""
    keys = jnp.arange(mask.shape[-1])
    near = query_slots[:, None] - keys[None, :] < window
    return mask & (near | (window == 0))[None]


def sink_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, sinks: jax.Array | None) -> jax.Array:
    """q `[B, T, H, D]`, k/v `[B, K, S, D]`, mask `[B, T, S]`, sinks `[H]` (or None) → `[B, T, H, D]`.

    float32 scores and softmax, as `attention.grouped_query_attention`; differentiated by JAX."""
    num_kv = k.shape[1]
    grouped_q = grouped(q, num_kv)
    scores = jnp.einsum("bkgtd,bksd->bkgts", grouped_q, k, preferred_element_type=jnp.float32)
    scores = jnp.where(mask[:, None, None], scores * (q.shape[-1] ** -0.5), MASKED)
    if sinks is None:
        weights = jax.nn.softmax(scores, axis=-1)
    else:
        sink = sinks.astype(jnp.float32).reshape(1, num_kv, -1, 1, 1)
        top = jnp.maximum(jnp.max(scores, axis=-1, keepdims=True), sink)
        exps = jnp.exp(scores - top)
        weights = exps / (jnp.sum(exps, axis=-1, keepdims=True) + jnp.exp(sink - top))
    return ungrouped(jnp.einsum("bkgts,bksd->bkgtd", weights.astype(v.dtype), v))
