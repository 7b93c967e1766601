"""Per-position statistics of next-token distributions, reduced on device batch by batch.

For logits `[N, V]` (N positions) and a model's truncation (top-k, top-p), `batch_statistics`
returns sums over the valid positions of the curves (cumulative mass by rank, surviving tokens
and truncated entropy at every evaluation temperature) plus a few scalars per position (top-1
mass, top-20 mass, entropies) for binning and the lock/fork classes. Nothing `[N, V]` leaves
the device, and every temperature is computed from the same logits: one forward pass per context.

How truncation is computed: the `max_rank` largest logits of each position, sorted; at each
temperature the tempered probabilities of that sorted prefix (normalised over the top-k
survivors, or over the whole vocabulary when top-k is off or above `max_rank`), then the same
top-p rule as the sampler's `filter_logits` (a token survives while the mass strictly above it
is < p). Exact while fewer than `max_rank` tokens survive; a position whose survivors reach
`max_rank` counts as `max_rank` tokens (a lower bound) and is counted in `saturated`. Tokens
tied in logit with the k-th are not all kept here (the sampler keeps them): real logits
almost never tie.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

RANKS = 60  # cumulative mass is reported for ranks 1..RANKS
TOP_MASS_RANK = 20  # binning and tail mass use the mass of the top 20 tokens
TOP20_BIN_EDGES = (0.999, 0.995, 0.99, 0.98, 0.95)  # bins: >= 99.9 %, [99.5, 99.9), ..., < 95 %


def _entropy(probs: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0), axis=-1)


def truncated_at(values: jax.Array, log_normaliser: jax.Array, temperature: jax.Array, top_k: int, top_p: float):
    """Surviving-token count and entropy `[N]` at one temperature, from the sorted top logits `values [N, M]`.

    `log_normaliser [N]` is the log partition function of `values / temperature`'s distribution:
    over the top-k survivors, or over the whole vocabulary when top-k is off.
    """
    ranks = jnp.arange(values.shape[-1])
    allowed = ranks < top_k if top_k > 0 else jnp.ones_like(ranks, bool)
    probs = jnp.where(allowed, jnp.exp(values / temperature - log_normaliser[:, None]), 0.0)
    above = jnp.cumsum(probs, axis=-1) - probs
    kept = allowed & ((above < top_p) | (ranks == 0))
    kept_probs = jnp.where(kept, probs, 0.0)
    kept_probs = kept_probs / jnp.sum(kept_probs, axis=-1, keepdims=True)
    count = jnp.sum(kept, axis=-1)
    saturated = kept[:, -1] & (top_k <= 0 or top_k > values.shape[-1])
    return count, _entropy(kept_probs), saturated


@functools.partial(jax.jit, static_argnames=("top_k", "top_p", "max_rank"))
def batch_statistics(logits: jax.Array, valid: jax.Array, temperatures: jax.Array, reference_temperature: jax.Array,
                     *, top_k: int, top_p: float, max_rank: int) -> dict[str, jax.Array]:
    """Statistics of `logits [N, V]` at the positions where `valid [N]` (see the module docstring).

    Returns sums over valid positions (`cumulative_mass [RANKS]`, `surviving [T]`, `truncated_entropy [T]`,
    `saturated [T]`, `positions`) and per-position `[N]` values (`top1`, `top20`, `entropy`, the
    untruncated T = 1 entropy, and `reference_entropy`, the truncated entropy at `reference_temperature`).
    """
    logits = logits.astype(jnp.float32)
    vocab = logits.shape[-1]
    max_rank = min(max_rank, vocab)
    top_k = top_k if 0 < top_k < vocab else 0
    values, _ = jax.lax.top_k(logits, max_rank)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    probs = jnp.exp(values - log_z[:, None])
    cumulative = jnp.cumsum(probs[:, :RANKS], axis=-1)
    full = jax.nn.softmax(logits, axis=-1)
    entropy = log_z - jnp.sum(full * logits, axis=-1)

    def normaliser(temperature):
        if 0 < top_k <= max_rank:
            return jax.nn.logsumexp(jnp.where(jnp.arange(max_rank) < top_k, values / temperature, -jnp.inf), axis=-1)
        return jax.nn.logsumexp(logits / temperature, axis=-1)

    def at(temperature):
        return truncated_at(values, normaliser(temperature), temperature, top_k, top_p)

    count, trunc_entropy, saturated = jax.lax.map(at, temperatures)  # each [T, N]
    _, reference_entropy, _ = at(reference_temperature)
    weight = valid.astype(jnp.float32)

    def total(x):  # sum over valid positions of x [..., N]
        return jnp.sum(x * weight, axis=-1)

    return {
        "positions": jnp.sum(weight),
        "cumulative_mass": jnp.sum(cumulative * weight[:, None], axis=0),
        "surviving": total(count.astype(jnp.float32)),
        "truncated_entropy": total(trunc_entropy),
        "saturated": total(saturated.astype(jnp.float32)),
        "top1": probs[:, 0],
        "top20": cumulative[:, TOP_MASS_RANK - 1],
        "entropy": entropy,
        "reference_entropy": reference_entropy,
    }


def top20_bin(top20_mass: np.ndarray) -> np.ndarray:
    """Bin index per position: 0 for >= 99.9 %, ..., len(TOP20_BIN_EDGES) for below 95 %."""
    return np.sum(np.asarray(top20_mass)[..., None] < np.asarray(TOP20_BIN_EDGES), axis=-1)


def top20_bin_labels() -> list[str]:
    edges = [f"{100 * e:g}%" for e in TOP20_BIN_EDGES]
    return [f">={edges[0]}"] + [f"[{low}, {high})" for high, low in zip(edges, edges[1:])] + [f"<{edges[-1]}"]
