"""Random keys that make each sampled token a function of (seed, prompt id, sample index, position).

The key of token `t` of sample `i` of prompt `p` is

    fold_in(fold_in(fold_in(fold_in(key(seed), h_hi(p)), h_lo(p)), i), t)

where `h_hi, h_lo` are the two halves of a 64-bit hash of the prompt id (BLAKE2b of its UTF-8
bytes) and `t` counts generated tokens from 0. Nothing about the batch (the row a sample lands
in, the other rows, the prompt-length bucket, the device mesh) enters the key, so a sample
draws the same random numbers wherever it runs. The PRNG is pinned to threefry2x32, whose
output does not depend on how the computation is sharded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

PRNG_IMPL = "threefry2x32"


def prompt_id_words(prompt_ids: Sequence[str]) -> np.ndarray:
    """uint32 `[N, 2]`: the 64-bit BLAKE2b hash of each prompt id, as (high, low) words."""
    words = [
        np.frombuffer(hashlib.blake2b(pid.encode("utf-8"), digest_size=8).digest(), dtype=">u4")
        for pid in prompt_ids
    ]
    return np.asarray(words, dtype=np.uint32).reshape(len(prompt_ids), 2)


def sample_keys(seed: jax.Array, id_words: jax.Array, sample_index: jax.Array) -> jax.Array:
    """One typed key per row: `seed` scalar, `id_words` uint32 `[B, 2]`, `sample_index` `[B]`."""
    base = jax.random.key(seed, impl=PRNG_IMPL)

    def one(words, index):
        key = jax.random.fold_in(jax.random.fold_in(base, words[0]), words[1])
        return jax.random.fold_in(key, index)

    return jax.vmap(one)(id_words, sample_index)


def token_uniforms(keys: jax.Array, position: jax.Array) -> jax.Array:
    """float32 `[B]` in [0, 1): the uniform draw of each row's token number `position` (scalar or `[B]`)."""
    position = jnp.broadcast_to(position, keys.shape)
    return jax.vmap(lambda key, t: jax.random.uniform(jax.random.fold_in(key, t), dtype=jnp.float32))(keys, position)
