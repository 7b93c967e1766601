"""Adaptive temperature: each position's temperature set from the model's own distribution.

The decode-time rival to SSD (paper, section 4: one global temperature cannot be sharp at locks
and exploratory at forks). With p1 the top-1 probability of the model's raw next-token
distribution (T = 1, untruncated), a row with temperature T and strength `a` samples at

    T(p1) = T · (2 · (1 - p1)) ** a

One parameter: `a = 0` is off (T everywhere). At p1 = 1/2 the row's own T applies; a confident
position (a lock, p1 -> 1) is cooled towards greedy, a flat one (a fork, p1 -> 0) is heated up to
T · 2^a. p1 rather than the entropy: it is the quantity top-p truncation acts on, and it is
bounded, so the family needs no clipping. The temperature grid of an evaluation still sweeps T.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def adaptive_temperature(logits: jax.Array, temperature: jax.Array, strength: jax.Array) -> jax.Array:
    """Per-row temperature `[B]` for `logits [B, V]` (all of the vocabulary: p1 needs its normaliser)."""
    logits = logits.astype(jnp.float32)
    top1 = jnp.exp(jnp.max(logits, axis=-1) - jax.nn.logsumexp(logits, axis=-1))
    return temperature * jnp.power(2.0 * (1.0 - top1), jnp.asarray(strength, jnp.float32))
