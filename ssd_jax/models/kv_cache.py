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
