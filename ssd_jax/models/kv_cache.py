"""The key/value cache used by prefill and decode.

One `[batch, kv_heads, max_len, head_dim]` array of keys and one of values per layer: per
(row, head) the cached keys are contiguous, which is what the attention dot product reads at
every decode step; every row writes the same slot at a given step (prompts are left-padded),
so a write is one `dynamic_update_slice`. Separate arrays per layer (not one stacked array)
let XLA update and read each layer's cache in place: slicing a layer out of a stacked array
inside a loop is a copy on the CPU backend.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssd_jax.models.attention import _MASKED
from ssd_jax.models.config import ModelConfig

CACHE_AXES = ("batch", "kv_heads", "cache_len", "head_dim")  # of each layer's keys and values


class KVCache(NamedTuple):
    keys: tuple[jax.Array, ...]  # one per layer
    values: tuple[jax.Array, ...]

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2]


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """An all-zero cache for `batch` rows of up to `max_len` tokens."""
    shape = (batch, config.num_kv_heads, max_len, config.head_dim)
    dt = jnp.dtype(dtype or config.dtype)
    zeros = tuple(jnp.zeros(shape, dt) for _ in range(config.num_layers))
    return KVCache(zeros, tuple(jnp.zeros(shape, dt) for _ in range(config.num_layers)))


def attend_one_token(q: jax.Array, keys: jax.Array, values: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention of one new token per row over one layer's cache (decode).

    q `[B, 1, H, D]`, keys / values `[B, K, S, D]`, mask `[B, 1, S]` → `[B, 1, H, D]`; the same
    math as `attention.grouped_query_attention` (float32 scores and softmax), contracted with
    the cached keys as the matrix rows (`bksd,bkgd->bksg`): XLA's CPU backend runs these
    per-(row, head) products ~40 % faster than the `[G, D] x [D, S]` orientation (SmolLM2,
    30 layers, 511 slots: 350 -> 235 ms CPU at batch 32, 16 -> 8 ms at batch 1).
    """
    batch, _, num_heads, head_dim = q.shape
    num_kv = keys.shape[1]
    q = q.reshape(batch, num_kv, num_heads // num_kv, head_dim)
    scores = jnp.einsum("bksd,bkgd->bksg", keys, q, preferred_element_type=jnp.float32) * head_dim**-0.5
    scores = jnp.where(mask[:, 0, None, :, None], scores, _MASKED)
    weights = jax.nn.softmax(scores, axis=2).astype(values.dtype)
    return jnp.einsum("bksg,bksd->bkgd", weights, values).reshape(batch, 1, num_heads, head_dim)
