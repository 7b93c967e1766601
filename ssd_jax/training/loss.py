"""Next-token cross-entropy computed a chunk of tokens at a time, never holding a row's logits.

At the paper's scale a row's float32 logits are `[65,536, 151,936]` (40 GB). Here the LM head
is applied to `chunk` tokens at a time inside a scan, the forward keeps only each token's
log-sum-exp, and a custom VJP recomputes each chunk's logits in the backward pass to form the
gradients of the hidden states and of the head: memory is one `[chunk, vocab]` tile.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

DEFAULT_CHUNK = 1024  # tokens per logits tile: 1024 × 151,936 float32 = 0.6 GB


def chunked_cross_entropy_sum(
    hidden: jax.Array, head: jax.Array, targets: jax.Array, weights: jax.Array, chunk: int = DEFAULT_CHUNK
) -> jax.Array:
    """Σ weight · CE(hidden @ head, target) over tokens, float32; tokens with weight ≤ 0 add exactly 0.

    hidden `[..., D]`, head `[D, V]`, targets / weights `[...]`. Gradients flow to `hidden` and
    `head` (not to `weights`), equal to those of the same sum over materialised logits.
    """
    dim = hidden.shape[-1]
    hidden, targets, weights = hidden.reshape(-1, dim), targets.reshape(-1), weights.reshape(-1)
    chunk = min(chunk, hidden.shape[0])
    pad = -hidden.shape[0] % chunk
    hidden = jnp.pad(hidden, ((0, pad), (0, 0)))
    targets = jnp.pad(targets.astype(jnp.int32), (0, pad))
    weights = jnp.pad(jnp.maximum(weights.astype(jnp.float32), 0.0), (0, pad))
    tiles = lambda x: x.reshape(-1, chunk, *x.shape[1:])
    return _ce_sum(tiles(hidden), head, tiles(targets), tiles(weights))


def _chunk_logits(hidden, head):
    return jnp.dot(hidden, head, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _ce_sum(hidden, head, targets, weights):
    return _ce_forward(hidden, head, targets, weights)[0]


def _ce_forward(hidden, head, targets, weights):
    """hidden `[n, chunk, D]` → (the weighted CE sum, residuals with each token's log-sum-exp)."""

    def one(total, tile):
        x, t, w = tile
        logits = _chunk_logits(x, head)
        log_norm = jax.nn.logsumexp(logits, axis=-1)
        target_logit = jnp.take_along_axis(logits, t[:, None], axis=-1)[:, 0]
        return total + jnp.sum(w * (log_norm - target_logit)), log_norm

    total, log_norms = jax.lax.scan(one, jnp.zeros((), jnp.float32), (hidden, targets, weights))
    return total, (hidden, head, targets, weights, log_norms)


def _ce_backward(residuals, d_total):
    hidden, head, targets, weights, log_norms = residuals

    def one(d_head, tile):
        x, t, w, log_norm = tile
        probs = jnp.exp(_chunk_logits(x, head) - log_norm[:, None])
        d_logits = (probs - jax.nn.one_hot(t, head.shape[1], dtype=jnp.float32)) * (w * d_total)[:, None]
        d_x = jnp.dot(d_logits.astype(head.dtype), head.T, preferred_element_type=jnp.float32).astype(x.dtype)
        d_head = d_head + jnp.dot(x.T, d_logits.astype(x.dtype), preferred_element_type=jnp.float32)
        return d_head, d_x

    d_head, d_hidden = jax.lax.scan(one, jnp.zeros(head.shape, jnp.float32), (hidden, targets, weights, log_norms))
    return d_hidden, d_head.astype(head.dtype), None, jnp.zeros_like(weights)


_ce_sum.defvjp(_ce_forward, _ce_backward)
