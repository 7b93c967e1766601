"""The key/value cache used by prefill and decode.

Layout `[layers, batch, kv_heads, max_len, head_dim]`: per (row, head) the cached keys are
contiguous, which is what the attention dot product reads at every decode step; every row
writes the same slot at a given step (prompts are left-padded), so a write is one
`dynamic_update_slice`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssd_jax.models.config import ModelConfig

CACHE_AXES = ("layers", "batch", "kv_heads", "cache_len", "head_dim")


class KVCache(NamedTuple):
    keys: jax.Array
    values: jax.Array

    @property
    def max_len(self) -> int:
        return self.keys.shape[3]


def init_cache(config: ModelConfig, batch: int, max_len: int, dtype: str | None = None) -> KVCache:
    """An all-zero cache for `batch` rows of up to `max_len` tokens."""
    shape = (config.num_layers, batch, config.num_kv_heads, max_len, config.head_dim)
    dt = jnp.dtype(dtype or config.dtype)
    return KVCache(jnp.zeros(shape, dt), jnp.zeros(shape, dt))
