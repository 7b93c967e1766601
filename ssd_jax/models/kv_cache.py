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


# From this many rows on, decode attention on a CPU scores the keys with an elementwise product
# and sum (see `_scores`). Measured on SmolLM2-135M, 415 cache slots, ms per decode step with the
# elementwise sum vs the batched dot: 136 vs 150 at 32 rows, 87 vs 93 at 16, but 67 vs 62 at 8
# and 35.7 vs 32.5 at 1.
ELEMENTWISE_SCORES_FROM_ROWS = 16


def attend_one_token(q: jax.Array, keys: jax.Array, values: jax.Array, mask: jax.Array) -> jax.Array:
    """Grouped-query attention of one new token per row over one layer's cache (decode).

    q `[B, 1, H, D]`, keys / values `[B, K, S, D]`, mask `[B, 1, S]` → `[B, 1, H, D]`; the same
    math as `attention.grouped_query_attention` (float32 scores and softmax). The weights are
    laid out `[B, K, G, S]`, slots last, so that the values product reads each row's values
    as one plain `[G, S] x [S, D]` matmul (XLA's CPU backend: 27 instead of 41 ms per SmolLM2
    decode step at batch 32, where the weights' slots axis was not the last).
    """
    batch, _, num_heads, head_dim = q.shape
    num_kv = keys.shape[1]
    q = q.reshape(batch, num_kv, num_heads // num_kv, head_dim)
    scores = jnp.where(mask[:, 0, None, None, :], _scores(q, keys) * head_dim**-0.5, _MASKED)
    weights = jax.nn.softmax(scores, axis=3).astype(values.dtype)
    return jnp.einsum("bkgs,bksd->bkgd", weights, values).reshape(batch, 1, num_heads, head_dim)


def _scores(q: jax.Array, keys: jax.Array) -> jax.Array:
    """float32 `[B, K, G, S]` products of grouped queries `[B, K, G, D]` with the cached keys.

    XLA's CPU backend runs a batched dot of this shape on one core, while an elementwise product
    and sum is a loop fusion that it splits over all cores: at many rows, where reading the keys
    dominates, that is faster (`ELEMENTWISE_SCORES_FROM_ROWS`). Otherwise the cached keys are the
    dot's matrix rows (`bksd,bkgd->bksg`), ~40 % faster on CPU than the `[G, D] x [D, S]` form.
    """
    if keys.shape[0] >= ELEMENTWISE_SCORES_FROM_ROWS and jax.default_backend() == "cpu":
        return jnp.sum(keys[:, :, None].astype(jnp.float32) * q[:, :, :, None].astype(jnp.float32), axis=-1)
    return jnp.einsum("bksd,bkgd->bksg", keys, q, preferred_element_type=jnp.float32).swapaxes(2, 3)
